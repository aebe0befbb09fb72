"""Monte-Carlo Shapley estimation as a state you advance, query, and stop at any time.

The miner loop calls::

    state = init_state(K)
    state = step(game, state, key=k1, n_perms=256)          # jitted, state buffers donated
    phi, iterations, err = estimate(state, p=2, confidence=0.95)
    ...                                                       # stop whenever (a deadline)

or lets :func:`run_until` drive that loop until the error bound is below D, a deadline passes,
or a permutation budget is spent.

The state holds the running mean and M2 (the sum of squared deviations) of the *block* samples
(see :mod:`miners.shapley.sampling`) and the counts — the numerically stable form of running
sums and sums of squares (sum = mean · count), merged batch by batch with Chan et al.'s formula,
so float32 on the device loses nothing to cancellation.
"""

from __future__ import annotations

import math
import statistics
import time
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from miners.shapley.game import Game
from miners.shapley.sampling import block_size, sample_blocks


class ShapleyState(NamedTuple):
    """Running statistics of a Monte-Carlo Shapley estimate (all on the device).

    Attributes:
        mean: ``[K]`` float32, running mean of the block samples (client order).
        m2: ``[K]`` float32, Σ over blocks of (sample − mean)².
        n_blocks: int32 scalar, number of block samples.
        n_perms: int32 scalar, permutations evaluated (the paper's ``time``; the iteration
            count a miner reveals).
        n_evals: int32 scalar, coalition utility evaluations (K per permutation; v(∅) = 0 is
            not evaluated).
        offset: ``[K]`` float32 added to the mean by :func:`estimate` (the known Shapley values
            of a control variate; zeros without one).
    """

    mean: jax.Array
    m2: jax.Array
    n_blocks: jax.Array
    n_perms: jax.Array
    n_evals: jax.Array
    offset: jax.Array


class Estimate(NamedTuple):
    """What a miner reads off a state: ``phi, iterations, err_p = estimate(state)``.

    Attributes:
        phi: ``[K]`` float64 current Shapley estimate.
        iterations: permutations evaluated so far.
        err_p: an upper confidence bound on ‖phi − φ‖_p at the requested confidence
            (``inf`` before two blocks).
    """

    phi: np.ndarray
    iterations: int
    err_p: float


def init_state(n_players: int, *, offset=None) -> ShapleyState:
    """An empty state for K = ``n_players``.

    Args:
        offset: ``[K]`` values added to every estimate; pass ``game.offset`` for a game made
            by :func:`miners.shapley.control.with_control_variate` (``run_until`` does).
    """
    # Distinct buffers: step() donates them.
    vec = lambda: jnp.zeros((n_players,), jnp.float32)  # noqa: E731
    cnt = lambda: jnp.zeros((), jnp.int32)  # noqa: E731
    off = vec() if offset is None else jnp.array(offset, jnp.float32)
    if off.shape != (n_players,):
        raise ValueError(f"offset must have shape ({n_players},), got {off.shape}")
    return ShapleyState(vec(), vec(), cnt(), cnt(), cnt(), off)


def _marginals(game: Game, perms: jax.Array) -> jax.Array:
    values = game.prefix_values(perms)  # [P, K], position order
    marg = values - jnp.concatenate([jnp.zeros_like(values[:, :1]), values[:, :-1]], axis=1)
    rows = jnp.arange(perms.shape[0], dtype=jnp.int32)[:, None]
    return jnp.zeros_like(marg).at[rows, perms].set(marg)


#: ``permutation_marginals(game, perms [P, K]) -> [P, K]``: each client's marginal
#: contribution in each permutation, in client order (telescoping prefix values).
permutation_marginals = jax.jit(_marginals)


def merge(state: ShapleyState, samples: jax.Array, *, perms_per_block: int) -> ShapleyState:
    """Fold ``samples [B, K]`` (one per block) into ``state`` (Chan et al.'s parallel update)."""
    nb = samples.shape[0]
    n_a = state.n_blocks.astype(jnp.float32)
    n_b = jnp.asarray(nb, jnp.float32)
    n = n_a + n_b
    mean_b = jnp.mean(samples, axis=0)
    m2_b = jnp.sum(jnp.square(samples - mean_b[None, :]), axis=0)
    delta = mean_b - state.mean
    mean = state.mean + delta * (n_b / n)
    m2 = state.m2 + m2_b + jnp.square(delta) * (n_a * n_b / n)
    K = samples.shape[1]
    return ShapleyState(
        mean,
        m2,
        state.n_blocks + nb,
        state.n_perms + nb * perms_per_block,
        state.n_evals + nb * perms_per_block * K,
        state.offset,
    )


