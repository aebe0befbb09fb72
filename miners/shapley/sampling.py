"""Permutation samplers: plain, antithetic, stratified by position, and both.

Every sampler draws *blocks* of permutations; the mean of the marginal vectors over a block is
one unbiased sample of the Shapley vector, and blocks are independent, so the standard error of
the running mean is computed over blocks (this is what keeps the stopping rule honest when the
permutations inside a block are correlated on purpose).

* ``"plain"`` (block of 1): π uniform — the paper's Algorithm 1.
* ``"antithetic"`` (block of 2): π and its reverse. A client early in π (large marginal) is
  late in the reverse (small marginal), so the pair's mean varies less than two independent
  draws.
* ``"stratified"`` (block of K): σ uniform and its K cyclic shifts, π_r(j) = σ((j + r) mod K).
  Every client takes every position exactly once per block, which removes the variance that
  comes from *where* a client lands (position strata of equal weight 1/K, one draw each). Each
  π_r alone is uniform, so the block mean is unbiased.
* ``"antithetic_stratified"`` (block of 2K): the K shifts of σ and the K shifts of reversed σ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SAMPLERS = ("plain", "antithetic", "stratified", "antithetic_stratified")


def block_size(sampler: str, n_players: int) -> int:
    """Permutations per block for ``sampler`` with K = ``n_players``."""
    sizes = {"plain": 1, "antithetic": 2, "stratified": n_players, "antithetic_stratified": 2 * n_players}
    if sampler not in sizes:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    return sizes[sampler]


def sample_permutations(n: int, n_players: int, *, key: jax.Array) -> jax.Array:
    """``n`` independent uniform permutations of ``range(K)``.

    The plain sampler and :func:`miners.shapley.paper.paper_alg1` both use this, so the same
    key gives them the same permutations.

    Returns:
        ``[n, K]`` int32.
    """
    keys = jax.random.split(key, n)
    return jax.vmap(lambda k: jax.random.permutation(k, n_players))(keys).astype(jnp.int32)


def _cyclic_shifts(sigma: jax.Array) -> jax.Array:
    """``[..., K]`` → ``[..., K, K]``, ``out[..., r, j] = sigma[..., (j + r) % K]``."""
    K = sigma.shape[-1]
    idx = (jnp.arange(K, dtype=jnp.int32)[None, :] + jnp.arange(K, dtype=jnp.int32)[:, None]) % K
    return sigma[..., idx]


def sample_blocks(sampler: str, n_blocks: int, n_players: int, *, key: jax.Array) -> jax.Array:
    """``n_blocks`` independent blocks of permutations.

    Returns:
        ``[n_blocks, block_size(sampler, K), K]`` int32.
    """
    block_size(sampler, n_players)  # validates the name
    sigma = sample_permutations(n_blocks, n_players, key=key)  # [B, K]
    if sampler == "plain":
        return sigma[:, None, :]
    if sampler == "antithetic":
        return jnp.stack([sigma, sigma[:, ::-1]], axis=1)
    if sampler == "stratified":
        return _cyclic_shifts(sigma)
    return jnp.concatenate([_cyclic_shifts(sigma), _cyclic_shifts(sigma[:, ::-1])], axis=1)
