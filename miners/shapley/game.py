"""Cooperative games as the estimators see them, and games with known Shapley values.

A :class:`Game` is K players plus one or two pure functions of a pytree of arrays (``data``):

* ``prefix_fn(data, perms)``: ``perms [P, K]`` int32 → ``[P, K]`` float32, the value of every
  prefix coalition, ``out[p, j] = v({perms[p, 0], ..., perms[p, j]})`` (so ``out[p, -1] =
  v(all)``; v(∅) = 0 is implied). This is what every permutation estimator needs.
* ``coalition_fn(data, masks)``: ``masks [B, K]`` bool → ``[B]`` float32, v of each coalition.
  The exact estimator needs it; given only this, :func:`from_coalition_fn` derives the prefix
  function (K coalitions per permutation).

The functions are static (hashed by identity) and the data is traced, so a jitted estimator
takes the game as an ordinary argument and never bakes large arrays into the compiled program.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

PrefixFn = Callable[[Any, jax.Array], jax.Array]
CoalitionFn = Callable[[Any, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Game:
    """A K-player cooperative game with v(∅) = 0 (a JAX pytree: ``data`` is the only child).

    Attributes:
        n_players: K (static).
        data: pytree of arrays the functions read.
        prefix_fn: ``(data, perms [P, K] int32) -> [P, K] float32`` prefix values (static).
        coalition_fn: ``(data, masks [B, K] bool) -> [B] float32`` or ``None`` (static).
        name: a label for reports (static).
        offset: ``[K]`` float32 or ``None``: known Shapley values to add to every estimate
            (set by :func:`miners.shapley.control.with_control_variate`, whose game is v − u
            for a cheap game u with values ``offset``).
    """

    n_players: int
    data: Any
    prefix_fn: PrefixFn
    coalition_fn: CoalitionFn | None = None
    name: str = "game"
    offset: Any = None

    def prefix_values(self, perms: jax.Array) -> jax.Array:
        """``[P, K]`` values of the prefixes of ``perms [P, K]``."""
        return self.prefix_fn(self.data, perms)

    def coalition_values(self, masks: jax.Array) -> jax.Array:
        """``[B]`` values of the coalitions ``masks [B, K]`` bool."""
        if self.coalition_fn is None:
            raise ValueError(f"game {self.name!r} has no coalition function; exact Shapley needs one")
        return self.coalition_fn(self.data, masks)


jax.tree_util.register_dataclass(
    Game, data_fields=["data", "offset"], meta_fields=["n_players", "prefix_fn", "coalition_fn", "name"]
)


def prefix_masks(perms: jax.Array) -> jax.Array:
    """The K prefix coalitions of each permutation as masks.

    Args:
        perms: ``[P, K]`` int32 permutations of ``range(K)``.

    Returns:
        ``[P, K, K]`` bool, ``out[p, j, k]`` = client k is among the first j+1 of ``perms[p]``.
    """
    K = perms.shape[-1]
    position = jnp.argsort(perms, axis=-1)  # [P, K]: position of client k in perms[p]
    return position[:, None, :] <= jnp.arange(K, dtype=position.dtype)[None, :, None]


def _prefix_from_coalitions(coalition_fn: CoalitionFn):
    def prefix_fn(data, perms):
        P, K = perms.shape
        masks = prefix_masks(perms).reshape(P * K, K)
        return coalition_fn(data, masks).reshape(P, K)

    return prefix_fn


def from_coalition_fn(n_players: int, coalition_fn: CoalitionFn, data: Any = None, *, name: str = "game") -> Game:
    """A game from any batched coalition utility: the general entry point.

    Args:
        n_players: K.
        coalition_fn: ``(data, masks [B, K] bool) -> [B]`` float32, with v(∅) = 0. Must be
            traceable by JAX (pure ``jnp``); an arbitrary Python callable can be wrapped with
            ``jax.pure_callback``.
        data: arrays the function reads (passed through, traced under jit).

    Returns:
        A :class:`Game` whose prefix values cost K coalition evaluations per permutation.
    """
    return Game(n_players, data, _prefix_from_coalitions(coalition_fn), coalition_fn, name)


# ---------------------------------------------------------------- games with known values


def _additive_values(data, masks):
    return masks.astype(jnp.float32) @ data


def additive_game(weights: Any) -> Game:
    """v(C) = Σ_{k∈C} w_k. Shapley value φ_k = w_k (:func:`additive_shapley`).

    Args:
        weights: ``[K]`` float.
    """
    w = jnp.asarray(weights, jnp.float32)
    return from_coalition_fn(int(w.shape[0]), _additive_values, w, name="additive")


def additive_shapley(weights: Any) -> np.ndarray:
    """Closed form for :func:`additive_game`: ``[K]`` float64 φ = w."""
    return np.asarray(weights, np.float64)


def _airport_values(data, masks):
    costs = data
    return jnp.max(jnp.where(masks, costs[None, :], jnp.zeros((), jnp.float32)), axis=-1)


def airport_game(costs: Any) -> Game:
    """The airport game: v(C) = max_{k∈C} c_k (the runway the largest plane in C needs).

    Args:
        costs: ``[K]`` float, c_k >= 0.
    """
    c = jnp.asarray(costs, jnp.float32)
    return from_coalition_fn(int(c.shape[0]), _airport_values, c, name="airport")


def airport_shapley(costs: Any) -> np.ndarray:
    """Closed form (Littlechild & Owen, 1973): with costs sorted c_(1) <= ... <= c_(K),

        φ_(i) = Σ_{j=1}^{i} (c_(j) − c_(j−1)) / (K − j + 1),   c_(0) = 0.

    Returns:
        ``[K]`` float64, in the original player order.
    """
    c = np.asarray(costs, np.float64)
    K = c.shape[0]
    order = np.argsort(c, kind="stable")
    cs = c[order]
    increments = np.diff(np.concatenate([[0.0], cs])) / (K - np.arange(K))
    phi_sorted = np.cumsum(increments)
    phi = np.empty(K)
    phi[order] = phi_sorted
    return phi
