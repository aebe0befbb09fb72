"""FLChain's query path: its events in SQLite, with the marketplace and report state derived.

The paper answers "is this model for sale / under judgement / problematic?" with a Merkle hash
tree per record plus a distributed double counting Bloom filter (DDCBF, its Table VIII). Here
the same questions are answered by a local index, the way FedCoin's own events are
(:mod:`fedcoin.roles.index`): every FLChain event goes into the same SQLite schema through the
same :class:`~fedcoin.roles.index.EventIndex` (incremental, restartable, reorg-safe), and four
small tables are derived from those events after each sync:

    flc_models(model_id PK, task_id, lister, price TEXT, status, block_number)   -- ModelListed,
                                                                                  -- ModelStatusChanged
    flc_model_trainers(model_id, trainer)                                        -- ModelListed.trainers
    flc_reports(report_id PK, kind, reporter, accused, task_id, round, state, block_number)
                                                                                  -- ReportFiled, ReportDecided
    flc_problematic(task_id PK, report_id)                          -- upheld InvalidUpdate or Aggregate
    flc_state(key PK, value)                                                     -- the derivation cursor

``status`` is the model's stored status (the lister's: on sale, unavailable, or problematic at
listing); the effective status is Problematic whenever its task is in ``flc_problematic``, as
``FLChain.modelStatus`` computes it. A report's ``state`` is :class:`ReportState` (an
InvalidUpdate report is decided in the transaction that files it; an Unqualified one stays
Pending until ``auth`` judges it).

The derived tables are advanced event by event from a cursor; a sync that rewound (a reorg) or
reset the event index rebuilds them from the events, so they never hold a state the chain lost.
Like every index here, it is a cache: a caller about to move money re-checks the views
(``fedcoin flchain buy`` reads ``modelStatus`` on chain before it sends).

Queries (each one indexed SQLite lookup; ``benchmarks/flchain_query_bench.py`` times them):
:meth:`FLChainIndex.is_for_sale`, :meth:`FLChainIndex.under_judgement` (a trainer, or a model
through its trainers), :meth:`FLChainIndex.is_problematic`, :meth:`FLChainIndex.models`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from eth_utils import to_checksum_address

from fedcoin.flchain.binding import ModelStatus, ReportKind, ReportState
from fedcoin.roles.index import DEFAULT_BATCH, EventIndex, Source, SyncReport, default_index_path

DERIVED_EVENTS = ("ModelListed", "ModelStatusChanged", "ReportFiled", "ReportDecided")

_DERIVED = """
CREATE TABLE IF NOT EXISTS flc_models (
    model_id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, lister TEXT NOT NULL, price TEXT NOT NULL,
    status INTEGER NOT NULL, block_number INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS flc_models_by_status ON flc_models (status, model_id);
CREATE INDEX IF NOT EXISTS flc_models_by_task ON flc_models (task_id);
CREATE TABLE IF NOT EXISTS flc_model_trainers (
    model_id INTEGER NOT NULL, trainer TEXT NOT NULL, PRIMARY KEY (model_id, trainer));
CREATE INDEX IF NOT EXISTS flc_trainer_models ON flc_model_trainers (trainer);
CREATE TABLE IF NOT EXISTS flc_reports (
    report_id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, reporter TEXT NOT NULL, accused TEXT NOT NULL,
    task_id INTEGER NOT NULL, round INTEGER NOT NULL, state INTEGER NOT NULL, block_number INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS flc_reports_by_accused ON flc_reports (accused, state);
CREATE TABLE IF NOT EXISTS flc_problematic (task_id INTEGER PRIMARY KEY, report_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS flc_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: The effective status of a model row ``m`` joined with ``flc_problematic p`` (FLChain.modelStatus).
_EFFECTIVE = (f"CASE WHEN m.status = {int(ModelStatus.ON_SALE)} AND p.task_id IS NOT NULL "
              f"THEN {int(ModelStatus.PROBLEMATIC)} ELSE m.status END")


class UnknownModel(KeyError):
    """The index holds no listing of that model (not listed, or not indexed yet)."""

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ModelRow:
    """A listed model as the index knows it."""

    model_id: int
    task_id: int
    lister: str
    price: int
    status: ModelStatus  # effective (Problematic once its task is)
    listed_status: ModelStatus  # as stored by the contract
    block_number: int


@dataclass(frozen=True)
class ReportRow:
    report_id: int
    kind: ReportKind
    reporter: str
    accused: str
    task_id: int
    round: int
    state: ReportState
    block_number: int


class FLChainIndex:
    """The SQLite index of one FLChain at ``path`` (see the module docstring).

    Args:
        path: the SQLite file (created if missing).
        w3: a connected Web3, or None to only read an existing file (:meth:`sync` then fails).
        address, abi: the FLChain contract.
        batch, from_block: as for :class:`~fedcoin.roles.index.EventIndex`.
    """

    def __init__(self, path: str | Path, w3, address: str, abi: Sequence[dict], *, batch: int = DEFAULT_BATCH,
                 from_block: int = 0):
        self.events = EventIndex(path, w3, [Source(to_checksum_address(address), tuple(abi))], batch=batch,
                                 from_block=from_block)
        self.path = self.events.path
        self.db = self.events.db
        self.db.executescript(_DERIVED)

    @classmethod
    def for_flchain(cls, flc, path: str | Path | None = None, **kw) -> "FLChainIndex":
        """The index of the FLChain binding ``flc`` (default file: :func:`default_path`)."""
        return cls(path or default_path(flc.chain_id, flc.address), flc.w3, flc.address, flc.abi, **kw)

    def close(self) -> None:
        self.events.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- maintenance

    def _cursor(self) -> tuple[int, int]:
        row = self.db.execute("SELECT value FROM flc_state WHERE key = 'cursor'").fetchone()
        return tuple(json.loads(row[0])) if row else (-1, -1)  # type: ignore[return-value]

    def sync(self) -> SyncReport:
        """Index new FLChain events (:meth:`EventIndex.sync`), then bring the derived tables up to them."""
        rep = self.events.sync()
        cur = self._cursor()
        stale = rep.reset or rep.rewound or (cur != (-1, -1) and self.db.execute(
            "SELECT 1 FROM events WHERE block_number = ? AND log_index = ?", cur).fetchone() is None)
        self.derive(rebuild=bool(stale))
        return rep

    def derive(self, *, rebuild: bool = False) -> int:
        """Apply the events after the cursor to the derived tables (all of them with ``rebuild``),
        in one transaction; returns how many were applied."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if rebuild:
                for t in ("flc_models", "flc_model_trainers", "flc_reports", "flc_problematic", "flc_state"):
                    self.db.execute(f"DELETE FROM {t}")
            blk, log = self._cursor()
            names = ",".join("?" * len(DERIVED_EVENTS))
            rows = self.db.execute(
                f"SELECT block_number, log_index, name, args FROM events WHERE name IN ({names}) AND "
                "(block_number > ? OR (block_number = ? AND log_index > ?)) ORDER BY block_number, log_index",
                (*DERIVED_EVENTS, blk, blk, log)).fetchall()
            for bn, li, name, args in rows:
                self._apply(bn, name, json.loads(args))
            if rows:
                self.db.execute("INSERT OR REPLACE INTO flc_state (key, value) VALUES ('cursor', ?)",
                                (json.dumps([rows[-1][0], rows[-1][1]]),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(rows)

    def _apply(self, block: int, name: str, a: dict) -> None:
        x = self.db.execute
        if name == "ModelListed":
            mid = int(a["modelId"])
            # the contract emits ModelStatusChanged right after; until then the row says OnSale
            x("INSERT OR REPLACE INTO flc_models VALUES (?, ?, ?, ?, ?, ?)",
              (mid, int(a["taskId"]), a["lister"], str(int(a["price"])), int(ModelStatus.ON_SALE), block))
            x("DELETE FROM flc_model_trainers WHERE model_id = ?", (mid,))
            self.db.executemany("INSERT OR IGNORE INTO flc_model_trainers VALUES (?, ?)", [(mid, t) for t in a["trainers"]])
        elif name == "ModelStatusChanged":
            x("UPDATE flc_models SET status = ? WHERE model_id = ?", (int(a["status"]), int(a["modelId"])))
        elif name == "ReportFiled":
            kind = ReportKind(int(a["kind"]))
            state = ReportState.PENDING if kind == ReportKind.UNQUALIFIED else ReportState.NONE
            x("INSERT OR REPLACE INTO flc_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              (int(a["reportId"]), int(kind), a["reporter"], a["accused"], int(a["taskId"]), int(a["round"]),
               int(state), block))
        elif name == "ReportDecided":
            rid = int(a["reportId"])
            upheld = bool(a["upheld"])
            x("UPDATE flc_reports SET state = ? WHERE report_id = ?",
              (int(ReportState.UPHELD if upheld else ReportState.REJECTED), rid))
            row = x("SELECT kind, task_id FROM flc_reports WHERE report_id = ?", (rid,)).fetchone()
            # FLChain marks the task problematic on an upheld InvalidUpdate or Aggregate report
            if upheld and row and row[0] in (int(ReportKind.INVALID_UPDATE), int(ReportKind.AGGREGATE)):
                x("INSERT OR IGNORE INTO flc_problematic VALUES (?, ?)", (row[1], rid))

    @property
    def head(self) -> int:
        """The last indexed block."""
        return self.events.head[0]

    # ---- queries

    def model(self, model_id: int) -> ModelRow:
        """The model's row. Raises :class:`UnknownModel`."""
        r = self.db.execute(
            f"SELECT m.model_id, m.task_id, m.lister, m.price, {_EFFECTIVE}, m.status, m.block_number "
            "FROM flc_models m LEFT JOIN flc_problematic p ON p.task_id = m.task_id WHERE m.model_id = ?",
            (int(model_id),)).fetchone()
        if r is None:
            raise UnknownModel(f"model {model_id} is not listed (index at block {self.head})")
        return ModelRow(r[0], r[1], r[2], int(r[3]), ModelStatus(r[4]), ModelStatus(r[5]), r[6])

    def is_for_sale(self, model_id: int) -> bool:
        """Whether a buyer can buy the model now: listed on sale and its task not problematic."""
        r = self.db.execute(
            "SELECT m.status, p.task_id IS NOT NULL FROM flc_models m LEFT JOIN flc_problematic p "
            "ON p.task_id = m.task_id WHERE m.model_id = ?", (int(model_id),)).fetchone()
        if r is None:
            raise UnknownModel(f"model {model_id} is not listed (index at block {self.head})")
        return r[0] == int(ModelStatus.ON_SALE) and not r[1]

    def is_problematic(self, model_id: int) -> bool:
        """Whether the model is problematic: a report against its task was upheld (or it was
        listed problematic). True also for such a model its lister has since delisted, whose
        status (:meth:`model`, as ``FLChain.modelStatus``) is Unavailable: a buyer who holds a
        licence still wants to know."""
        r = self.db.execute(
            "SELECT m.status, p.task_id IS NOT NULL FROM flc_models m LEFT JOIN flc_problematic p "
            "ON p.task_id = m.task_id WHERE m.model_id = ?", (int(model_id),)).fetchone()
        if r is None:
            raise UnknownModel(f"model {model_id} is not listed (index at block {self.head})")
        return bool(r[1]) or r[0] == int(ModelStatus.PROBLEMATIC)

    def pending_reports(self, target: str | int) -> list[int]:
        """Ids of the pending reports against a trainer (an address) or against any trainer of a
        model (an int model id), ascending."""
        pending = int(ReportState.PENDING)
        if isinstance(target, str):
            rows = self.db.execute("SELECT report_id FROM flc_reports WHERE accused = ? AND state = ? "
                                   "ORDER BY report_id", (to_checksum_address(target), pending)).fetchall()
        else:
            self.model(target)  # UnknownModel for a model never listed
            rows = self.db.execute(
                "SELECT DISTINCT r.report_id FROM flc_model_trainers t JOIN flc_reports r "
                "ON r.accused = t.trainer AND r.state = ? WHERE t.model_id = ? ORDER BY r.report_id",
                (pending, int(target))).fetchall()
        return [r[0] for r in rows]

    def under_judgement(self, target: str | int) -> bool:
        """Whether a report against the trainer (address), or against a trainer of the model
        (int id), awaits auth's judgement."""
        pending = int(ReportState.PENDING)
        if isinstance(target, str):
            r = self.db.execute("SELECT EXISTS (SELECT 1 FROM flc_reports WHERE accused = ? AND state = ?)",
                                (to_checksum_address(target), pending)).fetchone()
            return bool(r[0])
        if self.db.execute("SELECT 1 FROM flc_models WHERE model_id = ?", (int(target),)).fetchone() is None:
            raise UnknownModel(f"model {target} is not listed (index at block {self.head})")
        r = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM flc_model_trainers t JOIN flc_reports r ON r.accused = t.trainer "
            "AND r.state = ? WHERE t.model_id = ?)", (pending, int(target))).fetchone()
        return bool(r[0])

    def models(self, status: ModelStatus | None = None, *, limit: int | None = None) -> list[ModelRow]:
        """Listed models (ascending id), only those whose effective status is ``status`` if given."""
        q = (f"SELECT m.model_id, m.task_id, m.lister, m.price, {_EFFECTIVE}, m.status, m.block_number "
             "FROM flc_models m LEFT JOIN flc_problematic p ON p.task_id = m.task_id")
        params: list = []
        if status is not None:
            s = ModelStatus(status)
            if s == ModelStatus.ON_SALE:
                q += f" WHERE m.status = {int(ModelStatus.ON_SALE)} AND p.task_id IS NULL"
            elif s == ModelStatus.PROBLEMATIC:
                q += (f" WHERE m.status = {int(ModelStatus.PROBLEMATIC)} OR "
                      f"(m.status = {int(ModelStatus.ON_SALE)} AND p.task_id IS NOT NULL)")
            else:
                q += f" WHERE m.status = {int(ModelStatus.UNAVAILABLE)}"
        q += " ORDER BY m.model_id"
        if limit is not None:
            q += " LIMIT ?"
            params.append(int(limit))
        return [ModelRow(r[0], r[1], r[2], int(r[3]), ModelStatus(r[4]), ModelStatus(r[5]), r[6])
                for r in self.db.execute(q, params)]

    def report(self, report_id: int) -> ReportRow | None:
        r = self.db.execute("SELECT * FROM flc_reports WHERE report_id = ?", (int(report_id),)).fetchone()
        if r is None:
            return None
        return ReportRow(r[0], ReportKind(r[1]), r[2], r[3], r[4], r[5], ReportState(r[6]), r[7])


def default_path(chain_id: int, address: str) -> Path:
    """Where ``fedcoin flchain index`` keeps the index of FLChain ``address`` by default
    (``$FEDCOIN_HOME/index/<chainId>-<address>.sqlite``, beside FedCoin's)."""
    return default_index_path(chain_id, address)
