"""``fedcoin index``: every FedCoin event in a SQLite file, incremental, restartable and reorg-safe.

The index is a cache of the chain's logs that a single user runs without a server (SQLite, one
file). It holds every event of every ABI it is given — the list comes from the ABI, so events a
new contract version adds are indexed with no code change — decoded into JSON, plus the hash of
every block it holds an event of and of every batch's last block. Nothing is trusted from it
that the chain can check: readers that need guarantees (``fedcoin audit``, the explorer's record
chain) re-verify what they read against views and hashes.

* **Incremental.** :meth:`EventIndex.sync` resumes from the last indexed block.
* **Safe to stop at any moment.** Each batch of blocks (``eth_getLogs`` over up to ``batch``
  blocks) is written in one SQLite transaction together with the new head, so a killed indexer
  leaves the file at the end of its last whole batch.
* **Reorgs and chain resets.** Before every sync the stored head's hash is compared with the
  chain's block at that height. When they differ (a reorg, ``evm_revert`` on Anvil) the index
  finds the newest stored block whose hash the chain still has (binary search over the stored
  hashes: if block *k* matches, every earlier one does too) and deletes everything above it.
  A different genesis hash or chain id (a fresh Anvil) wipes the file's contents.
* **Concurrent readers and writers.** WAL mode; writers take ``BEGIN IMMEDIATE`` and re-read the
  head inside the transaction, so two indexers on one file never write a batch twice.

Schema (also in ``docs/explorer.md``)::

    meta(key TEXT PRIMARY KEY, value TEXT)      -- schema_version, chain_id, genesis_hash,
                                                --   contracts (JSON list), abi_hash, head_number, head_hash
    blocks(number INTEGER PRIMARY KEY, hash TEXT, timestamp INTEGER)
    events(block_number INTEGER, log_index INTEGER, tx_hash TEXT, block_hash TEXT, address TEXT,
           name TEXT, task_id INTEGER, round INTEGER, args TEXT,     -- args: JSON, see below
           PRIMARY KEY (block_number, log_index))

``args`` is a JSON object keyed by the ABI input names: integers as JSON integers (of any size),
addresses EIP-55 checksummed, ``bytesN``/``bytes`` as ``0x`` hex, arrays as lists, tuples as
objects; an indexed dynamic value (string, bytes, array) is its topic, the keccak hash, as hex.
``task_id``/``round`` copy ``taskId``/``round`` when the event has them, for fast filtering.

Readers: :meth:`EventIndex.events` returns the same :class:`fedcoin.chain.Event` objects as
:meth:`fedcoin.chain.FedCoin.events`; :class:`IndexedFedCoin` is a FedCoin whose event readers
all come from an index (the hook ``audit``, ``request --status`` and the miner's discovery use:
:func:`indexed`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from fedcoin.chain.abi import canonical_type
from fedcoin.chain.binding import FedCoin
from fedcoin.chain.types import Event
from fedcoin.home import fedcoin_home

SCHEMA_VERSION = 1
DEFAULT_BATCH = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block_number INTEGER NOT NULL,
    log_index INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    block_hash TEXT NOT NULL,
    address TEXT NOT NULL,
    name TEXT NOT NULL,
    task_id INTEGER,
    round INTEGER,
    args TEXT NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, task_id, round);
CREATE INDEX IF NOT EXISTS events_by_task ON events (task_id, round);
"""


class IndexFileError(RuntimeError):
    """The index file cannot be used (another chain or contract, a newer schema)."""


# ----------------------------------------------------------------------------- ABI <-> JSON


@dataclass(frozen=True)
class EventType:
    """One event of an ABI: its name, topic0 and inputs (the ABI entries)."""

    name: str
    topic: bytes
    inputs: tuple[dict, ...]

    @classmethod
    def from_abi(cls, item: dict) -> "EventType":
        sig = f"{item['name']}({','.join(canonical_type(i) for i in item['inputs'])})"
        return cls(item["name"], keccak(text=sig), tuple(item["inputs"]))


def event_types(abi: Sequence[dict]) -> dict[bytes, EventType]:
    """topic0 -> :class:`EventType` for every (non-anonymous) event in ``abi``."""
    out = {}
    for item in abi:
        if item.get("type") == "event" and not item.get("anonymous"):
            et = EventType.from_abi(item)
            out[et.topic] = et
    return out


