"""The miner's crash-safe journal: what it must remember to reveal after a crash.

The commit/reveal protocol punishes forgetting: a miner that commits and then loses its salt
or its vector can never reveal, and forfeits its bond. So the journal entry for an attempt
(vector, iterations, salt, the commitment they hash to) is written and fsync'd **before** the
commit transaction is sent; a miner killed at any moment and restarted finds the entry and
either re-sends the same commitment (if the transaction never landed) or reveals it.

One JSON file per (chain, contract, task, round, attempt, miner), replaced atomically
(write to a temporary file, fsync, rename, fsync the directory), so a crash leaves either the
old or the new entry, never a torn one. Vectors are stored as decimal strings of their
fixed-point ints, so nothing is lost to float formatting.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

#: Entry states, in the order an attempt goes through them.
PREPARED = "prepared"  # vector, salt and commitment durable; commit tx maybe not yet sent
COMMITTED = "committed"  # commitment seen on chain
REVEALED = "revealed"  # reveal mined: bond credited back
SETTLED = "settled"  # round finalized, re-opened or abandoned: nothing more to do
ABANDONED = "abandoned"  # the commit never landed and its window closed: nothing at stake

STATES = (PREPARED, COMMITTED, REVEALED, SETTLED, ABANDONED)


class JournalError(RuntimeError):
    """A journal file is unreadable or inconsistent; the message names the file."""


@dataclass
class Entry:
    """What a miner must remember about one commit/reveal attempt.

    Attributes:
        chain_id, contract, task_id, round, attempt, miner: which attempt this is.
        values: the Shapley vector S as fixed-point ints, in registration order.
        iterations: the sample count to be revealed with S.
        salt: the commitment's 32-byte salt, 0x-hex.
        commitment: keccak of the above (:func:`fedcoin.protocol.commitment.commitment_hash`), 0x-hex.
        status: one of :data:`STATES`.
        txs: transaction hashes sent for this attempt, by purpose (``commit``, ``reveal``, ...).
    """

    chain_id: int
    contract: str
    task_id: int
    round: int
    attempt: int
    miner: str
    values: list[int]
    iterations: int
    salt: str
    commitment: str
    status: str = PREPARED
    txs: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.chain_id}-{self.contract.lower()}-{self.task_id}-{self.round}-{self.attempt}-{self.miner.lower()}"

    def to_json(self) -> str:
        d = asdict(self)
        d["values"] = [str(v) for v in self.values]
        return json.dumps(d, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Entry":
        d = json.loads(text)
        d["values"] = [int(v) for v in d["values"]]
        if d.get("status") not in STATES:
            raise ValueError(f"unknown status {d.get('status')!r}")
        return cls(**d)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """A directory of :class:`Entry` files.

    Args:
        directory: where entries live (created if missing). Several miners may share a
            directory: entries are keyed by miner address.
    """

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def write(self, entry: Entry) -> None:
        """Durably replace the entry's file (atomic: old or new content survives a crash)."""
        path = self._path(entry.key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(entry.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.dir)

    def update(self, entry: Entry, *, status: str | None = None, **txs: str) -> Entry:
        """Set ``status`` and/or record transaction hashes, then write durably."""
        if status is not None:
            if status not in STATES:
                raise ValueError(f"unknown status {status!r}")
            entry.status = status
        entry.txs.update(txs)
        self.write(entry)
        return entry

    def get(self, chain_id: int, contract: str, task_id: int, round: int, attempt: int, miner: str) -> Entry | None:
        key = f"{chain_id}-{contract.lower()}-{task_id}-{round}-{attempt}-{miner.lower()}"
        path = self._path(key)
        return self._load(path) if path.exists() else None

    def _load(self, path: Path) -> Entry:
        try:
            return Entry.from_json(path.read_text())
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise JournalError(f"journal entry {path} is unreadable: {e}") from e

    def entries(self, *, miner: str | None = None, open_only: bool = False) -> Iterator[Entry]:
        """Entries in file-name order; ``open_only`` keeps those with work left (not settled/abandoned)."""
        for path in sorted(self.dir.glob("*.json")):
            e = self._load(path)
            if miner is not None and e.miner.lower() != miner.lower():
                continue
            if open_only and e.status in (SETTLED, ABANDONED):
                continue
            yield e