def merge_states(a: ShapleyState, b: ShapleyState) -> ShapleyState:
    """Two states of disjoint samples → the state of all of them (Chan et al., in float64).

    The result is the same estimator with more samples: the running mean and M2 over the blocks
    of both, and the summed counts. ``a`` and ``b`` must come from the same game and sampler
    (same block size) and carry the same ``offset``. Host-side (NumPy), so it also merges states
    fetched from other processes or machines (:mod:`miners.shapley.distributed`).

    Returns:
        A :class:`ShapleyState` on the default device.
    """
    na, nb = int(a.n_blocks), int(b.n_blocks)
    if not np.array_equal(np.asarray(a.offset), np.asarray(b.offset)):
        raise ValueError("cannot merge states with different offsets (different control variates)")
    ma, mb = np.asarray(a.mean, np.float64), np.asarray(b.mean, np.float64)
    n = na + nb
    if n == 0:
        mean, m2 = ma, np.asarray(a.m2, np.float64)
    else:
        delta = mb - ma
        mean = ma + delta * (nb / n)
        m2 = np.asarray(a.m2, np.float64) + np.asarray(b.m2, np.float64) + delta**2 * (na * nb / n)
    cnt = lambda x, y: jnp.asarray(int(x) + int(y), jnp.int32)  # noqa: E731
    return ShapleyState(jnp.asarray(mean, jnp.float32), jnp.asarray(m2, jnp.float32), cnt(a.n_blocks, b.n_blocks),
                        cnt(a.n_perms, b.n_perms), cnt(a.n_evals, b.n_evals), jnp.array(a.offset, jnp.float32))


@partial(jax.jit, static_argnames=("sampler", "n_blocks"), donate_argnames=("state",))
def _step(game: Game, state: ShapleyState, key: jax.Array, sampler: str, n_blocks: int) -> ShapleyState:
    K = game.n_players
    blocks = sample_blocks(sampler, n_blocks, K, key=key)  # [B, bs, K]
    bs = blocks.shape[1]
    phi = _marginals(game, blocks.reshape(n_blocks * bs, K)).reshape(n_blocks, bs, K)
    return merge(state, jnp.mean(phi, axis=1), perms_per_block=bs)


