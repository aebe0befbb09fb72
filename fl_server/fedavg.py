"""FedAvg training in JAX, Flower-style: local SGD plus a small strategy with hooks.

A client update is Δ_k = w_k − w_t, its locally trained parameters minus the global model. The
aggregation rule itself lives in :mod:`fedcoin.ml.fedavg` (one definition, shared with the
Shapley utility and the miners); :class:`FedAvg` aggregates with it.

Local training (:func:`local_sgd`) is plain minibatch SGD on the mean cross-entropy: ``steps``
iterations (the paper uses 20 local iterations), each on ``batch_size`` examples drawn with
replacement from the client's own data. It is a pure function of one client with a keyword-only
``key``; :func:`local_updates` ``vmap``s it across all clients (their data padded to one shape,
with the true count ``n_k`` masking the padding) under one ``jit``.

:class:`Strategy` has the hooks a server calls (``initialize``, ``configure_fit``,
``aggregate_fit``, ``evaluate``); :class:`FedAvg` fills them with the functions above.
:func:`run_fedavg` is the plain training loop (no chain) that Figure 5 uses; the on-chain server
(:mod:`fl_server.server`) calls the same hooks with registration and publication in between.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fedcoin.ml import fedavg as fedavg_rule
from fedcoin.ml.fedavg import DEFAULT_RULE
from fedcoin.ml.models import Arch, Params, accuracy, apply, cross_entropy, init_params

from .data import Dataset
from .partition import Client

# --------------------------------------------------------------------------------------------
# local training


def loss_fn(arch: Arch, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy of ``params`` on ``x`` [n, d], ``y`` [n]."""
    return cross_entropy(apply(arch, params, x), y)


@partial(jax.jit, static_argnames=("arch", "steps", "batch_size"))
def local_sgd(
    arch: Arch,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    n: jax.Array,
    lr: jax.Array,
    *,
    key: jax.Array,
    steps: int,
    batch_size: int,
) -> Params:
    """One client's local training: ``steps`` minibatch SGD steps.

    Args:
        params: the global model w_t.
        x: ``[n_max, d]`` float32 client data (rows ``>= n`` are padding, never sampled).
        y: ``[n_max]`` int32 labels.
        n: scalar int32, the client's real number of examples.
        lr: scalar float32 learning rate.
        key: PRNG key for the minibatch draws (keyword-only).

    Returns:
        The locally trained parameters w_k.
    """
    keys = jax.random.split(key, steps)
    grad = jax.grad(partial(loss_fn, arch))

    def step(p, k):
        u = jax.random.uniform(k, (batch_size,), jnp.float32)
        idx = jnp.minimum(jnp.floor(u * n.astype(jnp.float32)).astype(jnp.int32), n - 1)
        g = grad(p, x[idx], y[idx])
        return {name: p[name] - lr * g[name] for name in p}, None

    params, _ = jax.lax.scan(step, params, keys)
    return params


@partial(jax.jit, static_argnames=("arch", "steps", "batch_size"))
def local_updates(
    arch: Arch,
    params: Params,
    xs: jax.Array,
    ys: jax.Array,
    ns: jax.Array,
    lr: jax.Array,
    *,
    key: jax.Array,
    steps: int,
    batch_size: int,
) -> Params:
    """Every client's update Δ_k = local_sgd(w_t) − w_t, vmapped across clients.

    Args:
        xs: ``[K, n_max, d]``; ys: ``[K, n_max]``; ns: ``[K]`` int32.
        key: split into one key per client.

    Returns:
        Stacked updates ``{name: [K, ...]}``.
    """
    keys = jax.random.split(key, xs.shape[0])
    train = jax.vmap(
        lambda x, y, n, k: local_sgd(arch, params, x, y, n, lr, key=k, steps=steps, batch_size=batch_size)
    )
    local = train(xs, ys, ns, keys)
    return {name: local[name] - params[name][None] for name in params}


