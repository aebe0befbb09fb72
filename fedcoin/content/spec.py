"""The Shapley task spec: everything a miner needs to reproduce one round's utility exactly.

The FL server writes one spec per round, puts it in the content store and publishes its hash
(:meth:`TaskSpec.hash`, keccak256 of the canonical bytes) and locator on-chain. A miner fetches
the bytes with ``store.get(locator, on_chain_hash)`` and parses them with :func:`parse` (or
:meth:`TaskSpec.from_bytes`), which rejects anything malformed with a message naming the field.

Format (version 3), shown pretty-printed; on the wire it is canonical JSON — keys sorted, no
whitespace, UTF-8, integers only (no floats anywhere, so no float formatting to disagree on)::

    {
      "format": "fedcoin-task-spec",
      "version": 1,
      "task": {"chain_id": 31337, "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
               "task_id": 1, "round": 0},
      "model": {"arch": "logreg-784-10", "dtype": "float32",
                "shapes": {"b0": [10], "w0": [784, 10]}},
      "global_model": {"hash": "0x…32 bytes…", "locator": "local:0x…"},
      "updates": [
        {"client": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "hash": "0x…",
         "locator": "local:0x…", "n_k": 500},
        …
      ],
      "excluded": [{"index": 3, "client": "0x…", "reason": "non-finite"}],
      "checks": {"max_update_norm": 1000, "max_data_cost": 1000000000},
      "aggregation": "fedavg-weighted",
      "utility": {"metric": "neg_cross_entropy"},
      "validation": {"hash": "0x…", "locator": "local:0x…", "n": 1000},
      "payment": "shapley",
      "csves": {"gate": "th", "m": 10, "tau_ppm": 100000, "seed": "0x…"}
    }

Meaning:

* ``model``: the architecture id of :class:`fedcoin.ml.models.Arch` and its parameter shapes
  (redundant on purpose; the parser checks they agree). Blobs are safetensors of float32
  (:mod:`fedcoin.ml.serialization`).
* ``global_model``: w_t, the global parameters *before* the round.
* ``updates``: every registration of the round, in registration order (the order of the
  Shapley vector). Each update is
  Δ_k = w_k − w_t, client k's locally trained parameters minus w_t; ``n_k`` is its data cost
  (number of local training samples) as registered on-chain.
* ``excluded``: the registrations (by index into ``updates``, ascending) that failed a check of
  :mod:`fedcoin.content.checks`, with the first failing check as ``reason``. They are out of
  the game: their Shapley value is 0, they are paid nothing, and they do not enter the next
  global model. Miners re-run the checks and refuse a spec whose list differs from theirs.
  ``unregistered-trainer`` (a task that requires trainers on FLChain, a client that had not
  joined it when it registered; :mod:`fedcoin.content.trainer_gate`) is one such reason.
* ``checks``: the bounds the checks used (integers): the largest update L2 norm and data cost.
* ``aggregation``: A(w_t, C) = w_t + Σ_{k∈C} a_k Δ_k / Σ_{k∈C} a_k with a_k = n_k
  (``"fedavg-weighted"``) or a_k = 1 (``"fedavg-uniform"``); A(w_t, ∅) = w_t.
* ``utility``: v(C) = m(A(w_t, C)) − m(w_t) on the validation set, m = negative mean
  cross-entropy (``"neg_cross_entropy"``) or accuracy (``"accuracy"``).
* ``validation``: a safetensors blob with ``x`` [n, d] float32 and ``y`` [n] int32; ``n`` is
  its number of rows. It is disjoint from every client's data and from the test set.
* ``task``: binds the spec to one round of one task on one contract on one chain, so a spec
  cannot be replayed for another round.
* ``payment``: the task's on-chain payment rule (``shapley``, ``data-cost`` or
  ``data-cost-gated``, :data:`fedcoin.protocol.posap.PAYMENT_RULES`); miners refuse a spec
  whose rule is not the task's.
* ``csves``: ``null``, or the round's Class-Sampled Validation-Error gate (Record-and-Reward;
  :class:`fedcoin.content.csves_gate.Csves`): ``gate`` ``th`` (CSVES-Th, recomputed by every
  miner), ``tr`` (CSVES-Tr on the client's self-reported v_E, NOT verifiable) or ``th+tr``;
  ``m`` validation rows per declared class; ``tau_ppm`` τ in millionths (100000 = the
  paper's 0.1); ``seed`` :func:`fedcoin.content.csves_gate.csves_seed` of the round, which
  nobody chooses. Updates that fail it are excluded (``csves-th``, ``csves-tr``,
  ``csves-undeclared``) like any other failed check.

Hashes are ``0x`` + 64 lowercase hex digits (keccak256, :func:`fedcoin.content.store.content_hash`);
addresses are EIP-55 checksummed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Sequence

from fedcoin.ml.fedavg import DEFAULT_RULE, RULES
from fedcoin.ml.models import Arch
from fedcoin.ml.utility import METRICS
from fedcoin.content.checks import REASONS
from fedcoin.content.csves_gate import CSVES_GATES, CSVES_MAX_M
from fedcoin.protocol.posap import PAYMENT_RULES
from fedcoin.content.store import content_hash

FORMAT = "fedcoin-task-spec"
VERSION = 3

_HASH = re.compile(r"^0x[0-9a-f]{64}$")
_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")


class SpecError(ValueError):
    """A task spec is malformed; the message names the offending field."""


# --------------------------------------------------------------------------------------------
# canonical JSON


def canonical_json(obj) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN; floats are refused (specs are integer-only)."""

    def check(o, path):
        if isinstance(o, float):
            raise SpecError(f"{path}: floats are not allowed in a task spec")
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, str):
                    raise SpecError(f"{path}: keys must be strings")
                check(v, f"{path}.{k}")
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                check(v, f"{path}[{i}]")

    check(obj, "spec")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# --------------------------------------------------------------------------------------------
