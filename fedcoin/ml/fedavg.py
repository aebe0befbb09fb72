"""The one FedAvg rule: aggregation weights, coalition coefficients, the aggregate, the rule names
and their on-chain codes, and the per-round PRNG key schedule.

Everyone who builds a model from updates uses these functions and nothing else: the FL server
(next global model), the Shapley utility (every coalition's model), the miner's fast path
(prefix coalitions) and the figure scripts. So the server's next global model *is* the utility's
grand-coalition model, bit for bit (``tests/test_fl_fedavg.py`` checks it).

.. math::

    A(w_t, C) = w_t + \\sum_{k \\in C} a_k Δ_k, \\qquad
    a_k = \\frac{ω_k}{\\sum_{j \\in C} ω_j}, \\qquad
    ω_k = n_k \\text{ (``"fedavg-weighted"``) or } 1 \\text{ (``"fedavg-uniform"``)},

and A(w_t, ∅) = w_t (all coefficients zero).

Examples:
    >>> import jax.numpy as jnp
    >>> w = weights(jnp.array([1.0, 3.0]), "fedavg-weighted")
    >>> coalition_coefficients(w, jnp.array([True, True])).tolist()
    [0.25, 0.75]
    >>> int(Aggregation.from_rule("fedavg-uniform"))
    1
"""

from __future__ import annotations

from enum import IntEnum
from typing import Sequence

import jax
import jax.numpy as jnp

from fedcoin.ml.models import Params

#: The rule names, in the order of their on-chain codes (``FedCoin.AGG_WEIGHTED`` = 0,
#: ``FedCoin.AGG_UNIFORM`` = 1). Specs, CLIs and games spell rules only through this tuple.
RULES = ("fedavg-weighted", "fedavg-uniform")
DEFAULT_RULE = RULES[0]


class Aggregation(IntEnum):
    """The aggregation codes ``publishShapleyTask`` takes (``FedCoin.AGG_*``)."""

    WEIGHTED = 0
    UNIFORM = 1

    @property
    def rule(self) -> str:
        """The rule's name as specs and CLIs spell it."""
        return RULES[self]

    @classmethod
    def from_rule(cls, rule: str) -> "Aggregation":
        """The code of rule ``rule`` (ValueError naming the known rules otherwise)."""
        return cls(RULES.index(check_rule(rule)))


def check_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`RULES`, else a ValueError that lists them."""
    if rule not in RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; expected one of {RULES}")
    return rule


def weights(n_k: jax.Array, rule: str) -> jax.Array:
    """ω_k: ``[K]`` float32, n_k for ``"fedavg-weighted"`` and ones for ``"fedavg-uniform"``.

    Pure and traceable (``rule`` is static); :func:`check_data_costs` validates concrete n_k.
    """
    n_k = jnp.asarray(n_k, jnp.float32)
    if check_rule(rule) == "fedavg-weighted":
        return n_k
    return jnp.ones_like(n_k)


def check_data_costs(n_k, rule: str) -> None:
    """Weighted FedAvg needs every n_k > 0 (a ValueError naming them otherwise)."""
    if check_rule(rule) == "fedavg-weighted" and bool(jnp.any(jnp.asarray(n_k) <= 0)):
        raise ValueError(f"data costs n_k must be positive for weighted FedAvg, got {n_k}")


def coalition_coefficients(omega: jax.Array, mask: jax.Array) -> jax.Array:
    """a_k = ω_k [k∈C] / Σ_{j∈C} ω_j of a coalition (all zero for ∅).

    Args:
        omega: ``[K]`` float32 weights (from :func:`weights`).
        mask: ``[K]`` bool, the coalition C.

    Returns:
        ``[K]`` float32 coefficients summing to 1 (or 0 for the empty coalition).
    """
    w = jnp.where(mask, omega, jnp.zeros((), jnp.float32))
    total = jnp.sum(w)
    return w / jnp.where(total > 0, total, jnp.ones((), jnp.float32))


def aggregate(params: Params, updates: Params, coefficients: jax.Array) -> Params:
    """A(w_t, C) = w_t + Σ_k a_k Δ_k.

    Args:
        params: w_t.
        updates: Δ stacked on a leading ``[K]`` axis.
        coefficients: ``[K]`` float32 a_k (from :func:`coalition_coefficients`).

    Returns:
        The aggregated parameters, same structure as ``params``.
    """
    return {n: params[n] + jnp.tensordot(coefficients, updates[n], axes=1) for n in params}


@jax.jit
def _grand_coalition(params: Params, updates: Params, omega: jax.Array) -> Params:
    return aggregate(params, updates, coalition_coefficients(omega, jnp.ones(omega.shape, bool)))


def aggregate_all(params: Params, updates: Params | Sequence[Params], n_k, *, rule: str = DEFAULT_RULE) -> Params:
    """The next global model: A(w_t, all clients) under ``rule`` (the server's aggregate).

    Args:
        params: w_t.
        updates: stacked ``{name: [K, ...]}`` or a list of K parameter dicts.
        n_k: ``[K]`` data costs.
        rule: one of :data:`RULES`.
    """
    check_data_costs(n_k, rule)
    if not isinstance(updates, dict):
        updates = stack(updates)
    return _grand_coalition(params, updates, weights(jnp.asarray(n_k), rule))


def stack(trees: Sequence[Params]) -> Params:
    """``[{name: [..]}] * K`` -> ``{name: [K, ..]}``."""
    if not trees:
        raise ValueError("cannot stack an empty list of parameter dicts")
    names = list(trees[0])
    for i, t in enumerate(trees):
        if list(t) != names:
            raise ValueError(f"update {i} has tensors {list(t)}, expected {names}")
    return {k: jnp.stack([jnp.asarray(t[k]) for t in trees]) for k in names}


def unstack(stacked: Params) -> list[Params]:
    """Inverse of :func:`stack`."""
    K = len(next(iter(stacked.values())))
    return [{k: v[i] for k, v in stacked.items()} for i in range(K)]


# ------------------------------------------------------------------------- the key schedule


def init_key(key: jax.Array) -> jax.Array:
    """The key of w_0's initialisation, from a task's training key."""
    return jax.random.split(key)[0]


def round_key(key: jax.Array, rnd: int) -> jax.Array:
    """The key of round ``rnd``'s local training, from a task's training key.

    ``fold_in`` (not ``split`` into R keys) so that round r's key does not depend on how many
    rounds the task has: a resumed server, a figure script and a client process all derive the
    same key for the same round.
    """
    return jax.random.fold_in(jax.random.split(key)[1], rnd)
