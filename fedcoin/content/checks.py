"""The deterministic checks every registered update must pass to enter a round's Shapley game.

The FL server runs them before publishing and lists every registration that fails in the task
spec (``excluded``: registration index, client, reason). Every miner re-runs the same checks
on the same bytes and refuses a spec whose exclusion list differs from its own, so the server
can neither keep a poisoned update in the game nor drop a valid one. Excluded clients are out
of the game (their Shapley value is 0) and the contract pays them nothing.

The checks, in order (the first that fails is the reason):

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

from fedcoin.content.store import ContentStore, StoreError, content_hash, parse_hash
from fedcoin.ml.models import Arch
from fedcoin.ml.serialization import SerializationError, params_from_bytes

#: An update's largest accepted global L2 norm. Honest MNIST updates are below 10 (20 local
#: steps at lr 0.1); the bound keeps |φ| far below the fixed-point range and FedAvg sane.
MAX_UPDATE_NORM = 1000
#: Largest accepted data cost n_k (a billion samples); weights stay exact in float32 sums.
MAX_DATA_COST = 10**9

#: Exclusion reasons, in the order the checks run.
REASONS = ("unavailable", "hash-mismatch", "undecodable", "non-finite", "norm-too-large", "data-cost-out-of-range",
           "csves-undeclared", "csves-th", "csves-tr")

#: CSVES gates a spec may name: the verified threshold test, the self-reported trend, or both.
CSVES_GATES = ("th", "tr", "th+tr")
#: Most validation rows per declared class a spec may ask for (bounds every miner's work).
CSVES_MAX_M = 1000
#: The one safetensors metadata key of an update blob's CSVES declaration (one key, because
#: safetensors writes several metadata keys in no fixed order and the bytes must be deterministic).
DECLARATION_KEY = "fedcoin.csves"


def csves_seed(chain_id: int, contract: str, task_id: int, round: int) -> bytes:
    """The round's class-sampling seed: keccak256(abi.encode("FedCoin CSVES", chainid, contract,
    taskId, round)). Fixed before any update exists and chosen by nobody, so neither the
    server nor a client can grind it; every miner recomputes it and refuses a spec with another."""
    from eth_abi import encode
    from eth_utils import keccak, to_checksum_address

    return keccak(encode(["string", "uint256", "address", "uint256", "uint256"],
                         ["FedCoin CSVES", int(chain_id), to_checksum_address(contract), int(task_id), int(round)]))


@dataclass(frozen=True)
class Csves:
    """A round's CSVES gate as the spec states it (all integers: τ in millionths)."""

    gate: str
    m: int
    tau_ppm: int
    seed: bytes

    def to_json(self) -> dict:
        return {"gate": self.gate, "m": int(self.m), "tau_ppm": int(self.tau_ppm), "seed": "0x" + self.seed.hex()}

    @classmethod
    def from_json(cls, d: dict) -> "Csves":
        return cls(d["gate"], int(d["m"]), int(d["tau_ppm"]), parse_hash(d["seed"]))

    @classmethod
    def for_round(cls, gate: str, *, m: int, tau: float, chain_id: int, contract: str, task_id: int, round: int) -> "Csves":
        if gate not in CSVES_GATES:
            raise ValueError(f"unknown CSVES gate {gate!r}; expected one of {CSVES_GATES}")
        if not 0 < tau <= 1 or not 1 <= m <= CSVES_MAX_M:
            raise ValueError(f"CSVES needs 0 < tau <= 1 and 1 <= m <= {CSVES_MAX_M}, got tau={tau} m={m}")
        return cls(gate, int(m), int(round_half(tau * 10**6)), csves_seed(chain_id, contract, task_id, round))


def round_half(x: float) -> int:
    return int(math.floor(x + 0.5))


@dataclass(frozen=True)
class CsvesContext:
    """What the CSVES checks need besides the blob: the gate, w_t and the validation pool."""

    csves: Csves
    global_params: dict
    val_x: np.ndarray
    val_y: np.ndarray
    n_classes: int


