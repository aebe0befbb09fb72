"""The deterministic checks every registered update must pass to enter a round's Shapley game.

The FL server runs them before publishing and lists every registration that fails in the task
spec (``excluded``: registration index, client, reason). Every miner re-runs the same checks
on the same bytes and refuses a spec whose exclusion list differs from its own, so the server
can neither keep a poisoned update in the game nor drop a valid one. Excluded clients are out
of the game (their Shapley value is 0) and the contract pays them nothing.

The checks, in order (the first that fails is the reason):

``unregistered-trainer``
    only when the task requires trainers on FLChain (``requiredDeposit(taskId) != 0``): the
    client had not joined the task when it registered (``joinedAt`` is 0 or later than the
    block of its ``UpdateRegistered`` event). Decided from FLChain's immutable ``joinedAt`` and
    the event's block number, before anything is fetched (:mod:`fedcoin.content.trainer_gate`).
``unavailable``
    the blob cannot be fetched from its locator (not found, store unreachable, a locator of a
    scheme this store does not serve). This is the one claim a miner cannot prove or refute:
    a miner that cannot fetch a blob cannot tell a lying server from a client that never
    uploaded, so miners accept the server's ``unavailable`` verdicts as given and check only
    that the blob of every *included* update is fetchable. A client sees its exclusion in the
    spec (and the ``ShapleyTaskPublished`` event) and contests it by re-uploading before the
    next round and registering there (see docs/fl_server.md).
``hash-mismatch``
    the bytes' keccak256 is not the hash the client registered on-chain.
``undecodable``
    not a safetensors file of exactly the architecture's tensors (names, shapes, float32).
``non-finite``
    a NaN or ±Inf anywhere.
``norm-too-large``
    the update's global L2 norm (all tensors, float64) exceeds :data:`MAX_UPDATE_NORM`.
``data-cost-out-of-range``
    the registered n_k is outside ``[1, MAX_DATA_COST]``.

With a CSVES gate in the spec (:class:`Csves`, Record-and-Reward's Class-Sampled
Validation-Error Scheme), three more, after the above:

``csves-undeclared``
    the blob declares no valid class set (safetensors metadata key ``fedcoin.csves``, a JSON
    object ``{"classes": [1, 3, 7], "v_e": [0.52, 0.41, …]}``: ascending class ids of the task
    and, for a ``tr`` gate, the self-reported trajectory of errors in [0, 1]).
``csves-th``
    CSVES-Th: the error of T_k + Δ_k on the client's class-sampled validation rows
    (:func:`fedcoin.ml.csves.class_sampled_indices` of the spec's validation set, the declared
    classes, ``m`` and the round's :func:`csves_seed`) is not below τ. Every miner recomputes
    it from public bytes, so a client cannot lie about it.
``csves-tr``
    CSVES-Tr: the least-squares slope of the client's *self-reported* v_E is not negative.
    Nobody can replay a client's trajectory (it needs the client's data): this check only
    makes the claim binding (the blob is hashed on chain), it does not make it true.

The declaration lives in the update blob itself, so it is bound by the hash the client
registered: the server cannot change it and the client cannot change it after the fact.

The bounds are stated in each spec (``checks``), so a miner applies the server's published
bounds — and refuses a spec whose bounds are not the ones this version accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fedcoin.content.csves_gate import CsvesContext, csves_check
from fedcoin.content.trainer_gate import REASON as UNREGISTERED_TRAINER, TrainerGate
from fedcoin.content.store import ContentStore, StoreError, content_hash, parse_hash
from fedcoin.ml.models import Arch
from fedcoin.ml.serialization import SerializationError, params_from_bytes

#: An update's largest accepted global L2 norm. Honest MNIST updates are below 10 (20 local
#: steps at lr 0.1); the bound keeps |φ| far below the fixed-point range and FedAvg sane.
MAX_UPDATE_NORM = 1000
#: Largest accepted data cost n_k (a billion samples); weights stay exact in float32 sums.
MAX_DATA_COST = 10**9

#: Exclusion reasons, in the order the checks run.
REASONS = (UNREGISTERED_TRAINER, "unavailable", "hash-mismatch", "undecodable", "non-finite", "norm-too-large",
           "data-cost-out-of-range", "csves-undeclared", "csves-th", "csves-tr")

@dataclass(frozen=True)
class Registration:
    """One ``UpdateRegistered`` event: who, which bytes (by hash), where, n_k, and the block it
    was registered in (0: unknown; the trainer check needs it)."""

    index: int
    client: str
    hash: bytes
    locator: str
    data_cost: int
    block: int = 0


@dataclass(frozen=True)
class Exclusion:
    """A registration left out of the game, with the first check it failed."""

    index: int
    client: str
    reason: str
    detail: str = ""

    def __post_init__(self):
        if self.reason not in REASONS:
            raise ValueError(f"unknown exclusion reason {self.reason!r}; expected one of {REASONS}")


@dataclass(frozen=True)
class Verdicts:
    """The outcome of checking a round's registrations.

    Attributes:
        included: registration indices that passed, ascending.
        excluded: the failures, ascending by index.
        updates: the decoded parameters of each included update, by registration index.
    """

    included: tuple[int, ...]
    excluded: tuple[Exclusion, ...]
    updates: dict

    @property
    def excluded_indices(self) -> tuple[int, ...]:
        return tuple(e.index for e in self.excluded)


def check_blob(raw: bytes, registered_hash: bytes, arch: Arch, data_cost: int,
               csves: CsvesContext | None = None) -> tuple[str, str] | tuple[None, dict]:
    """Run the checks after ``unavailable`` on fetched bytes (and the CSVES gate, if any).

    Returns:
        ``(reason, detail)`` for the first failing check, or ``(None, params)`` with the
        decoded float32 parameters when every check passes.
    """
    got = content_hash(raw)
    if got != bytes(registered_hash):
        return "hash-mismatch", f"bytes hash to 0x{got.hex()}, registered 0x{bytes(registered_hash).hex()}"
    try:
        params = params_from_bytes(raw, arch)
    except SerializationError as e:
        return "undecodable", str(e)
    total = 0.0
    for name in sorted(params):
        a = np.asarray(params[name], np.float64)
        if not np.all(np.isfinite(a)):
            return "non-finite", f"tensor {name} holds NaN or Inf"
        total += float(np.sum(a * a))
    norm = math.sqrt(total)
    if norm > MAX_UPDATE_NORM:
        return "norm-too-large", f"L2 norm {norm:.6g} > {MAX_UPDATE_NORM:g}"
    if not 1 <= int(data_cost) <= MAX_DATA_COST:
        return "data-cost-out-of-range", f"n_k = {data_cost} outside [1, {MAX_DATA_COST}]"
    if csves is not None:
        failed = csves_check(raw, params, arch, csves)
        if failed is not None:
            return failed
    return None, params


def check_registrations(
    store: ContentStore,
    arch: Arch,
    registrations: Sequence[Registration],
    *,
    unavailable: Callable[[Registration], bool] | None = None,
    csves: CsvesContext | None = None,
    trainers: TrainerGate | None = None,
) -> Verdicts:
    """Check every registration of a round (the server's run, and the miners' re-run).

    Args:
        store: where the blobs are fetched from (by locator, checked against the hash).
        arch: the round's model architecture.
        registrations: the round's ``UpdateRegistered`` events in registration order.
        unavailable: miners pass the server's verdict here (``lambda r: r.index in listed``):
            a registration the server listed as unavailable is not fetched. The server passes
            None and fetches everything.
        csves: the round's CSVES gate with w_t and the validation pool, or None for none.
        trainers: the task's FLChain trainer requirement
            (:func:`fedcoin.content.trainer_gate.trainer_gate`), or None for none. It runs first:
            an unjoined client's blob is never fetched, and its verdict overrides ``unavailable``.

    Returns:
        :class:`Verdicts`.
    """
    included, excluded, updates = [], [], {}
    for reg in registrations:
        failed = trainers.verdict(reg.client, reg.block) if trainers is not None else None
        if failed is not None:
            excluded.append(Exclusion(reg.index, reg.client, *failed))
            continue
        if unavailable is not None and unavailable(reg):
            excluded.append(Exclusion(reg.index, reg.client, "unavailable", "as listed by the server"))
            continue
        try:
            raw = store.get_unverified(reg.locator)
        except (StoreError, OSError, ValueError) as e:
            excluded.append(Exclusion(reg.index, reg.client, "unavailable", f"{type(e).__name__}: {e}"))
            continue
        reason, out = check_blob(raw, reg.hash, arch, reg.data_cost, csves)
        if reason is not None:
            excluded.append(Exclusion(reg.index, reg.client, reason, out))
        else:
            included.append(reg.index)
            updates[reg.index] = out
    return Verdicts(tuple(included), tuple(excluded), updates)


def registrations_from_events(events) -> list[Registration]:
    """:class:`Registration` list from ``UpdateRegistered`` events (in registration order), with
    each event's block number (``Event.block_number``, or a log dict's ``blockNumber``)."""
    def block(e) -> int:
        b = getattr(e, "block_number", None)
        if b is None and isinstance(e, dict):
            b = e.get("blockNumber")
        return int(b or 0)

    out = [
        Registration(int(e["index"]), e["client"], bytes(e["updateHash"]), e["locator"], int(e["dataCost"]), block(e))
        for e in events
    ]
    return sorted(out, key=lambda r: r.index)


def hash_of(value) -> bytes:
    """32 bytes from ``0x`` hex or bytes (for comparing spec hashes with registered ones)."""
    return parse_hash(value)