def step(
    game: Game, state: ShapleyState, *, key: jax.Array, n_perms: int, sampler: str = "antithetic_stratified"
) -> ShapleyState:
    """Advance ``state`` by at least ``n_perms`` permutations drawn from ``key``.

    ``n_perms`` is rounded up to whole blocks of the sampler. The whole batch — sampling,
    prefix values, marginals and the merge — is one jitted call; ``state``'s buffers are
    donated, so do not reuse the ``state`` you passed in. Use one sampler for a state's life.

    Args:
        game: the game (e.g. :func:`miners.shapley.fl.fl_game`).
        state: from :func:`init_state` or a previous step.
        key: PRNG key for this batch (keyword-only; split a fresh one per call).
        n_perms: permutations to add (>= 1).
        sampler: one of :data:`miners.shapley.sampling.SAMPLERS`.

    Returns:
        The new state.
    """
    if n_perms < 1:
        raise ValueError(f"n_perms must be >= 1, got {n_perms}")
    bs = block_size(sampler, game.n_players)
    return _step(game, state, key, sampler, -(-n_perms // bs))


def _norm_ppf(q: float) -> float:
    return statistics.NormalDist().inv_cdf(q)


def error_bound(std_err: np.ndarray, *, p: float, confidence: float) -> float:
    """Upper ``confidence`` bound on ‖e‖_p for e_k ~ N(0, std_err_k²) independent.

    * p = ∞: max_k z·SE_k with z the two-sided Bonferroni quantile Φ⁻¹(1 − (1−c)/(2K)).
    * p = 2: ‖e‖₂² is a weighted χ²; matched to a·χ²_ν (Satterthwaite:
      a = Σw²/Σw, ν = (Σw)²/Σw², w = SE²) and the quantile by Wilson–Hilferty.
    * p = 1: normal approximation, E = √(2/π)·ΣSE, Var = (1 − 2/π)·ΣSE².

    The bound is about the estimator's error against the true φ. Note that miners *agreeing*
    within D (the PoSap rule compares each S_i with the weighted mean S̄ of all reveals) is not
    the same thing as being accurate: miners that share a biased estimator agree and are all
    wrong. Report both.
    """
    se = np.asarray(std_err, np.float64)
    if not np.all(np.isfinite(se)):
        return math.inf
    K = se.shape[0]
    if p == math.inf:
        z = _norm_ppf(1.0 - (1.0 - confidence) / (2.0 * K))
        return float(z * np.max(se))
    if p == 2:
        w = se**2
        s1, s2 = float(np.sum(w)), float(np.sum(w**2))
        if s1 == 0.0:
            return 0.0
        a, nu = s2 / s1, s1 * s1 / s2
        z = _norm_ppf(confidence)
        chi2 = nu * (1.0 - 2.0 / (9.0 * nu) + z * math.sqrt(2.0 / (9.0 * nu))) ** 3
        return math.sqrt(a * max(chi2, 0.0))
    if p == 1:
        z = _norm_ppf(confidence)
        return float(math.sqrt(2 / math.pi) * np.sum(se) + z * math.sqrt((1 - 2 / math.pi) * np.sum(se**2)))
    raise ValueError(f"p must be 1, 2 or inf, got {p}")


def standard_error(state: ShapleyState) -> np.ndarray:
    """``[K]`` float64 standard error of the running mean per client (inf before 2 blocks)."""
    n = int(state.n_blocks)
    if n < 2:
        return np.full(state.mean.shape, np.inf)
    var = np.asarray(state.m2, np.float64) / (n - 1)
    return np.sqrt(np.maximum(var, 0.0) / n)


def estimate(state: ShapleyState, *, p: float = 2, confidence: float = 0.95) -> Estimate:
    """The current estimate, its iteration count, and the p-norm error bound.

    Returns:
        ``Estimate(phi [K] float64, iterations, err_p)``.
    """
    return Estimate(
        np.asarray(state.mean, np.float64) + np.asarray(state.offset, np.float64),
        int(state.n_perms),
        error_bound(standard_error(state), p=p, confidence=confidence),
    )


def monte_carlo(game: Game, *, key: jax.Array, n_perms: int, sampler: str = "antithetic_stratified",
                perms_per_step: int | None = None) -> Estimate:
    """One-shot Monte-Carlo estimate with ``n_perms`` permutations (rounded up to blocks)."""
    state = init_state(game.n_players, offset=game.offset)
    bs = block_size(sampler, game.n_players)
    per = max(bs, perms_per_step or n_perms)
    done = 0
    while done < n_perms:
        key, sub = jax.random.split(key)
        take = min(per, n_perms - done)
        state = step(game, state, key=sub, n_perms=take, sampler=sampler)
        done = int(state.n_perms)
    return estimate(state)


class RunResult(NamedTuple):
    """What :func:`run_until` returns.

    Attributes:
        phi: ``[K]`` float64 estimate.
        iterations: permutations evaluated.
        err_p: the p-norm error bound at the requested confidence.
        reason: ``"converged"`` (err_p <= D), ``"deadline"`` or ``"max_perms"``.
        elapsed_s: wall-clock seconds spent.
        state: the final state (advance it further with :func:`step`).
    """

    phi: np.ndarray
    iterations: int
    err_p: float
    reason: str
    elapsed_s: float
    state: ShapleyState


def run_until(
    game: Game,
    *,
    key: jax.Array,
    D: float,
    p: float = 2,
    confidence: float = 0.95,
    deadline: float | None = None,
    max_perms: int | None = None,
    sampler: str = "antithetic_stratified",
    perms_per_step: int | None = None,
    min_blocks: int = 8,
    progress: Callable[[Estimate], None] | None = None,
    state: ShapleyState | None = None,
) -> RunResult:
    """Sample until the p-norm error bound is at most ``D``, a deadline, or a budget.

    Args:
        game: the game.
        key: PRNG key (keyword-only); split once per step.
        D: target error bound in the task's p-norm (same units as φ).
        p: 1, 2 or ``math.inf``.
        confidence: confidence level of the bound (e.g. 0.95).
        deadline: absolute ``time.time()`` after which no new step starts; a step that the
            last step's duration says would overrun it is not started either.
        max_perms: permutation budget (``None``: unbounded; then ``deadline`` or convergence
            must stop the loop).
        sampler: one of :data:`miners.shapley.sampling.SAMPLERS`.
        perms_per_step: permutations per jitted step (default: one block, at least 32).
        min_blocks: blocks required before the error bound is trusted.
        progress: called with the :class:`Estimate` after every step.
        state: resume from this state instead of an empty one.

    Returns:
        :class:`RunResult`.
    """
    if deadline is None and max_perms is None and not (D > 0):
        raise ValueError("with D <= 0 give a deadline or max_perms, or the loop never ends")
    start = time.time()
    bs = block_size(sampler, game.n_players)
    per = perms_per_step or max(bs, 32)
    state = init_state(game.n_players, offset=game.offset) if state is None else state
    last_dt = 0.0
    reason = "max_perms"
    est = estimate(state, p=p, confidence=confidence)
    while True:
        if max_perms is not None and est.iterations >= max_perms:
            reason = "max_perms"
            break
        if deadline is not None and time.time() + last_dt > deadline:
            reason = "deadline"
            break
        key, sub = jax.random.split(key)
        take = per if max_perms is None else max(1, min(per, max_perms - est.iterations))
        t0 = time.time()
        state = step(game, state, key=sub, n_perms=take, sampler=sampler)
        est = estimate(state, p=p, confidence=confidence)  # blocks until the step is done
        last_dt = time.time() - t0
        if progress is not None:
            progress(est)
        if int(state.n_blocks) >= min_blocks and est.err_p <= D:
            reason = "converged"
            break
    return RunResult(est.phi, est.iterations, est.err_p, reason, time.time() - start, state)