def blob_metadata(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors blob (``{}`` when absent or malformed).

    Reads only the JSON header (8-byte little-endian length, then JSON); nothing is executed."""
    import json

    if len(raw) < 8:
        return {}
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8 or n > 10**7:
        return {}
    try:
        meta = json.loads(raw[8:8 + n].decode("utf-8")).get("__metadata__") or {}
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def declaration_metadata(classes, v_e=None) -> dict[str, str]:
    """The metadata a client writes into its update blob: its classes and, optionally, v_E."""
    import json

    doc = {"classes": [int(c) for c in classes]}
    if v_e is not None:
        doc["v_e"] = [float(x) for x in v_e]
    return {DECLARATION_KEY: json.dumps(doc, sort_keys=True, separators=(",", ":"))}


def _declaration(meta: dict[str, str]) -> dict:
    import json

    try:
        d = json.loads(meta.get(DECLARATION_KEY, ""))
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def declared_classes(meta: dict[str, str], n_classes: int) -> tuple[int, ...] | None:
    """The blob's declared class set (ascending, distinct, in ``[0, n_classes)``), or None."""
    cls = _declaration(meta).get("classes")
    if not isinstance(cls, list) or not cls or not all(isinstance(c, int) and not isinstance(c, bool) for c in cls):
        return None
    if cls != sorted(set(cls)) or cls[0] < 0 or cls[-1] >= n_classes:
        return None
    return tuple(cls)


def reported_trajectory(meta: dict[str, str]) -> list[float] | None:
    """The blob's self-reported v_E (finite errors in [0, 1]), or None."""
    v = _declaration(meta).get("v_e")
    if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return None
    v = [float(x) for x in v]
    return v if all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in v) else None


def csves_check(raw: bytes, params: dict, arch: Arch, ctx: CsvesContext) -> tuple[str, str] | None:
    """The CSVES checks of one decoded update: ``(reason, detail)`` or None when it passes."""
    from fedcoin.ml import csves as cs

    meta = blob_metadata(raw)
    classes = declared_classes(meta, ctx.n_classes)
    if classes is None:
        return "csves-undeclared", f"no valid class set under {DECLARATION_KEY} in the blob's metadata"
    gate = ctx.csves
    if "th" in gate.gate.split("+"):
        idx = cs.class_sampled_indices(ctx.val_y, classes, gate.m, gate.seed)
        if len(idx) == 0:
            return "csves-th", f"the validation pool has no row of the declared classes {list(classes)}"
        model = {k: np.asarray(ctx.global_params[k], np.float32) + params[k] for k in params}
        import jax.numpy as jnp

        wrong = int(cs.wrong_count(arch, model, jnp.asarray(ctx.val_x[idx]), jnp.asarray(ctx.val_y[idx], jnp.int32),
                                   jnp.ones(len(idx), bool)))
        # wrong / n < tau, in integers: no float rounding decides a verdict
        if not wrong * 10**6 < gate.tau_ppm * len(idx):
            return "csves-th", (f"error {wrong}/{len(idx)} = {wrong / len(idx):.4f} on the class-sampled set of "
                                f"classes {list(classes)} is not below tau = {gate.tau_ppm / 1e6:g}")
    if "tr" in gate.gate.split("+"):
        v = reported_trajectory(meta)
        if v is None:
            return "csves-undeclared", f"no valid self-reported v_e under {DECLARATION_KEY} in the blob's metadata"
        ok, slope = cs.csves_tr(v)
        if not ok:
            return "csves-tr", f"self-reported v_E slope {slope:.6g} is not negative (NOT verifiable)"
    return None


@dataclass(frozen=True)
class Registration:
    """One ``UpdateRegistered`` event: who, which bytes (by hash), where, and n_k."""

    index: int
    client: str
    hash: bytes
    locator: str
    data_cost: int


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

    Returns:
        :class:`Verdicts`.
    """
    included, excluded, updates = [], [], {}
    for reg in registrations:
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
    """:class:`Registration` list from ``UpdateRegistered`` events (in registration order)."""
    out = [
        Registration(int(e["index"]), e["client"], bytes(e["updateHash"]), e["locator"], int(e["dataCost"]))
        for e in events
    ]
    return sorted(out, key=lambda r: r.index)


def hash_of(value) -> bytes:
    """32 bytes from ``0x`` hex or bytes (for comparing spec hashes with registered ones)."""
    return parse_hash(value)
