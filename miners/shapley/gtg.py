"""GTG-Shapley (Liu et al., "GTG-Shapley: Efficient and Accurate Participant Contribution
Evaluation in Federated Learning", ACM TIST 2022, arXiv:2109.02053): a baseline, not the miner.

GTG-Shapley values one FL round from the clients' gradient updates (the same game as here:
re-aggregate a coalition's updates, evaluate on the validation set). It is permutation
Monte-Carlo with three changes:

* **Guided sampling.** Permutation t puts client ``(start + t) mod K`` first and the others in
  uniform random order, so every client leads once per K permutations (the paper's remedy for
  the large first-position marginals).
* **Within-round truncation.** Walking a permutation, once the prefix utility is within ε of
  the full coalition's, |v(N) − v(S_{j−1})| < ε, the remaining clients get marginal 0 and their
  coalitions are not evaluated (ε = 0.001, the published constant, in utility units).
* **Between-round truncation.** If the whole round improved the utility by less than ε_b,
  |v(N) − v(∅)| < ε_b, every value of the round is 0 and nothing is sampled (ε_b = 0.001).
* **Stopping.** After at least ``max(30, K)`` permutations, stop once the mean relative change
  of the estimate over the last 10 permutations, ‖φ_t − φ_{t−1}‖₁ / ‖φ_t‖₁, is below 5 %.

Truncation makes the estimator **biased** (the tail marginals are not zero on average, they
are only small), which is why the miner does not use it: miners sharing a bias agree while all
being wrong. :func:`gtg_marginals` is the jitted form on any :class:`~miners.shapley.game.Game`
(it costs a full prefix evaluation; truncation only changes the values), :func:`gtg_shapley`
the per-evaluation loop as published, which really skips the truncated evaluations. Both give
the same estimate on the same permutations (tested).

Where the paper is silent or ambiguous, this module decides: the guided rotation continues
across calls (``start``); the convergence test uses the L1 norm; the estimate is the plain mean
of the marginals (the paper's running average).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from miners.shapley.game import Game

#: The published constants.
EPS_WITHIN = 1e-3
EPS_BETWEEN = 1e-3
CONVERGE_LAST = 10
CONVERGE_TOL = 0.05


def converge_min(n_players: int) -> int:
    """Fewest permutations before the convergence test runs: ``max(30, K)``."""
    return max(30, n_players)


def guided_permutations(n: int, n_players: int, *, key: jax.Array, start: int | jax.Array = 0) -> jax.Array:
    """``n`` guided permutations: row t starts with client ``(start + t) mod K``.

    The rest of each row is the other K − 1 clients in uniform random order.

    Returns:
        ``[n, K]`` int32.
    """
    K = n_players
    first = (jnp.asarray(start, jnp.int32) + jnp.arange(n, dtype=jnp.int32)) % K  # [n]
    keys = jax.random.split(key, n)
    # a uniform permutation of 1..K-1, then shifted past `first` (so `first` never appears)
    rest = jax.vmap(lambda k: jax.random.permutation(k, K - 1))(keys).astype(jnp.int32) + 1  # [n, K-1]
    rest = (first[:, None] + rest) % K
    return jnp.concatenate([first[:, None], rest], axis=1)


def truncate_prefix_values(values: jax.Array, v_all: jax.Array, *, eps: float) -> tuple[jax.Array, jax.Array]:
    """Apply within-round truncation to prefix values.

    Args:
        values: ``[P, K]`` v of each prefix (position order), v(∅) = 0 implied.
        v_all: scalar v(N).
        eps: ε.

    Returns:
        ``(values' [P, K], evaluated [P, K] bool)``: after the first position j with
        |v(N) − v'(S_{j−1})| < ε the value stays at v'(S_{j−1}) (marginal 0) and that coalition
        counts as not evaluated.
    """
    prev = jnp.concatenate([jnp.zeros_like(values[:, :1]), values[:, :-1]], axis=1)  # v(S_{j-1})
    close = jnp.abs(v_all - prev) < eps  # [P, K]
    # once truncated, stay truncated: v' is constant from the first close position on
    truncated = jnp.cumsum(close.astype(jnp.int32), axis=1) > 0
    first = jnp.argmax(truncated, axis=1)  # first truncated position (0 if none: masked below)
    frozen = jnp.take_along_axis(prev, first[:, None], axis=1)
    out = jnp.where(truncated, frozen, values)
    return out, ~truncated


@partial(jax.jit, static_argnames=("n",))
def _gtg_batch(game: Game, key: jax.Array, start: jax.Array, v_all: jax.Array, eps: jax.Array, n: int):
    K = game.n_players
    perms = guided_permutations(n, K, key=key, start=start)
    values, evaluated = truncate_prefix_values(game.prefix_values(perms), v_all, eps=eps)
    marg = values - jnp.concatenate([jnp.zeros_like(values[:, :1]), values[:, :-1]], axis=1)
    rows = jnp.arange(n, dtype=jnp.int32)[:, None]
    return jnp.zeros_like(marg).at[rows, perms].set(marg), jnp.sum(evaluated.astype(jnp.int32))


def gtg_marginals(game: Game, *, key: jax.Array, n: int, start: int, v_all: float,
                  eps: float = EPS_WITHIN) -> tuple[jax.Array, jax.Array]:
    """GTG marginals of ``n`` guided permutations on a fast game (one jitted call).

    Args:
        game: any :class:`Game` (e.g. ``fl_game(round)``, *without* a control variate).
        key: PRNG key (keyword-only).
        n: permutations.
        start: the guided rotation's position (permutations done so far).
        v_all: v(N).
        eps: within-round truncation threshold.

    Returns:
        ``(marginals [n, K] float32 in client order, coalitions GTG would evaluate: int32)``.
    """
    return _gtg_batch(game, key, jnp.asarray(start, jnp.int32), jnp.asarray(v_all, jnp.float32),
                      jnp.asarray(eps, jnp.float32), int(n))


def converged(history: np.ndarray, *, tol: float = CONVERGE_TOL, last: int = CONVERGE_LAST,
              seen: int | None = None) -> bool:
    """GTG's stopping test on the running estimates ``history [T, K]`` (one row per permutation).

    ``seen``: permutations done so far when ``history`` holds only the latest rows (default T).
    """
    T = history.shape[0]
    if (T if seen is None else seen) < converge_min(history.shape[1]) or T < last + 1:
        return False
    h = history[-(last + 1):]
    change = np.abs(np.diff(h, axis=0)).sum(axis=1) / np.maximum(np.abs(h[1:]).sum(axis=1), 1e-30)
    return bool(np.mean(change) < tol)


class GTGResult(NamedTuple):
    """What :func:`gtg_shapley` returns.

    Attributes:
        phi: ``[K]`` float64 estimate.
        permutations: permutations sampled.
        evaluations: coalition utilities evaluated (v(N) included; truncated ones not).
        converged_at: permutations when the stopping test first passed (``None`` if never).
        round_truncated: the between-round test zeroed the round.
    """

    phi: np.ndarray
    permutations: int
    evaluations: int
    converged_at: int | None
    round_truncated: bool


def gtg_shapley(
    utility: Callable[[np.ndarray], float],
    n_players: int,
    *,
    key: jax.Array,
    max_perms: int,
    eps: float = EPS_WITHIN,
    eps_round: float = EPS_BETWEEN,
    stop_when_converged: bool = True,
    deadline: float | None = None,
    callback: Callable[[int, np.ndarray], None] | None = None,
) -> GTGResult:
    """GTG-Shapley as published: one utility call per coalition evaluated, truncated ones skipped.

    Args:
        utility: v of one coalition, ``mask [K] bool -> float``, v(∅) = 0.
        n_players: K.
        key: PRNG key (keyword-only); the permutations are
            ``guided_permutations(max_perms, K, key=key)``.
        max_perms: permutation budget.
        eps, eps_round: within- and between-round truncation thresholds.
        stop_when_converged: stop at the published convergence test (else run the budget).
        deadline: optional absolute ``time.time()``; no permutation starts after it.
        callback: ``callback(t, phi)`` after every permutation (for time-to-accuracy traces).

    Returns:
        :class:`GTGResult`.
    """
    import time

    K = n_players
    v_all = float(utility(np.ones(K, bool)))
    if abs(v_all) < eps_round:
        return GTGResult(np.zeros(K), 0, 1, None, True)
    perms = np.asarray(guided_permutations(max_perms, K, key=key))
    total = np.zeros(K)
    evals = 1
    history = []
    conv = None
    t = 0
    for perm in perms:
        if deadline is not None and time.time() > deadline:
            break
        t += 1
        mask = np.zeros(K, bool)
        v_prev = 0.0
        for k in perm:
            mask[k] = True
            if abs(v_all - v_prev) < eps:
                continue  # truncated: marginal 0, not evaluated
            v = float(utility(mask))
            evals += 1
            total[k] += v - v_prev
            v_prev = v
        phi = total / t
        history.append(phi)
        if callback is not None:
            callback(t, phi)
        if conv is None and converged(np.asarray(history)):
            conv = t
            if stop_when_converged:
                break
    return GTGResult(total / max(t, 1), t, evals, conv, False)


__all__ = [
    "CONVERGE_LAST", "CONVERGE_TOL", "EPS_BETWEEN", "EPS_WITHIN", "GTGResult", "converge_min", "converged",
    "gtg_marginals", "gtg_shapley", "guided_permutations", "truncate_prefix_values",
]