# the spec


@dataclass(frozen=True)
class BlobRef:
    """A blob in the content store: its keccak256 (``0x`` hex) and its locator."""

    hash: str
    locator: str

    def hash_bytes(self) -> bytes:
        return bytes.fromhex(self.hash[2:])


@dataclass(frozen=True)
class UpdateRef:
    """One client's registered update Δ_k."""

    client: str
    hash: str
    locator: str
    n_k: int

    def hash_bytes(self) -> bytes:
        return bytes.fromhex(self.hash[2:])


@dataclass(frozen=True)
class ExcludedRef:
    """A registration left out of the game (index into ``updates``) and why."""

    index: int
    client: str
    reason: str


def default_checks() -> dict:
    """The bounds of :mod:`fedcoin.content.checks` this version applies, as spec integers."""
    from fedcoin.content import checks

    return {"max_update_norm": int(checks.MAX_UPDATE_NORM), "max_data_cost": int(checks.MAX_DATA_COST)}


@dataclass(frozen=True)
class TaskSpec:
    """One round's Shapley task (see the module docstring for the meaning of each field)."""

    chain_id: int
    contract: str
    task_id: int
    round: int
    arch: str
    global_model: BlobRef
    updates: tuple[UpdateRef, ...]
    validation: BlobRef
    validation_n: int
    aggregation: str = DEFAULT_RULE
    metric: str = "neg_cross_entropy"
    excluded: tuple[ExcludedRef, ...] = ()
    checks: dict = field(default_factory=default_checks)
    version: int = field(default=VERSION)
    payment: str = "shapley"
    csves: dict | None = None

    def __post_init__(self):
        # validate by round-tripping through the strict parser's checks
        _validate(self.to_json())

    @property
    def model_arch(self) -> Arch:
        return Arch.parse(self.arch)

    @property
    def n_k(self) -> tuple[int, ...]:
        return tuple(u.n_k for u in self.updates)

    @property
    def excluded_indices(self) -> tuple[int, ...]:
        return tuple(e.index for e in self.excluded)

    @property
    def included(self) -> tuple[int, ...]:
        """Registration indices in the game, ascending."""
        out = set(self.excluded_indices)
        return tuple(i for i in range(len(self.updates)) if i not in out)

    def to_json(self) -> dict:
        arch = Arch.parse(self.arch)
        return {
            "format": FORMAT,
            "version": self.version,
            "task": {
                "chain_id": self.chain_id,
                "contract": self.contract,
                "task_id": self.task_id,
                "round": self.round,
            },
            "model": {
                "arch": self.arch,
                "dtype": "float32",
                "shapes": {k: list(v) for k, v in arch.shapes().items()},
            },
            "global_model": {"hash": self.global_model.hash, "locator": self.global_model.locator},
            "updates": [
                {"client": u.client, "hash": u.hash, "locator": u.locator, "n_k": u.n_k} for u in self.updates
            ],
            "excluded": [{"index": e.index, "client": e.client, "reason": e.reason} for e in self.excluded],
            "checks": dict(self.checks),
            "aggregation": self.aggregation,
            "utility": {"metric": self.metric},
            "validation": {"hash": self.validation.hash, "locator": self.validation.locator, "n": self.validation_n},
            "payment": self.payment,
            "csves": None if self.csves is None else dict(self.csves),
        }

    def encode(self) -> bytes:
        """The canonical bytes that go to the store."""
        return canonical_json(self.to_json())

    def hash(self) -> bytes:
        """keccak256 of :meth:`encode`: the ``bytes32`` published on-chain."""
        return content_hash(self.encode())

    @classmethod
    def from_bytes(cls, data: bytes, *, require_canonical: bool = True) -> "TaskSpec":
        return parse(data, require_canonical=require_canonical)


