"""A control variate for permutation sampling: the weighted-mean-of-singletons game.

For FedAvg the value of a coalition is, to first order, a weighted mean of what its members
achieve alone. The cheap game

    u(C) = Σ_{k∈C} ω_k s_k / Σ_{k∈C} ω_k   (u(∅) = 0),   s_k = v({k}),

(clients with s_k = 0 exactly take weight 0 in u, and u of a coalition of them only is 0: a
null player of v is then a null player of u, and its estimate is exactly 0 in every sample)

costs O(K) per permutation and tracks v closely along a permutation (the big first step, the
dilution by each newcomer). Sampling v − u instead of v and adding u's Shapley values back
(``offset``) keeps the estimator unbiased and removes most of its variance (docs/shapley.md
has the measurement). u's Shapley values are computed once by stratified antithetic sampling
of u itself with many permutations (O(K) each, so 2^20 permutations cost about one
permutation of v) under a fixed key, or exactly for K <= 18: every miner gets the same offset. The price is K utility
evaluations (the singletons), about one permutation's worth.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from miners.shapley.game import Game
from miners.shapley.sampling import sample_blocks

_CV_KEY = 0x5EED


def _u_weights(omega: jax.Array, scores: jax.Array) -> jax.Array:
    """ω_k where s_k ≠ 0, else 0: a client whose singleton value is exactly 0 is left out of u.

    A null player of v has s_k = v({k}) = 0; with weight 0 it is a null player of u too, so its
    sampled marginals of v − u are exactly 0 and its estimate stays exactly 0 (the null-player
    axiom holds for every sample, not just on average). Other clients are unaffected.
    """
    return jnp.where(scores != 0, omega, jnp.zeros((), omega.dtype))


def _safe_ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den, and 0 where den = 0 (u of a coalition of left-out clients only)."""
    return jnp.where(den > 0, num / jnp.where(den > 0, den, jnp.ones((), den.dtype)), jnp.zeros((), num.dtype))


def _u_prefix(omega: jax.Array, scores: jax.Array, perms: jax.Array) -> jax.Array:
    """u of every prefix of ``perms [P, K]`` → ``[P, K]``."""
    w = _u_weights(omega, scores)[perms]
    return _safe_ratio(jax.lax.associative_scan(jnp.add, w * scores[perms], axis=1),
                       jax.lax.associative_scan(jnp.add, w, axis=1))


@dataclasses.dataclass(frozen=True)
class _CVPrefix:
    inner: object

    def __call__(self, data, perms):
        return self.inner(data["inner"], perms) - _u_prefix(data["omega"], data["scores"], perms)


@dataclasses.dataclass(frozen=True)
class _CVCoalition:
    inner: object

    def __call__(self, data, masks):
        mf = masks.astype(jnp.float32)
        w = _u_weights(data["omega"], data["scores"])
        u = _safe_ratio(mf @ (w * data["scores"]), mf @ w)
        return self.inner(data["inner"], masks) - u


@jax.jit
def _u_shapley_batch(omega: jax.Array, scores: jax.Array, key: jax.Array) -> jax.Array:
    K = omega.shape[0]
    perms = sample_blocks("antithetic_stratified", 256 // K + 1, K, key=key).reshape(-1, K)
    vals = _u_prefix(omega, scores, perms)
    marg = vals - jnp.concatenate([jnp.zeros_like(vals[:, :1]), vals[:, :-1]], axis=1)
    rows = jnp.arange(perms.shape[0], dtype=jnp.int32)[:, None]
    return jnp.mean(jnp.zeros_like(marg).at[rows, perms].set(marg), axis=0)


#: Up to this K the offset is exact (enumeration of u, 2^K·K flops); above it is sampled.
EXACT_OFFSET_MAX_K = 18


def weighted_mean_shapley(omega, scores, *, n_perms: int = 1 << 20) -> np.ndarray:
    """Shapley values of u (above): exact for K <= 18, else from >= ``n_perms`` permutations.

    The sampled offset is computed under a fixed key, so every miner gets the same one; its
    error (about std(u-marginal)/√n_perms per client, under 0.1% of |φ| in the benchmark
    rounds) is shared by all miners — a bias they agree on, not a disagreement.

    Returns:
        ``[K]`` float64; they sum to u(all) (every permutation's marginals do).
    """
    K = int(np.shape(omega)[0])
    if K <= EXACT_OFFSET_MAX_K:
        from miners.shapley.exact import shapley_from_table

        s = np.asarray(scores, np.float64)
        w = np.where(s != 0, np.asarray(omega, np.float64), 0.0)  # as _u_weights
        ints = np.arange(1 << K)
        masks = ((ints[:, None] >> np.arange(K)[None, :]) & 1).astype(np.float64)
        tot = masks @ w
        table = np.where(tot > 0, (masks @ (w * s)) / np.where(tot > 0, tot, 1.0), 0.0)
        return shapley_from_table(table)
    omega = jnp.asarray(omega, jnp.float32)
    scores = jnp.asarray(scores, jnp.float32)
    per_batch = 2 * K * (256 // K + 1)
    n_batches = max(1, -(-n_perms // per_batch))
    keys = jax.random.split(jax.random.key(_CV_KEY), n_batches)
    return np.mean([np.asarray(_u_shapley_batch(omega, scores, k), np.float64) for k in keys], axis=0)


def with_control_variate(game: Game, *, weights=None, scores=None, n_perms: int = 1 << 20) -> Game:
    """The game v − u with ``offset`` = Shapley(u) (+ any offset ``game`` already had).

    Args:
        game: a game with a coalition function (to evaluate the K singletons), or give ``scores``.
        weights: ``[K]`` ω (the FedAvg weights; :func:`miners.shapley.fl.fl_game` passes n_k or
            ones). Default: ones.
        scores: ``[K]`` s_k; default v({k}) from ``game.coalition_values`` (K evaluations).
        n_perms: permutations of u used for its Shapley values.

    Returns:
        A :class:`Game` to pass to ``step`` / ``run_until`` / ``monte_carlo``; its estimates
        include the offset (``init_state(K, offset=game.offset)``).
    """
    K = game.n_players
    omega = jnp.ones((K,), jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    if scores is None:
        scores = game.coalition_values(jnp.eye(K, dtype=bool))
    scores = jnp.asarray(scores, jnp.float32)
    offset = weighted_mean_shapley(omega, scores, n_perms=n_perms)
    if game.offset is not None:
        offset = offset + np.asarray(game.offset, np.float64)
    data = {"inner": game.data, "omega": omega, "scores": scores}
    coal = _CVCoalition(game.coalition_fn) if game.coalition_fn is not None else None
    return Game(K, data, _CVPrefix(game.prefix_fn), coal, name=game.name + "+cv",
                offset=jnp.asarray(offset, jnp.float32))