def _is_dynamic(t: str) -> bool:
    return t in ("string", "bytes") or t.endswith("]") or t.startswith("tuple")


def to_json(inp: dict, v: Any) -> Any:
    """A decoded ABI value as JSON (see the module docstring)."""
    t = inp["type"]
    if t.endswith("]"):
        inner = dict(inp, type=t[:t.rindex("[")])
        return [to_json(inner, x) for x in v]
    if t.startswith("tuple"):
        return {c["name"]: to_json(c, x) for c, x in zip(inp["components"], v)}
    if t == "address":
        return to_checksum_address(v)
    if t.startswith("bytes"):
        return "0x" + bytes(v).hex()
    return v


def from_json(inp: dict, v: Any) -> Any:
    """Inverse of :func:`to_json`: the value as :meth:`FedCoin.events` returns it."""
    t = inp["type"]
    if t.endswith("]"):
        inner = dict(inp, type=t[:t.rindex("[")])
        return [from_json(inner, x) for x in v]
    if t.startswith("tuple"):
        return tuple(from_json(c, v[c["name"]]) for c in inp["components"])
    if t.startswith("bytes"):
        return bytes.fromhex(v[2:])
    return v


def decode_log(et: EventType, topics: Sequence[bytes], data: bytes) -> dict:
    """The log's arguments as a JSON-ready dict (indexed dynamic values: their topic hash)."""
    indexed = [i for i in et.inputs if i.get("indexed")]
    plain = [i for i in et.inputs if not i.get("indexed")]
    values = dict(zip((i["name"] for i in plain), abi_decode([canonical_type(i) for i in plain], data)))
    for inp, topic in zip(indexed, topics[1:]):
        if _is_dynamic(inp["type"]):
            values[inp["name"]] = "0x" + bytes(topic).hex()
        else:
            values[inp["name"]] = abi_decode([inp["type"]], bytes(topic))[0]
    out = {}
    for inp in et.inputs:
        v = values[inp["name"]]
        dyn_topic = inp.get("indexed") and _is_dynamic(inp["type"])
        out[inp["name"]] = v if dyn_topic else to_json(inp, v)
    return out


# ----------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class Source:
    """A contract to index: its address and ABI."""

    address: str
    abi: tuple

    @classmethod
    def of(cls, fc: FedCoin) -> "Source":
        return cls(fc.address, tuple(fc.abi))


@dataclass(frozen=True)
class SyncReport:
    """What one :meth:`EventIndex.sync` did."""

    from_block: int
    to_block: int
    events: int
    batches: int
    rewound: int
    reset: bool
    seconds: float

    def __str__(self) -> str:
        what = f"blocks {self.from_block}..{self.to_block}" if self.to_block >= self.from_block else "no new blocks"
        extra = (", chain reset: index cleared" if self.reset else "") + (
            f", rewound {self.rewound} blocks (reorg)" if self.rewound else "")
        return f"indexed {what}: {self.events} events in {self.batches} batches, {self.seconds:.2f} s{extra}"


def default_index_path(chain_id: int, address: str) -> Path:
    """Where ``fedcoin index`` keeps the index of ``address`` on chain ``chain_id`` by default."""
    return fedcoin_home() / "index" / f"{chain_id}-{to_checksum_address(address)}.sqlite"


