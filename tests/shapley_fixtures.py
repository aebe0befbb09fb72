"""Small FL rounds for the Shapley tests (random init, updates of a few SGD steps, fixed seeds)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fedcoin.ml.models import Arch, apply, cross_entropy, init_params
from fedcoin.ml.utility import RoundGame

LOGREG_SMALL = Arch("logreg", (784, 10))
MLP_SMALL = Arch("mlp", (784, 24, 10))


@functools.lru_cache(maxsize=None)
def make_round(arch: Arch, K: int, *, n_val: int = 64, seed: int = 0, steps: int = 3, lr: float = 0.5,
               aggregation: str = "fedavg-weighted", metric: str = "neg_cross_entropy") -> RoundGame:
    """w_t random; client k's update = a few SGD steps on its own random-prototype data."""
    key = jax.random.key(seed)
    k_init, k_proto, k_data, k_val = jax.random.split(key, 4)
    w_t = init_params(arch, key=k_init)
    protos = jax.random.normal(k_proto, (10, arch.sizes[0]))

    def sample(k, n):
        ky, kx = jax.random.split(k)
        y = jax.random.randint(ky, (n,), 0, 10)
        return protos[y] + 2.0 * jax.random.normal(kx, (n, arch.sizes[0])), y

    grad = jax.jit(jax.grad(lambda p, x, y: cross_entropy(apply(arch, p, x), y)))
    updates = {name: [] for name in w_t}
    for k in range(K):
        x, y = sample(jax.random.fold_in(k_data, k), 32)
        p = w_t
        for _ in range(steps):
            g = grad(p, x, y)
            p = {name: p[name] - lr * g[name] for name in p}
        for name in p:
            updates[name].append(p[name] - w_t[name])
    stacked = {name: jnp.stack(v) for name, v in updates.items()}
    x_val, y_val = sample(k_val, n_val)
    n_k = 10.0 + jnp.arange(K, dtype=jnp.float32) * 7.0
    return RoundGame.create(arch, w_t, stacked, n_k, x_val, y_val, aggregation=aggregation, metric=metric)


def with_updates(game: RoundGame, updates) -> RoundGame:
    return RoundGame.create(game.arch, game.params, updates, game.n_k, game.x, game.y,
                            aggregation=game.aggregation, metric=game.metric)
