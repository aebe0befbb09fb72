"""Exact Shapley values by enumerating all 2^K coalitions (the reference for estimators).

    φ_k = Σ_{S ⊆ N∖{k}} |S|! (K − |S| − 1)! / K! · (v(S ∪ {k}) − v(S))

Coalition values are computed on the device in batches of masks; the weighted sum runs on the
host in float64. Cost: 2^K utility evaluations (K = 20: about a million) and 2^K float64 of host
memory for the value table.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from miners.shapley.game import Game

#: Largest K the enumeration accepts (2^25 values = 256 MiB of float64).
MAX_EXACT_PLAYERS = 25


@jax.jit
def _values_of_ints(game: Game, ints: jax.Array) -> jax.Array:
    K = game.n_players
    masks = ((ints[:, None] >> jnp.arange(K, dtype=jnp.int32)[None, :]) & 1).astype(bool)
    return game.coalition_values(masks)


def coalition_table(game: Game, *, batch_size: int = 4096) -> np.ndarray:
    """v of every coalition, indexed by bitmask (bit k set = client k in the coalition).

    Returns:
        ``[2^K]`` float64; entry 0 is v(∅) = 0.
    """
    K = game.n_players
    if K > MAX_EXACT_PLAYERS:
        raise ValueError(f"exact enumeration supports K <= {MAX_EXACT_PLAYERS}, got K={K}")
    total = 1 << K
    out = np.empty(total, np.float64)
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        ints = np.arange(start, start + batch_size, dtype=np.int32)  # fixed shape: one compile
        ints[stop - start :] = 0
        out[start:stop] = np.asarray(_values_of_ints(game, jnp.asarray(ints)))[: stop - start]
    out[0] = 0.0
    return out


def shapley_from_table(values: np.ndarray) -> np.ndarray:
    """Shapley values from a full coalition table (float64, vectorized over coalitions).

    Args:
        values: ``[2^K]`` v by bitmask.

    Returns:
        ``[K]`` float64.
    """
    total = values.shape[0]
    K = total.bit_length() - 1
    if 1 << K != total:
        raise ValueError(f"table length must be a power of two, got {total}")
    sizes = np.zeros(total, np.int64)
    for k in range(K):
        sizes += (np.arange(total) >> k) & 1
    weights = np.array(
        [math.factorial(s) * math.factorial(K - s - 1) / math.factorial(K) for s in range(K)]
    )
    phi = np.empty(K)
    for k in range(K):
        # axis 1 of the reshaped table is bit k: index 0 without k, index 1 with k.
        v = values.reshape(-1, 2, 1 << k)
        s = sizes.reshape(-1, 2, 1 << k)[:, 0, :]
        phi[k] = np.sum(weights[s] * (v[:, 1, :] - v[:, 0, :]))
    return phi


def exact_shapley(game: Game, *, batch_size: int = 4096) -> np.ndarray:
    """Exact Shapley values of ``game`` (needs ``game.coalition_fn``).

    Returns:
        ``[K]`` float64, in player order.
    """
    return shapley_from_table(coalition_table(game, batch_size=batch_size))
