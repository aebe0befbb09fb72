"""Control variates for permutation sampling: cheap games whose Shapley values are known.

Sampling v − g instead of v and adding g's Shapley values back (``offset``) keeps the
estimator unbiased for any fixed g; the closer g tracks v along a permutation, the less
variance is left. Two games, both built from v's own smallest coalitions:

* the pairwise game q (below, the default up to 300 clients): through every singleton and
  pair, exact Shapley values in closed form;
* the weighted-mean-of-singletons game u (here), K evaluations.

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


def _u_coalition(data, masks):
    """u of ``masks [B, K]`` → ``[B]``."""
    mf = masks.astype(jnp.float32)
    w = _u_weights(data["omega"], data["scores"])
    return _safe_ratio(mf @ (w * data["scores"]), mf @ w)


def _u_prefix_of(data, perms):
    return _u_prefix(data["omega"], data["scores"], perms)


@dataclasses.dataclass(frozen=True)
class _CVPrefix:
    """v − s on prefixes, for a surrogate s given as a static ``(data, perms) -> [P, K]``."""

    inner: object
    surrogate: object = _u_prefix_of

    def __call__(self, data, perms):
        return self.inner(data["inner"], perms) - self.surrogate(data, perms)


@dataclasses.dataclass(frozen=True)
class _CVCoalition:
    inner: object
    surrogate: object = _u_coalition

    def __call__(self, data, masks):
        return self.inner(data["inner"], masks) - self.surrogate(data, masks)


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


# ----------------------------------------------------------------------------- the pairwise game
#
# u above matches v on the singletons only. The pairwise game q also matches it on every pair:
#
#     q(C) = (1/|C∩A|²) Σ_{k,l∈C∩A} M_kl   (q = 0 when C∩A = ∅),
#     M_kk = s_k,   M_kl = (4·v({k,l}) − s_k − s_l)/2   so that q({k}) = v({k}), q({k,l}) = v({k,l}),
#
# over the active clients A = {k : s_k ≠ 0}. It is the homogeneous quadratic on the simplex of
# uniform mixing weights through the K + K(K−1)/2 smallest coalitions: a second-order model of
# "the value of an average of updates" whose Shapley values are exact in closed form (below), so
# the offset adds no error of its own. On real FedAvg rounds it tracks v far more closely than u
# (docs/shapley.md: on the K = 100 benchmark round 29× less per-block variance with the same
# sampler, 4.5× less again with plain permutations). It needs the K(K−1)/2 pair values
# (fl.py's pair rows: about K permutations' worth once per round) and O(K²) per permutation for
# its own prefix values. Clients outside A
# (in particular every null player of v, whose s_k is exactly 0) are null players of q, so the
# null-player axiom holds for every sample, as with u.


def pairwise_matrix(scores, pair_values, active) -> np.ndarray:
    """M (above) from s_k and the pair values.

    Args:
        scores: ``[K]`` s_k = v({k}).
        pair_values: ``[K, K]`` v({k, l}) for k ≠ l in A (symmetric; other entries are ignored).
        active: ``[K]`` bool, A.

    Returns:
        ``[K, K]`` float64, symmetric, zero outside A × A.
    """
    s = np.asarray(scores, np.float64)
    a = np.asarray(active, bool)
    m = (4.0 * np.asarray(pair_values, np.float64) - s[:, None] - s[None, :]) / 2.0
    m[np.diag_indices_from(m)] = s
    return np.where(a[:, None] & a[None, :], m, 0.0)


def pairwise_shapley(M, active) -> np.ndarray:
    """Exact Shapley values of q (above), O(K²).

    By linearity q = Σ_k M_kk·g_k + Σ_{k<l} 2M_kl·g_kl with g_k(C) = [k∈C]/|C|² and
    g_kl(C) = [k,l∈C]/|C|² on the m = |A| active players (the others are null and do not change
    anyone else's value). With a uniform size s of the coalition before the player arrives:
    φ_k(g_k) = α = (1/m)·Σ_{s<m} 1/(s+1)², φ_k(g_kl) = γ = (1/m)·Σ_{s<m} s/((m−1)(s+1)²), and
    the other players split the rest of g(A) = 1/m² equally (efficiency and symmetry).

    Returns:
        ``[K]`` float64, summing to q(A) = ΣM/m²; 0 outside A.
    """
    M = np.asarray(M, np.float64)
    a = np.asarray(active, bool)
    K = M.shape[0]
    out = np.zeros(K)
    idx = np.flatnonzero(a)
    m = idx.size
    if m == 0:
        return out
    Ma = M[np.ix_(idx, idx)]
    diag = np.diag(Ma).copy()
    if m == 1:
        out[idx] = diag
        return out
    s = np.arange(m, dtype=np.float64)
    alpha = np.sum(1.0 / (s + 1) ** 2) / m
    beta = (1.0 / m**2 - alpha) / (m - 1)
    gamma = np.sum(s / ((m - 1) * (s + 1) ** 2)) / m
    delta = (1.0 / m**2 - 2 * gamma) / (m - 2) if m > 2 else 0.0
    row_off = Ma.sum(axis=1) - diag  # Σ_{l≠i} M_il
    off_total = (Ma.sum() - diag.sum()) / 2  # Σ_{k<l} M_kl
    out[idx] = (alpha * diag + beta * (diag.sum() - diag) + 2 * gamma * row_off
                + 2 * delta * (off_total - row_off))
    return out


def _q_prefix_of(data, perms):
    """q of every prefix of ``perms [P, K]`` → ``[P, K]``, O(P·K²) time, O(P·K) memory."""
    M, act = data["M"], data["active"]
    P, K = perms.shape
    a = act[perms].astype(jnp.float32)  # [P, K]
    rows = jnp.arange(P)

    def position(r, j):  # r [P, K]: Σ over the active clients placed so far of their M rows
        k = perms[:, j]
        inc = a[:, j] * (2.0 * r[rows, k] + M[k, k])
        return r + M[k] * a[:, j][:, None], inc

    _, inc = jax.lax.scan(position, jnp.zeros((P, K), jnp.float32), jnp.arange(K, dtype=jnp.int32))
    cnt = jnp.cumsum(a, axis=1)
    return _safe_ratio(jnp.cumsum(inc.T, axis=1), cnt * cnt)


def _q_coalition(data, masks):
    mf = masks.astype(jnp.float32) * data["active"].astype(jnp.float32)[None]
    cnt = jnp.sum(mf, axis=1)
    return _safe_ratio(jnp.einsum("bk,kl,bl->b", mf, data["M"], mf), cnt * cnt)


def with_pairwise_control_variate(game: Game, *, scores, pair_values) -> Game:
    """The game v − q with ``offset`` = Shapley(q), exact (+ any offset ``game`` already had).

    Args:
        game: the game v.
        scores: ``[K]`` s_k = v({k}).
        pair_values: ``[K, K]`` v({k, l}) for the active pairs (:func:`pairwise_matrix`).

    Returns:
        A :class:`Game` like :func:`with_control_variate`'s, named ``…+pcv``.
    """
    K = game.n_players
    scores = np.asarray(scores, np.float64)
    active = scores != 0
    M = pairwise_matrix(scores, pair_values, active)
    offset = pairwise_shapley(M, active)
    if game.offset is not None:
        offset = offset + np.asarray(game.offset, np.float64)
    data = {"inner": game.data, "M": jnp.asarray(M, jnp.float32), "active": jnp.asarray(active)}
    coal = _CVCoalition(game.coalition_fn, _q_coalition) if game.coalition_fn is not None else None
    return Game(K, data, _CVPrefix(game.prefix_fn, _q_prefix_of), coal, name=game.name + "+pcv",
                offset=jnp.asarray(offset, jnp.float32))
