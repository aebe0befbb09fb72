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
    """``FedCoin.CreditReason`` (the ``reason`` of ``Credited``).

    BOND_RETURNED: a bond back (judged within SLASH_MULTIPLE·D, no consensus, or displaced);
    COM_PRICE: the server's fee of a settled round; SAP_PRICE: a qualifying miner's share;
    REFUND: budget back to the requester (dust, abandoned rounds, ended tasks); FORFEITED:
    slashed and unrevealed bonds, to the requester; EXPIRED: payouts unclaimed past the claim
    window, to the requester; PAYOUT: a client's payout credited to the address it named (claimTo).
    """

    BOND_RETURNED = 0
    COM_PRICE = 1
    SAP_PRICE = 2
    REFUND = 3
    FORFEITED = 4
    EXPIRED = 5
    PAYOUT = 6


class Verdict(IntEnum):
    """``FedCoin.Verdict`` (the ``verdict`` of ``Judged``): within D, within SLASH_MULTIPLE·D, beyond."""

    QUALIFIED = 0
    RETURNED = 1
    SLASHED = 2


#: Every event FedCoin emits (each has a reader: :meth:`fedcoin.chain.FedCoin.events`).
EVENT_NAMES = (
    "TaskCreated", "TaskConfigured", "TaskAccepted", "TaskRefunded", "TaskCompleted", "UpdateRegistered",
    "ShapleyTaskPublished", "Committed", "CommitDisplaced", "Revealed", "RoundReopened", "RoundAbandoned",
    "Judged", "RoundFinalized", "PoSapBlock", "DifficultyAdjusted", "Credited", "Claimed", "PayoutsExpired",
    "Withdrawn",
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
class TaskConfig:
    """What the requester chooses at ``createTask`` besides server, clients, rounds, split and
    budget (``FedCoin.TaskConfig``'s consensus part), with the project's defaults.

    Attributes:
        difficulty: D in fixed point. Relative (default): a fraction of ‖centre‖_p in 1e18
            units, ≤ 5e17; 2e17 = a miner qualifies within 20 % of ‖centre‖ — the same meaning at
            every scale of Shapley values. Absolute: ≤ 2**120.
        p: 1, 2 or 255 (infinity).
        relative: whether D is relative to ‖centre‖_p.
        registration_window, commit_window, reveal_window: seconds, each in [20 s, 7 days].
        claim_window: seconds after finalization during which clients may claim, [1 day, 365 days].
        payment: how TrainPrice is split among a round's clients: ``"shapley"`` (FedCoin, by the
            positive consensus Shapley values), ``"data-cost"`` (Record-and-Reward: by the
            registered n_k of every update not excluded) or ``"data-cost-gated"`` (by n_k among
            the updates whose consensus value is > 0); see docs/rr.md. A name or its code 0/1/2.
        max_data_cost: the largest n_k a client may register, fixed at creation (1 … 2**64 − 1;
            the default is no cap in practice). A cap bounds data-cost inflation (docs/rr.md).
    """

    difficulty: int = 2 * 10**17
    p: int = 2
    relative: bool = True
    registration_window: int = 3600
    commit_window: int = 600
    reveal_window: int = 600
    claim_window: int = 30 * 24 * 3600
    payment: str | int = "shapley"
    max_data_cost: int = 2**64 - 1


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
    p: int
    relative: bool
    registration_window: int
    commit_window: int
    reveal_window: int
    claim_window: int
    payment: int
    max_data_cost: int
    clients_root: bytes
    difficulty: int
    budget: int
    escrow: int
    unclaimed: int
    bonds: int

    @property
    def registration_deadline(self) -> int:
        """When the current round's registration period ends (roundStartedAt + window)."""
        return self.round_started_at + self.registration_window


@dataclass(frozen=True)
class RoundInfo:
    """``FedCoin.getRound`` (``status`` is a :class:`RoundStatus`)."""

    status: RoundStatus
    attempt: int
    p: int
    relative: bool
    aggregation: int
    registered: int
    excluded_count: int
    commit_count: int
    next_seq: int
    reveal_count: int
    published_at: int
    commit_deadline: int
    reveal_deadline: int
    finalized_at: int
    registration_acc: bytes
    reveal_acc: bytes
    spec_hash: bytes
    difficulty: int
    bonds_held: int
    forfeited: int
    unclaimed: int
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
    payment: int
    centre_hash: bytes
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


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def decode_words(cls, words, layout: dict, struct_name: str) -> Any:
    """A view dataclass from the raw storage words ``getTask``/``getRound`` return, unpacked with
    the compiler's storage layout of ``struct_name`` (shipped in the artifact).

    Each member sits in word ``slot`` at byte ``offset`` from the low end, ``numberOfBytes`` long
    (Solidity packs small fields right to left). Raises :class:`ChainError` if the layout's
    members are not the dataclass's fields in order.
    """
    types = layout.get("types") or {}
    key = next((k for k in types if k.startswith(f"t_struct({struct_name})")), None)
    if key is None:
        raise ChainError(f"no storage layout for struct {struct_name} in the artifact")
    members = types[key]["members"]
    names = [f.name for f in fields(cls)]
    if [_snake(m["label"]) for m in members] != names:
        raise ChainError(f"{cls.__name__}: storage layout {[m['label'] for m in members]} does not match {names}")
    enums = _ENUM_FIELDS.get(cls.__name__, {})
    raw = [int.from_bytes(bytes(w), "big") for w in words]
    out = []
    for m, name in zip(members, names):
        t = m["type"]
        size = int(types[t]["numberOfBytes"])
        v = (raw[int(m["slot"])] >> (8 * int(m["offset"]))) & ((1 << (8 * size)) - 1)
        if name in enums:
            v = enums[name](v)
        elif t == "t_address":
            from eth_utils import to_checksum_address

            v = to_checksum_address(v.to_bytes(20, "big"))
        elif t == "t_bool":
            v = bool(v)
        elif t.startswith("t_bytes"):
            v = v.to_bytes(size, "big")
        out.append(v)
    return cls(*out)
