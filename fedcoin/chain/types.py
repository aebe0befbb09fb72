"""Plain-Python views of the contract: enums mirroring FedCoin.sol's, and view/event dataclasses.

Every Solidity enum has exactly one mirror here (an ``IntEnum`` with the same member order);
compare statuses with them, never with bare integers, and print ``.name``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

from fedcoin.chain.abi import normalize
from fedcoin.chain.errors import ChainError


class TaskStatus(IntEnum):
    """``FedCoin.TaskStatus``."""

    NONE = 0
    CREATED = 1
    ACCEPTED = 2
    COMPLETED = 3
    REFUNDED = 4


class RoundStatus(IntEnum):
    """``FedCoin.RoundStatus``."""

    OPEN = 0
    PUBLISHED = 1
    FINALIZED = 2
    ABANDONED = 3


class CreditReason(IntEnum):
    """``FedCoin.CreditReason`` (the ``reason`` of ``Credited``)."""

    BOND_RETURNED = 0
    COM_PRICE = 1
    SAP_PRICE = 2
    REFUND = 3


#: Every event FedCoin emits (each has a reader: :meth:`fedcoin.chain.FedCoin.events`).
EVENT_NAMES = (
    "TaskCreated", "TaskAccepted", "TaskRefunded", "TaskCompleted", "UpdateRegistered",
    "ShapleyTaskPublished", "Committed", "Revealed", "RoundReopened", "RoundAbandoned",
    "RoundFinalized", "PoSapBlock", "DifficultyAdjusted", "Credited", "Claimed", "Withdrawn",
)


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction.

    Attributes:
        tx_hash: hex hash; receipt: the web3 receipt; gas_used; fee: gas_used × effective price
        (wei the sender paid for gas); events: the FedCoin events it emitted, decoded.
    """

    tx_hash: str
    receipt: Any
    gas_used: int
    fee: int
    events: list["Event"] = field(default_factory=list)

    def event(self, name: str) -> "Event":
        """The first emitted event called ``name`` (KeyError if none)."""
        for e in self.events:
            if e.name == name:
                return e
        raise KeyError(f"transaction {self.tx_hash} emitted no {name}")

    @property
    def task_id(self) -> int:
        """The id of the task a ``createTask`` transaction created."""
        return self.event("TaskCreated").args["taskId"]


@dataclass(frozen=True)
class Event:
    """A decoded FedCoin log."""

    name: str
    args: dict
    block_number: int
    log_index: int
    tx_hash: str

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


@dataclass(frozen=True)
class TaskInfo:
    """``FedCoin.getTask`` (fields in Solidity order; ``status`` is a :class:`TaskStatus`)."""

    requester: str
    accept_deadline: int
    rounds: int
    server: str
    round_started_at: int
    current_round: int
    client_count: int
    train_bps: int
    com_bps: int
    sap_bps: int
    status: TaskStatus
    clients_root: bytes
    budget: int
    escrow: int
    unclaimed: int
    bonds: int


@dataclass(frozen=True)
class RoundInfo:
    """``FedCoin.getRound`` (``status`` is a :class:`RoundStatus`)."""

    status: RoundStatus
    attempt: int
    p: int
    aggregation: int
    registered: int
    commit_count: int
    reveal_count: int
    published_at: int
    commit_deadline: int
    reveal_deadline: int
    commit_window: int
    reveal_window: int
    registration_acc: bytes
    reveal_acc: bytes
    spec_hash: bytes
    difficulty: int
    bonds_held: int
    forfeited: int
    payouts_root: bytes


@dataclass(frozen=True)
class CommitmentInfo:
    """``FedCoin.getCommitment`` (hash is zero when there is none)."""

    hash: bytes
    bond: int
    seq: int
    committed_at: int
    revealed: bool


@dataclass(frozen=True)
class BlockRecord:
    """``FedCoin.getBlock``: one PoSap block record."""

    task_id: int
    round: int
    winner: str
    mean_hash: bytes
    winner_hash: bytes
    prev_hash: bytes
    difficulty: int
    payouts_root: bytes
    record_hash: bytes


#: Fields that carry a Solidity enum, decoded into its mirror.
_ENUM_FIELDS = {"TaskInfo": {"status": TaskStatus}, "RoundInfo": {"status": RoundStatus}}


def struct(cls, value) -> Any:
    """A view dataclass from the tuple a contract getter returns (enum fields as their IntEnum)."""
    vals = [normalize(v) for v in value]
    if len(vals) != len(fields(cls)):
        raise ChainError(f"{cls.__name__}: expected {len(fields(cls))} fields, got {len(vals)}")
    enums = _ENUM_FIELDS.get(cls.__name__, {})
    names = [f.name for f in fields(cls)]
    return cls(*(enums[n](v) if n in enums else v for n, v in zip(names, vals)))