class EventIndex:
    """The SQLite event index of ``sources`` on ``w3`` at ``path`` (created if missing).

    Args:
        path: the SQLite file.
        w3: a connected Web3 (None: read-only use of an existing file; :meth:`sync` then fails).
        sources: the contracts to index (addresses and ABIs).
        batch: blocks per ``eth_getLogs`` / transaction.
        from_block: first block to index (the deployment block, if known).
    """

    def __init__(self, path: str | Path, w3, sources: Sequence[Source], *, batch: int = DEFAULT_BATCH,
                 from_block: int = 0):
        self.path = Path(path)
        self.w3 = w3
        self.sources = tuple(sources)
        self.batch = max(1, int(batch))
        self.from_block = int(from_block)
        self.types: dict[bytes, EventType] = {}
        for s in self.sources:
            self.types.update(event_types(s.abi))
        self.by_name = {et.name: et for et in self.types.values()}
        self.addresses = sorted(to_checksum_address(s.address) for s in self.sources)
        self.abi_hash = hashlib.sha256(json.dumps([list(s.abi) for s in self.sources], sort_keys=True).encode()).hexdigest()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        version = self._meta("schema_version")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise IndexFileError(f"{self.path}: schema version {version} is newer than this fedcoin's ({SCHEMA_VERSION})")

    @classmethod
    def for_fedcoin(cls, fc: FedCoin, path: str | Path | None = None, **kw) -> "EventIndex":
        """The index of ``fc``'s contract (default path: :func:`default_index_path`)."""
        return cls(path or default_index_path(fc.chain_id, fc.address), fc.w3, [Source.of(fc)], **kw)

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- meta

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, **kv: Any) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(k, str(v)) for k, v in kv.items()])

    @property
    def head(self) -> tuple[int, str | None]:
        """(number, hash) of the last indexed block; (from_block − 1, None) when empty."""
        n = self._meta("head_number")
        return (int(n), self._meta("head_hash")) if n is not None else (self.from_block - 1, None)

    # ---- sync

    def _block(self, number: int | str) -> tuple[int, str, int] | None:
        b = self.w3.eth.get_block(number)
        if b is None:
            return None
        return int(b["number"]), "0x" + bytes(b["hash"]).hex(), int(b["timestamp"])

    def _chain_hash(self, number: int) -> str | None:
        try:
            b = self._block(number)
        except Exception:  # a height beyond the chain's head: BlockNotFound
            return None
        return b[1] if b else None

    def _check_identity(self) -> bool:
        """Wipe the contents when the chain, its genesis or the indexed contracts changed. True if wiped."""
        chain_id = str(self.w3.eth.chain_id)
        genesis = self._chain_hash(0)
        contracts = json.dumps(self.addresses)
        stored = (self._meta("chain_id"), self._meta("genesis_hash"), self._meta("contracts"))
        if stored == (chain_id, genesis, contracts) and self._meta("abi_hash") == self.abi_hash:
            return False
        was_used = stored[0] is not None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM events")
            self.db.execute("DELETE FROM blocks")
            self.db.execute("DELETE FROM meta")
            self._set_meta(schema_version=SCHEMA_VERSION, chain_id=chain_id, genesis_hash=genesis, contracts=contracts,
                           abi_hash=self.abi_hash)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return was_used

    def _rewind(self) -> int:
        """Delete what a reorg replaced; returns how many blocks of height were rewound."""
        n, h = self.head
        if h is None or self._chain_hash(n) == h:
            return 0
        stored = self.db.execute("SELECT number, hash FROM blocks ORDER BY number").fetchall()
        lo, hi, keep = 0, len(stored) - 1, -1  # largest i whose hash the chain still has
        while lo <= hi:
            mid = (lo + hi) // 2
            if self._chain_hash(stored[mid][0]) == stored[mid][1]:
                keep, lo = mid, mid + 1
            else:
                hi = mid - 1
        ancestor, ahash = stored[keep] if keep >= 0 else (self.from_block - 1, None)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM events WHERE block_number > ?", (ancestor,))
            self.db.execute("DELETE FROM blocks WHERE number > ?", (ancestor,))
            if ahash is None:
                self.db.execute("DELETE FROM meta WHERE key IN ('head_number', 'head_hash')")
            else:
                self._set_meta(head_number=ancestor, head_hash=ahash)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return n - ancestor

    def _fetch_batch(self, frm: int, to: int) -> tuple[list[tuple], list[tuple], tuple[int, str, int]] | None:
        """(event rows, block rows, the batch's last block) for blocks frm..to; None if the chain
        changed under the read (a block hash moved)."""
        last = self._block(to)
        logs = self.w3.eth.get_logs({"address": self.addresses, "fromBlock": frm, "toBlock": to})
        headers: dict[int, tuple[int, str, int]] = {to: last}
        rows = []
        for lg in logs:
            et = self.types.get(bytes(lg["topics"][0])) if lg["topics"] else None
            if et is None:
                continue
            bn = int(lg["blockNumber"])
            bh = "0x" + bytes(lg["blockHash"]).hex()
            if bn not in headers:
                ts = lg.get("blockTimestamp")
                headers[bn] = (bn, bh, int(ts, 16) if isinstance(ts, str) else int(ts)) if ts is not None else self._block(bn)
            if headers[bn][1] != bh:
                return None
            args = decode_log(et, lg["topics"], bytes(lg["data"]))
            task, rnd = args.get("taskId"), args.get("round")
            rows.append((bn, int(lg["logIndex"]), "0x" + bytes(lg["transactionHash"]).hex(), bh,
                         to_checksum_address(lg["address"]), et.name,
                         task if isinstance(task, int) and task < 2**63 else None,
                         rnd if isinstance(rnd, int) and rnd < 2**63 else None,
                         json.dumps(args, separators=(",", ":"))))
        if self._chain_hash(to) != last[1]:
            return None
        return rows, list(headers.values()), last

    def sync(self, to_block: int | None = None, *, max_batches: int | None = None) -> SyncReport:
        """Index up to ``to_block`` (default: the chain's head), one transaction per batch.

        Rewinds first if the chain reorganized below the stored head; clears the file if the
        chain was reset. Safe to interrupt: the file is always at the end of a whole batch.
        """
        if self.w3 is None:
            raise IndexFileError("this index was opened without an RPC connection")
        t0 = time.perf_counter()
        reset = self._check_identity()
        rewound = self._rewind()
        start = self.head[0] + 1
        target = self.w3.eth.block_number if to_block is None else int(to_block)
        n_events = batches = 0
        while self.head[0] < target and (max_batches is None or batches < max_batches):
            frm = self.head[0] + 1
            to = min(target, frm + self.batch - 1)
            got = self._fetch_batch(frm, to)
            if got is None:  # the chain moved under us: rewind and retry
                rewound += self._rewind()
                target = self.w3.eth.block_number if to_block is None else min(int(to_block), self.w3.eth.block_number)
                continue
            rows, blocks, last = got
            self.db.execute("BEGIN IMMEDIATE")
            try:
                if self.head[0] + 1 != frm:  # another writer advanced the file meanwhile
                    self.db.execute("ROLLBACK")
                    continue
                self.db.executemany("INSERT OR REPLACE INTO blocks (number, hash, timestamp) VALUES (?, ?, ?)", blocks)
                self.db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._set_meta(head_number=last[0], head_hash=last[1])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            n_events += len(rows)
            batches += 1
        return SyncReport(start, self.head[0], n_events, batches, rewound, reset, time.perf_counter() - t0)

    def ensure_synced(self) -> None:
        """Sync if the chain moved (new blocks, or a different block at the stored head)."""
        if self.w3 is None:
            return
        n, h = self.head
        if h is None or n < self.w3.eth.block_number or self._chain_hash(n) != h:
            self.sync()

    # ---- reading

    def count(self, name: str | None = None) -> int:
        if name is None:
            return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM events WHERE name = ?", (name,)).fetchone()[0]

    def rows(self, name: str | Iterable[str] | None = None, *, task_id: int | None = None, round: int | None = None,
             from_block: int = 0, to_block: int | None = None) -> list[dict]:
        """Raw rows (dicts: block_number, log_index, tx_hash, block_hash, address, name, task_id,
        round, args as JSON-decoded dict, timestamp) in chain order."""
        q = ("SELECT e.block_number, e.log_index, e.tx_hash, e.block_hash, e.address, e.name, e.task_id, e.round, "
             "e.args, b.timestamp FROM events e LEFT JOIN blocks b ON b.number = e.block_number WHERE e.block_number >= ?")
        params: list[Any] = [from_block]
        if to_block is not None:
            q += " AND e.block_number <= ?"
            params.append(to_block)
        if name is not None:
            names = [name] if isinstance(name, str) else list(name)
            q += f" AND e.name IN ({','.join('?' * len(names))})"
            params += names
        if task_id is not None:
            q += " AND e.task_id = ?"
            params.append(task_id)
        if round is not None:
            q += " AND e.round = ?"
            params.append(round)
        q += " ORDER BY e.block_number, e.log_index"
        keys = ("block_number", "log_index", "tx_hash", "block_hash", "address", "name", "task_id", "round", "args",
                "timestamp")
        out = []
        for r in self.db.execute(q, params):
            d = dict(zip(keys, r))
            d["args"] = json.loads(d["args"])
            out.append(d)
        return out

    def events(self, name: str, *, from_block: int | str = 0, to_block: int | str = "latest", **indexed) -> list[Event]:
        """Like :meth:`fedcoin.chain.FedCoin.events`, from the index (synced first when the chain moved)."""
        self.ensure_synced()
        et = self.by_name.get(name)
        if et is None:
            raise KeyError(f"no event {name!r} in the indexed ABI")
        fb = 0 if from_block in ("earliest", None) else int(from_block)
        tb = None if to_block in ("latest", "pending", "safe", "finalized", None) else int(to_block)
        filt = {k: v for k, v in indexed.items() if v is not None}
        inputs = {i["name"]: i for i in et.inputs}
        unknown = set(filt) - set(inputs)
        if unknown:
            raise KeyError(f"{name} has no argument {sorted(unknown)}")
        out = []
        for r in self.rows(name, task_id=filt.pop("taskId", None), round=filt.pop("round", None),
                           from_block=fb, to_block=tb):
            a = r["args"]
            if any(a.get(k) != to_json(inputs[k], v) for k, v in filt.items()):
                continue
            out.append(Event(name=name, args={k: from_json(inputs[k], a[k]) for k in a}, block_number=r["block_number"],
                             log_index=r["log_index"], tx_hash=r["tx_hash"]))
        return out


