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

Beside the entries the journal keeps, per (chain, genesis, contract, miner): the block the miner's
discovery has read up to (so a restart does not rescan from block 0) and the rounds it refused
with the one-line reason (so a restart does not retry a task that cannot be mined). Entries
carry the chain's genesis hash, so a chain reset (same chain id, new genesis) is detected and
its stale entries are reported and set aside instead of being acted on. One process at a time
may use an account's entries: :meth:`Journal.lock` takes an exclusive lock (``flock``) that a
second process on the same key and journal fails to get.
"""

from __future__ import annotations

import fcntl
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


class JournalLocked(JournalError):
    """Another process holds this account's journal lock (two miners on one key)."""


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
        genesis: 0x-hex hash of the chain's block 0 when the entry was written ("" in entries
            written before genesis was recorded: treated as matching).
        bond: wei bonded with the commitment (0: the contract's minimum at the time).
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
    genesis: str = ""
    bond: int = 0

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

    # ---------------------------------------------------------------- one process per account

    def lock(self, miner: str) -> None:
        """Take this account's exclusive lock for the life of the process.

        Raises:
            JournalLocked: another live process holds it (the message names its pid).
        """
        path = self.dir / f"{miner.lower()}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalLocked(
                f"another miner process (pid {holder}) is already using account {miner} with journal {self.dir}; "
                f"two processes on one key would overwrite each other's commitments and lose bonds. "
                f"Stop the other one first, or use another account."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd  # held until the process exits (the kernel drops it then)

    # ---------------------------------------------------------------- per-chain bookkeeping

    def _meta_path(self, kind: str, chain_id: int, genesis: str, contract: str, miner: str) -> Path:
        # per miner: accounts may share a journal directory, and each must say its own refusals
        return self.dir / f"{kind}-{chain_id}-{genesis[2:14].lower()}-{contract.lower()}-{miner.lower()}.state"

    def _read_meta(self, path: Path, default):
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as e:
            raise JournalError(f"journal file {path} is unreadable: {e}") from e

    def _write_meta(self, path: Path, data) -> None:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(data, f, sort_keys=True, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.dir)

    def cursor(self, chain_id: int, genesis: str, contract: str, miner: str) -> int:
        """The first block discovery has not read yet (0 when new)."""
        return int(self._read_meta(self._meta_path("cursor", chain_id, genesis, contract, miner), {"next_block": 0})["next_block"])

    def set_cursor(self, chain_id: int, genesis: str, contract: str, miner: str, next_block: int) -> None:
        self._write_meta(self._meta_path("cursor", chain_id, genesis, contract, miner), {"next_block": int(next_block)})

    def refusals(self, chain_id: int, genesis: str, contract: str, miner: str) -> dict[str, str]:
        """``{"task-round": reason}`` of rounds this miner refused on this chain and contract."""
        return dict(self._read_meta(self._meta_path("refused", chain_id, genesis, contract, miner), {}))

    def refuse(self, chain_id: int, genesis: str, contract: str, miner: str, task_id: int, round: int,
               reason: str) -> None:
        """Record that round ``round`` of task ``task_id`` is refused (durably)."""
        path = self._meta_path("refused", chain_id, genesis, contract, miner)
        data = self._read_meta(path, {})
        data[f"{task_id}-{round}"] = reason
        self._write_meta(path, data)

    def set_aside(self, entry: Entry, why: str) -> Path:
        """Move a stale entry (another chain's) into ``stale/`` so it is never acted on."""
        stale = self.dir / "stale"
        stale.mkdir(exist_ok=True)
        src = self._path(entry.key)
        dst = stale / src.name
        os.replace(src, dst)
        (stale / f"{src.stem}.why").write_text(why + "\n")
        return dst

    def entries(self, *, miner: str | None = None, open_only: bool = False) -> Iterator[Entry]:
        """Entries in file-name order; ``open_only`` keeps those with work left (not settled/abandoned)."""
        for path in sorted(self.dir.glob("*.json")):
            e = self._load(path)
            if miner is not None and e.miner.lower() != miner.lower():
                continue
            if open_only and e.status in (SETTLED, ABANDONED):
                continue
            yield e