def build_spec(
    *,
    chain_id: int,
    contract: str,
    task_id: int,
    round: int,
    arch: Arch | str,
    global_model: tuple[bytes | str, str],
    updates: list[tuple[str, bytes | str, str, int]],
    validation: tuple[bytes | str, str],
    validation_n: int,
    aggregation: str = DEFAULT_RULE,
    metric: str = "neg_cross_entropy",
    excluded: Sequence[tuple[int, str]] = (),
    payment: str = "shapley",
    csves: dict | None = None,
) -> TaskSpec:
    """Build (and validate) a spec from raw values.

    Args:
        global_model: ``(hash, locator)`` of w_t.
        updates: ``[(client address, hash, locator, n_k), ...]`` in registration order.
        validation: ``(hash, locator)`` of the validation blob; ``validation_n`` its rows.
        excluded: ``[(index, reason), ...]`` of registrations that failed a check.
        payment: the task's payment rule; csves: the round's CSVES gate (``Csves.to_json()``) or None.
        hashes may be 32 bytes or ``0x`` hex; addresses are checksummed here.

    Raises:
        SpecError: any field is invalid.
    """
    from eth_utils import to_checksum_address

    def h(x) -> str:
        return "0x" + bytes(x).hex() if isinstance(x, (bytes, bytearray)) else str(x).lower()

    def addr(a: str) -> str:
        try:
            return to_checksum_address(a)
        except (ValueError, TypeError) as e:
            raise SpecError(f"bad client address {a!r}: {e}") from None

    return TaskSpec(
        chain_id=int(chain_id),
        contract=addr(contract),
        task_id=int(task_id),
        round=int(round),
        arch=arch.id if isinstance(arch, Arch) else arch,
        global_model=BlobRef(h(global_model[0]), global_model[1]),
        updates=tuple(UpdateRef(addr(c), h(hh), loc, int(n)) for c, hh, loc, n in updates),
        validation=BlobRef(h(validation[0]), validation[1]),
        validation_n=int(validation_n),
        aggregation=aggregation,
        metric=metric,
        excluded=tuple(ExcludedRef(int(i), addr(updates[int(i)][0]), r) for i, r in sorted(excluded)),
        payment=payment,
        csves=None if csves is None else dict(csves),
    )


# --------------------------------------------------------------------------------------------
# strict parsing


def _obj(d, path: str, keys: set[str]) -> dict:
    if not isinstance(d, dict):
        raise SpecError(f"{path}: expected an object, got {type(d).__name__}")
    missing = keys - d.keys()
    if missing:
        raise SpecError(f"{path}: missing field(s) {sorted(missing)}")
    extra = d.keys() - keys
    if extra:
        raise SpecError(f"{path}: unknown field(s) {sorted(extra)} (format version {VERSION} has {sorted(keys)})")
    return d