# ----------------------------------------------------------------------------- hooks


class IndexedFedCoin(FedCoin):
    """A :class:`FedCoin` whose every event reader (``fc.events`` and all ``*_events``) reads the
    :class:`EventIndex` ``index`` instead of ``eth_getLogs``; views and writes go to the chain."""

    index: EventIndex

    @classmethod
    def wrap(cls, fc: FedCoin, index: EventIndex) -> "IndexedFedCoin":
        inst = cls(fc.w3, fc.address, fc.account, priority_fee=fc.tx.priority_fee, gas_multiplier=fc.tx.gas_multiplier,
                   receipt_timeout=fc.tx.receipt_timeout, retries=fc.tx.retries)
        inst.index = index
        inst._client_cache = fc._client_cache
        return inst

    def events(self, name: str, *, from_block: int | str = 0, to_block: int | str = "latest", **indexed) -> list[Event]:
        return self.index.events(name, from_block=from_block, to_block=to_block, **indexed)

    def as_account(self, account) -> "IndexedFedCoin":
        return IndexedFedCoin.wrap(super().as_account(account), self.index)


def indexed(fc: FedCoin, path: str | Path | None = None) -> FedCoin:
    """``fc`` reading its events from the index at ``path`` (default :func:`default_index_path`)
    when that file exists, else ``fc`` itself. The hook ``audit``, ``request --status`` and the
    miner's discovery call: an index that exists is brought up to the chain's head first."""
    p = Path(path) if path else default_index_path(fc.chain_id, fc.address)
    if not p.exists():
        return fc
    return IndexedFedCoin.wrap(fc, EventIndex.for_fedcoin(fc, p))


