"""The Shapley game of one FedAvg round: the utility v(C) that miners value clients by.

For a coalition C of the round's K clients,

    v(C) = m(A(w_t, {Δ_k : k ∈ C})) − m(w_t),        v(∅) = 0,

where w_t is the global model before the round, Δ_k client k's update, and A the FedAvg rule
of :mod:`fedcoin.ml.fedavg` (the one the server aggregates with). The metric m is the negative mean validation cross-entropy
(``"neg_cross_entropy"``, the default: higher is better) or the validation accuracy
(``"accuracy"``). Because v(∅) = 0, Shapley values sum to v(all clients) (efficiency).

Everything comes in as arrays (the model before the round, the K stacked updates, the data
costs, the validation set), so the game is independent of the chain and the content store.
Rule names come from :data:`fedcoin.ml.fedavg.RULES`; metric names are :data:`METRICS`.

This module is the *definition*: one coalition at a time, straight from the formula. The
miner's fast evaluation of many coalitions at once (``miners.shapley.fl``) is tested against it.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from fedcoin.ml.models import LOGREG, init_params
    >>> k0, k1, k2 = jax.random.split(jax.random.key(0), 3)
    >>> w_t = init_params(LOGREG, key=k0)
    >>> updates = {n: 0.01 * jax.random.normal(k1, (3, *p.shape)) for n, p in w_t.items()}
    >>> x = jax.random.normal(k2, (16, 784)); y = jnp.arange(16) % 10
    >>> game = RoundGame.create(LOGREG, w_t, updates, jnp.array([1.0, 2.0, 3.0]), x, y)
    >>> float(utility(game, jnp.zeros(3, bool)))
    0.0
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fedcoin.ml import fedavg
from fedcoin.ml.fedavg import DEFAULT_RULE, aggregate
from fedcoin.ml.models import Arch, Params, accuracy, apply, cross_entropy

METRICS = ("neg_cross_entropy", "accuracy")


@dataclasses.dataclass(frozen=True)
class RoundGame:
    """The inputs of one round's utility, as arrays (a JAX pytree; strings and arch are static).

    Attributes:
        arch: the model architecture (static).
        params: w_t, ``{"w0": [d0, d1], "b0": [d1], ...}`` float32.
        updates: Δ stacked over clients, ``{"w0": [K, d0, d1], "b0": [K, d1], ...}`` float32.
        n_k: ``[K]`` float32 data costs (> 0), in registration order.
        x: ``[n, d0]`` float32 validation inputs.
        y: ``[n]`` int32 validation labels.
        aggregation: one of :data:`fedcoin.ml.fedavg.RULES` (static).
        metric: ``"neg_cross_entropy"`` or ``"accuracy"`` (static).
    """

    arch: Arch
    params: Params
    updates: Params
    n_k: jax.Array
    x: jax.Array
    y: jax.Array
    aggregation: str = DEFAULT_RULE
    metric: str = "neg_cross_entropy"

    @classmethod
    def create(
        cls,
        arch: Arch,
        params: Params,
        updates: Params,
        n_k: Any,
        x: Any,
        y: Any,
        *,
        aggregation: str = DEFAULT_RULE,
        metric: str = "neg_cross_entropy",
    ) -> "RoundGame":
        """Validate shapes and cast to the engine's dtypes (float32 / int32).

        Raises:
            ValueError: naming the field whose shape, value or string is wrong.
        """
        fedavg.check_rule(aggregation)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        shapes = arch.shapes()
        if set(params) != set(shapes) or set(updates) != set(shapes):
            raise ValueError(
                f"params and updates must have exactly the keys {sorted(shapes)}, "
                f"got {sorted(params)} and {sorted(updates)}"
            )
        n_k = jnp.asarray(n_k, jnp.float32)
        if n_k.ndim != 1 or n_k.shape[0] < 1:
            raise ValueError(f"n_k must be a non-empty vector [K], got shape {n_k.shape}")
        K = n_k.shape[0]
        p32 = {}
        u32 = {}
        for name, shape in shapes.items():
            p = jnp.asarray(params[name], jnp.float32)
            u = jnp.asarray(updates[name], jnp.float32)
            if p.shape != shape:
                raise ValueError(f"params[{name!r}] must have shape {shape}, got {p.shape}")
            if u.shape != (K, *shape):
                raise ValueError(f"updates[{name!r}] must have shape {(K, *shape)}, got {u.shape}")
            p32[name], u32[name] = p, u
        if bool(jnp.any(n_k <= 0)):
            raise ValueError("every data cost n_k must be > 0")
        x = jnp.asarray(x, jnp.float32)
        y = jnp.asarray(y, jnp.int32)
        if x.ndim != 2 or x.shape[1] != arch.sizes[0] or y.shape != (x.shape[0],) or x.shape[0] < 1:
            raise ValueError(
                f"validation set must be x [n, {arch.sizes[0]}] and y [n] with n >= 1, "
                f"got {x.shape} and {y.shape}"
            )
        return cls(arch, p32, u32, n_k, x, y, aggregation, metric)

    @property
    def n_players(self) -> int:
        return int(self.n_k.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x.shape[0])


jax.tree_util.register_dataclass(
    RoundGame,
    data_fields=["params", "updates", "n_k", "x", "y"],
    meta_fields=["arch", "aggregation", "metric"],
)


def aggregation_weights(game: RoundGame) -> jax.Array:
    """ω_k of the round's clients (:func:`fedcoin.ml.fedavg.weights`), ``[K]`` float32."""
    return fedavg.weights(game.n_k, game.aggregation)


def game_coefficients(game: RoundGame, mask: jax.Array) -> jax.Array:
    """The FedAvg coefficients a_k of coalition ``mask`` (``[K]`` bool) in this round, ``[K]``."""
    return fedavg.coalition_coefficients(aggregation_weights(game), mask)


def metric_value(game: RoundGame, params: Params) -> jax.Array:
    """m(params) on the validation set: −mean cross-entropy or accuracy (float32 scalar)."""
    logits = apply(game.arch, params, game.x)
    if game.metric == "neg_cross_entropy":
        return -cross_entropy(logits, game.y)
    return accuracy(logits, game.y)


def utility(game: RoundGame, mask: jax.Array) -> jax.Array:
    """v(C) = m(A(w_t, C)) − m(w_t), with v(∅) = 0 exactly.

    The reference definition, one coalition per call (``jax.vmap`` it for a batch). It
    re-aggregates the coalition's weights and runs the whole model on the validation set.

    Args:
        game: the round.
        mask: ``[K]`` bool, the coalition C.

    Returns:
        float32 scalar.
    """
    coeffs = game_coefficients(game, mask)
    value = metric_value(game, aggregate(game.params, game.updates, coeffs)) - metric_value(
        game, game.params
    )
    return jnp.where(jnp.any(mask), value, jnp.zeros((), jnp.float32))


#: ``utility`` under ``jax.jit`` (the game is a pytree argument, not a baked-in constant).
utility_jit = jax.jit(utility)