def _int(v, path: str, *, minimum: int = 0) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise SpecError(f"{path}: expected an integer, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise SpecError(f"{path}: must be >= {minimum}, got {v}")
    return v


def _str(v, path: str) -> str:
    if not isinstance(v, str) or not v:
        raise SpecError(f"{path}: expected a non-empty string, got {type(v).__name__} {v!r}")
    return v


def _hash(v, path: str) -> str:
    if not isinstance(v, str) or not _HASH.match(v):
        raise SpecError(f"{path}: expected '0x' + 64 lowercase hex digits (keccak256), got {v!r}")
    return v


def _address(v, path: str) -> str:
    from eth_utils import to_checksum_address

    if not isinstance(v, str) or not _ADDR.match(v) or to_checksum_address(v) != v:
        raise SpecError(f"{path}: expected an EIP-55 checksummed address, got {v!r}")
    return v


def _blob(d, path: str, extra: set[str] = frozenset()) -> dict:
    d = _obj(d, path, {"hash", "locator", *extra})
    _hash(d["hash"], f"{path}.hash")
    _str(d["locator"], f"{path}.locator")
    return d


def _validate(doc) -> None:
    top = {"format", "version", "task", "model", "global_model", "updates", "excluded", "checks", "aggregation",
           "utility", "validation", "payment", "csves"}
    if not isinstance(doc, dict):
        raise SpecError(f"spec: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise SpecError(f"spec.format: expected {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise SpecError(f"spec.version: unknown version {doc.get('version')!r}; this parser reads version {VERSION}")
    _obj(doc, "spec", top)
    task = _obj(doc["task"], "spec.task", {"chain_id", "contract", "task_id", "round"})
    _int(task["chain_id"], "spec.task.chain_id", minimum=1)
    _address(task["contract"], "spec.task.contract")
    _int(task["task_id"], "spec.task.task_id")
    _int(task["round"], "spec.task.round")
    model = _obj(doc["model"], "spec.model", {"arch", "dtype", "shapes"})
    try:
        arch = Arch.parse(_str(model["arch"], "spec.model.arch"))
    except ValueError as e:
        raise SpecError(f"spec.model.arch: {e}") from None
    if model["dtype"] != "float32":
        raise SpecError(f"spec.model.dtype: expected 'float32', got {model['dtype']!r}")
    want = {k: list(v) for k, v in arch.shapes().items()}
    if model["shapes"] != want:
        raise SpecError(f"spec.model.shapes: {model['shapes']!r} do not match {arch.id} ({want})")
    _blob(doc["global_model"], "spec.global_model")
    ups = doc["updates"]
    if not isinstance(ups, list) or not ups:
        raise SpecError("spec.updates: expected a non-empty list of client updates")
    seen: set[str] = set()
    for i, u in enumerate(ups):
        p = f"spec.updates[{i}]"
        u = _obj(u, p, {"client", "hash", "locator", "n_k"})
        c = _address(u["client"], f"{p}.client")
        if c in seen:
            raise SpecError(f"{p}.client: {c} appears twice; a client registers one update per round")
        seen.add(c)
        _hash(u["hash"], f"{p}.hash")
        _str(u["locator"], f"{p}.locator")
        _int(u["n_k"], f"{p}.n_k", minimum=1)
    exc = doc["excluded"]
    if not isinstance(exc, list):
        raise SpecError("spec.excluded: expected a list (empty when every update passed the checks)")
    last = -1
    for i, e in enumerate(exc):
        p = f"spec.excluded[{i}]"
        e = _obj(e, p, {"index", "client", "reason"})
        idx = _int(e["index"], f"{p}.index")
        if idx <= last or idx >= len(ups):
            raise SpecError(f"{p}.index: {idx} must be ascending and index one of the {len(ups)} updates")
        last = idx
        if e["client"] != ups[idx]["client"]:
            raise SpecError(f"{p}.client: {e['client']} is not the client of update {idx} ({ups[idx]['client']})")
        if e["reason"] not in REASONS:
            raise SpecError(f"{p}.reason: expected one of {REASONS}, got {e['reason']!r}")
    if len(exc) == len(ups):
        raise SpecError("spec.excluded: every update is excluded; there is no game to value")
    chk = _obj(doc["checks"], "spec.checks", {"max_update_norm", "max_data_cost"})
    _int(chk["max_update_norm"], "spec.checks.max_update_norm", minimum=1)
    _int(chk["max_data_cost"], "spec.checks.max_data_cost", minimum=1)
    if doc["aggregation"] not in RULES:
        raise SpecError(f"spec.aggregation: expected one of {RULES}, got {doc['aggregation']!r}")
    util = _obj(doc["utility"], "spec.utility", {"metric"})
    if util["metric"] not in METRICS:
        raise SpecError(f"spec.utility.metric: expected one of {METRICS}, got {util['metric']!r}")
    val = _blob(doc["validation"], "spec.validation", {"n"})
    _int(val["n"], "spec.validation.n", minimum=1)
    if doc["payment"] not in PAYMENT_RULES:
        raise SpecError(f"spec.payment: expected one of {PAYMENT_RULES}, got {doc['payment']!r}")
    if doc["csves"] is not None:
        c = _obj(doc["csves"], "spec.csves", {"gate", "m", "tau_ppm", "seed"})
        if c["gate"] not in CSVES_GATES:
            raise SpecError(f"spec.csves.gate: expected one of {CSVES_GATES}, got {c['gate']!r}")
        m = _int(c["m"], "spec.csves.m", minimum=1)
        if m > CSVES_MAX_M:
            raise SpecError(f"spec.csves.m: {m} rows per class is above the bound {CSVES_MAX_M}")
        tau = _int(c["tau_ppm"], "spec.csves.tau_ppm", minimum=1)
        if tau > 10**6:
            raise SpecError(f"spec.csves.tau_ppm: {tau} is above 1000000 (τ = 1)")
        _hash(c["seed"], "spec.csves.seed")


def parse(data: bytes | str, *, require_canonical: bool = True) -> TaskSpec:
    """Parse and validate spec bytes.

    Args:
        data: the bytes fetched from the store (already checked against the on-chain hash).
        require_canonical: also require that ``data`` is exactly the canonical encoding (so the
            hash of what was fetched is the hash of what was parsed).

    Raises:
        SpecError: not UTF-8 JSON, missing or unknown fields, wrong types, unknown version,
            or (with ``require_canonical``) a non-canonical encoding.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise SpecError(f"spec is not UTF-8: {e}") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"spec is not valid JSON: {e}") from None
    _validate(doc)
    spec = TaskSpec(
        chain_id=doc["task"]["chain_id"],
        contract=doc["task"]["contract"],
        task_id=doc["task"]["task_id"],
        round=doc["task"]["round"],
        arch=doc["model"]["arch"],
        global_model=BlobRef(doc["global_model"]["hash"], doc["global_model"]["locator"]),
        updates=tuple(UpdateRef(u["client"], u["hash"], u["locator"], u["n_k"]) for u in doc["updates"]),
        validation=BlobRef(doc["validation"]["hash"], doc["validation"]["locator"]),
        validation_n=doc["validation"]["n"],
        aggregation=doc["aggregation"],
        metric=doc["utility"]["metric"],
        excluded=tuple(ExcludedRef(e["index"], e["client"], e["reason"]) for e in doc["excluded"]),
        checks=dict(doc["checks"]),
        version=doc["version"],
        payment=doc["payment"],
        csves=doc["csves"],
    )
    if require_canonical and spec.encode() != raw:
        raise SpecError("spec bytes are not in canonical form (sorted keys, no whitespace, UTF-8)")
    return spec


def _no_constant(name: str):
    raise SpecError(f"spec contains {name}, which JSON specs do not allow")


def published_spec(fc, store, task_id: int, rnd: int) -> TaskSpec | None:
    """Round ``rnd``'s spec as published on chain (the last ShapleyTaskPublished event of ``fc``),
    fetched from ``store`` and checked against its on-chain hash; None when never published.

    ``fc`` is any FedCoin binding (:class:`fedcoin.chain.binding.FedCoin`); ``store`` a
    :class:`fedcoin.content.store.ContentStore`.
    """
    ev = fc.published_events(task_id, rnd)
    if not ev:
        return None
    return parse(store.get(ev[-1].args["specLocator"], bytes(ev[-1].args["specHash"])))
