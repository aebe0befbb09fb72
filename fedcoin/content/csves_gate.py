"""A round's CSVES gate (Record-and-Reward's Class-Sampled Validation-Error Scheme) as the update
checks apply it: the declaration a client writes into its update blob, the round's derived
sampling seed, and the verdicts ``csves-undeclared``, ``csves-th`` and ``csves-tr`` that
:func:`fedcoin.content.checks.check_blob` returns after its other checks.

CSVES-Th is recomputed from public bytes (w_t from the spec, the update, the spec's validation
set, the declared classes, m and the seed), so every miner reaches the same verdict and a
client cannot lie about it. CSVES-Tr rests on the client's self-reported trajectory v_E: the
check makes the claim binding (the blob's hash is registered), not true. See docs/rr.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedcoin.content.store import parse_hash
from fedcoin.ml.models import Arch

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
        return cls(gate, int(m), int(math.floor(tau * 10**6 + 0.5)), csves_seed(chain_id, contract, task_id, round))


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