@partial(jax.jit, static_argnames=("arch",))
def evaluate_params(arch: Arch, params: Params, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(mean cross-entropy, accuracy)`` of ``params`` on ``x``, ``y``."""
    logits = apply(arch, params, x)
    return cross_entropy(logits, y), accuracy(logits, y)


@dataclass(frozen=True)
class ClientBatch:
    """Clients' data padded to one shape for ``vmap``: ``x`` [K, n_max, d], ``y`` [K, n_max],
    ``n`` [K] int32 (real counts)."""

    x: np.ndarray
    y: np.ndarray
    n: np.ndarray

    @classmethod
    def from_clients(cls, clients: Sequence[Client]) -> "ClientBatch":
        if not clients:
            raise ValueError("no clients")
        n = np.array([c.n for c in clients], np.int32)
        n_max, d = int(n.max()), clients[0].data.x.shape[1]
        x = np.zeros((len(clients), n_max, d), np.float32)
        y = np.zeros((len(clients), n_max), np.int32)
        for i, c in enumerate(clients):
            x[i, : c.n] = c.data.x
            y[i, : c.n] = c.data.y
        return cls(x, y, n)

    def subset(self, idx: Sequence[int]) -> "ClientBatch":
        idx = np.asarray(idx)
        return ClientBatch(self.x[idx], self.y[idx], self.n[idx])


# --------------------------------------------------------------------------------------------
# strategy


@dataclass(frozen=True)
class FitConfig:
    """What clients are told for one round of local training."""

    local_steps: int
    batch_size: int
    lr: float


class Strategy(abc.ABC):
    """The hooks an FL server calls each round (after Flower's ``Strategy``)."""

    arch: Arch

    @abc.abstractmethod
    def initialize(self, *, key: jax.Array) -> Params:
        """The initial global model w_0."""

    @abc.abstractmethod
    def configure_fit(self, rnd: int) -> FitConfig:
        """Local-training settings for round ``rnd``."""

    def fit(self, rnd: int, params: Params, clients: ClientBatch, *, key: jax.Array) -> Params:
        """Run every client's local training; return stacked updates Δ (simulated clients)."""
        cfg = self.configure_fit(rnd)
        return local_updates(
            self.arch, params, jnp.asarray(clients.x), jnp.asarray(clients.y), jnp.asarray(clients.n),
            jnp.float32(cfg.lr), key=key, steps=cfg.local_steps, batch_size=cfg.batch_size,
        )

    @abc.abstractmethod
    def aggregate_fit(self, rnd: int, params: Params, deltas: Params, n_k) -> Params:
        """The next global model from the round's updates."""

    def evaluate(self, rnd: int, params: Params, data: Dataset) -> dict[str, float]:
        """Metrics of ``params`` on ``data``."""
        del rnd
        loss, acc = evaluate_params(self.arch, params, jnp.asarray(data.x), jnp.asarray(data.y))
        return {"loss": float(loss), "accuracy": float(acc)}


class FedAvg(Strategy):
    """FedAvg (McMahan et al.) with the paper's defaults.

    Args:
        arch: the model.
        lr: local SGD learning rate.
        local_steps: local iterations per round (paper: 20).
        batch_size: minibatch size of each local step.
        rule: one of :data:`fedcoin.ml.fedavg.RULES` (``"fedavg-weighted"``: by n_k).
    """

    def __init__(self, arch: Arch, *, lr: float = 0.1, local_steps: int = 20, batch_size: int = 50,
                 rule: str = DEFAULT_RULE):
        rule_name = fedavg_rule.check_rule(rule)
        if local_steps < 1 or batch_size < 1 or not lr > 0:
            raise ValueError("local_steps and batch_size must be >= 1 and lr > 0")
        self.arch, self.lr, self.local_steps, self.batch_size, self.rule = arch, lr, local_steps, batch_size, rule_name

    def initialize(self, *, key: jax.Array) -> Params:
        return init_params(self.arch, key=key)

    def configure_fit(self, rnd: int) -> FitConfig:
        del rnd
        return FitConfig(self.local_steps, self.batch_size, self.lr)

    def aggregate_fit(self, rnd: int, params: Params, deltas: Params, n_k) -> Params:
        del rnd
        return fedavg_rule.aggregate_all(params, deltas, n_k, rule=self.rule)


# --------------------------------------------------------------------------------------------
# the plain loop


@dataclass
class History:
    """Per-round metrics: ``rounds[i] = {"round": i, "loss": …, "accuracy": …}`` on the eval set."""

    rounds: list[dict] = field(default_factory=list)

    @property
    def accuracy(self) -> list[float]:
        return [r["accuracy"] for r in self.rounds]

    @property
    def loss(self) -> list[float]:
        return [r["loss"] for r in self.rounds]


def run_fedavg(
    strategy: Strategy,
    clients: Sequence[Client] | ClientBatch,
    *,
    rounds: int,
    key: jax.Array,
    eval_data: Dataset | None = None,
    params: Params | None = None,
    callback: Callable[[int, Params, dict], None] | None = None,
    progress: bool = False,
) -> tuple[Params, History]:
    """Train ``rounds`` rounds of FedAvg with every client participating.

    Args:
        key: the training key: w_0 from :func:`fedcoin.ml.fedavg.init_key`, round r's local
            training from :func:`fedcoin.ml.fedavg.round_key` (as the server does).
        eval_data: evaluated after every round (loss and accuracy recorded in the history).
        params: start from these instead of ``strategy.initialize``.
        callback: called with ``(round, new_params, metrics)``.
        progress: show a tqdm bar.
    """
    batch = clients if isinstance(clients, ClientBatch) else ClientBatch.from_clients(clients)
    params = strategy.initialize(key=fedavg_rule.init_key(key)) if params is None else params
    history = History()
    it = range(rounds)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="FedAvg rounds", unit="round")
    for rnd in it:
        deltas = strategy.fit(rnd, params, batch, key=fedavg_rule.round_key(key, rnd))
        params = strategy.aggregate_fit(rnd, params, deltas, batch.n)
        metrics = {"round": rnd}
        if eval_data is not None:
            metrics.update(strategy.evaluate(rnd, params, eval_data))
        history.rounds.append(metrics)
        if callback:
            callback(rnd, params, metrics)
    return params, history