# ----------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment)")
    parser.add_argument("--db", type=Path, default=None,
                        help="SQLite file (default: $FEDCOIN_HOME/index/<chainId>-<address>.sqlite)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="blocks per batch/transaction (default %(default)s)")
    parser.add_argument("--from-block", type=int, default=0, help="first block to index (default %(default)s)")
    parser.add_argument("--follow", action="store_true", help="keep indexing new blocks until interrupted")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls with --follow (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, RPCUnavailable, open_fedcoin

    if args.batch < 1:
        print("fedcoin index: --batch must be at least 1", file=sys.stderr)
        return 2
    try:
        fc = open_fedcoin(args.rpc, args.contract)
        idx = EventIndex.for_fedcoin(fc, args.db, batch=args.batch, from_block=args.from_block)
    except (RPCUnavailable, LookupError, ValueError, IndexFileError, sqlite3.Error) as e:
        print(f"fedcoin index: {e}", file=sys.stderr)
        return 2
    print(f"index {idx.path} of {fc.address} (chain {fc.chain_id})", flush=True)
    try:
        while True:
            rep = idx.sync()
            if rep.batches or rep.rewound or rep.reset or not args.follow:
                print(f"{rep}; {idx.count()} events in all", flush=True)
            if not args.follow:
                return 0
            time.sleep(args.poll)
    except (ChainError, RPCUnavailable) as e:
        print(f"fedcoin index: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stopped at block {idx.head[0]}", file=sys.stderr)
        return 130
    finally:
        idx.close()
