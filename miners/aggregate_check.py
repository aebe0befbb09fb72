"""Is round r's global model the aggregate of round r−1's included updates? A miner's verdict.

Round r's spec names w_r, the model the server says is A(w_{r−1}, included updates of round r−1)
under round r−1's aggregation rule (:func:`fedcoin.ml.fedavg.aggregate_all`, the one FedAvg
rule the server also uses). The miner recomputes it from public bytes: round r−1's spec as
published on chain (its keccak must be the on-chain hash), w_{r−1} and the included updates
fetched from the store (each checked against its hash). A server that publishes anything else
as w_r (an update it excluded, a reweighting, a model of its own) gets a "wrong" attestation in
the AggregateJury (contracts/AggregateJury.sol), where the revealed stake's majority decides
FLChain's Aggregate reports.

Round 0's model is the server's initial model, which no earlier round determines: there is no
verdict for it (None).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from fedcoin.content import spec as specs
from fedcoin.content.store import ContentStore
from fedcoin.ml import fedavg
from fedcoin.ml.serialization import params_from_bytes

#: Tolerance of the comparison: FedAvg in float32 on another device or backend may round the
#: last bits differently; a wrong aggregate (a dropped, added or reweighted update) moves
#: parameters by far more.
ATOL, RTOL = 1e-6, 1e-5


@dataclass(frozen=True)
class AggregateVerdict:
    """``wrong`` with the largest deviation found and a one-line reason."""

    wrong: bool
    max_abs_diff: float
    detail: str


def check_aggregate(fc, store: ContentStore, task_id: int, rnd: int, spec: specs.TaskSpec) -> AggregateVerdict | None:
    """The verdict on ``spec``'s global model (round ``rnd`` of ``task_id``); None for round 0.

    Raises:
        LookupError: round ``rnd − 1`` has no published spec.
        ContentIntegrityError / ContentNotFoundError: a blob is tampered with or missing (the
            caller attests nothing then: it cannot tell which party lost the bytes).
    """
    if rnd == 0:
        return None
    prev = specs.published_spec(fc, store, task_id, rnd - 1)
    if prev is None:
        raise LookupError(f"round {rnd - 1} of task {task_id} was never published")
    arch = spec.model_arch
    w_prev = params_from_bytes(store.get(prev.global_model.locator, prev.global_model.hash), arch)
    w_pub = params_from_bytes(store.get(spec.global_model.locator, spec.global_model.hash), arch)
    ups = [prev.updates[i] for i in prev.included]
    if not ups:
        same = all(np.array_equal(np.asarray(w_prev[n]), np.asarray(w_pub[n])) for n in w_prev)
        return AggregateVerdict(not same, 0.0, "round r−1 included no update, so w_r must equal w_{r−1}")
    deltas = [params_from_bytes(store.get(u.locator, u.hash), arch) for u in ups]
    want = fedavg.aggregate_all(w_prev, fedavg.stack(deltas), jnp.asarray([u.n_k for u in ups]),
                                rule=prev.aggregation)
    worst, wrong = 0.0, False
    for name in want:
        a, b = np.asarray(want[name], np.float64), np.asarray(w_pub[name], np.float64)
        if a.shape != b.shape:
            return AggregateVerdict(True, float("inf"), f"tensor {name} has shape {b.shape}, the aggregate {a.shape}")
        diff = np.abs(a - b)
        worst = max(worst, float(diff.max(initial=0.0)))
        wrong |= bool(np.any(diff > ATOL + RTOL * np.abs(a)))
    what = "is not" if wrong else "is"
    return AggregateVerdict(wrong, worst, f"w_{rnd} {what} FedAvg of round {rnd - 1}'s {len(ups)} included updates "
                                          f"(max |Δ| {worst:.2e})")
