"""The paper's Algorithm 1 (FedCoin, Liu et al., arXiv:2002.11711), as written.

One random permutation per iteration; the marginal of the j-th client of π is
V(π[:j]) − V(π[:j−1]) with every prefix utility evaluated from scratch (aggregate the
coalition's updates, run the model on the validation set); the estimate is a running average
S_k ← (time − 1)/time · S_k + marginal/time, and ``time`` counts iterations. It is the reference
behaviour and the naive baseline; the fast path must reproduce it on the same permutations.
"""

from __future__ import annotations

import time as _time
from typing import Callable

import jax
import numpy as np

from miners.shapley.sampling import sample_permutations


def paper_alg1(
    utility: Callable[[np.ndarray], float],
    n_players: int,
    *,
    key: jax.Array,
    n_iter: int,
    deadline: float | None = None,
) -> tuple[np.ndarray, int]:
    """Algorithm 1: Monte-Carlo Shapley, one permutation per iteration.

    Args:
        utility: v of one coalition, ``mask [K] bool -> float`` (e.g.
            ``lambda m: fedcoin.ml.utility.utility_jit(game, m)``), with v(∅) = 0.
        n_players: K.
        key: PRNG key (keyword-only). The permutations are
            ``sample_permutations(n_iter, K, key=key)``, the same as the plain sampler's.
        n_iter: iterations (permutations).
        deadline: optional absolute ``time.time()``; stop before starting an iteration after it.

    Returns:
        ``(S [K] float64, time)``: the running-average estimate and the iteration count.
    """
    perms = np.asarray(sample_permutations(n_iter, n_players, key=key))
    S = np.zeros(n_players)
    t = 0
    for perm in perms:
        if deadline is not None and _time.time() > deadline:
            break
        t += 1
        mask = np.zeros(n_players, bool)
        v_prev = 0.0  # V(∅) = 0 by definition of the game
        for k in perm:
            mask[k] = True
            v = float(utility(mask))
            S[k] = (t - 1) / t * S[k] + (v - v_prev) / t
            v_prev = v
    return S, t
