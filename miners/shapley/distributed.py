"""The miner's sampling scaled out over a Ray cluster (optional: ``pip install 'fedcoin[ray]'``).

Each Ray worker holds the round's fast game (:func:`miners.shapley.fl.fl_game`, built once on the
worker from the round's arrays) on its own devices and advances its **own** estimator state with
its own key stream; the driver fetches the workers' states and merges them exactly
(:func:`miners.shapley.incremental.merge_states`: running means and sums of squared deviations
with Chan et al.'s formula, in float64). Blocks from different workers are independent, so the
merged state is the same estimator as one process drawing all those blocks: same mean, same
standard error, same stopping rule — just more samples per second.

Keys: worker ``w``'s ``t``-th step uses ``worker_key(key, w, t) = fold_in(fold_in(key, w), t)``,
so :func:`sample_like_workers` reproduces a cluster run in one process, permutation for
permutation (the test checks it).

Addresses: ``"auto"`` (or ``"local"``) starts a fresh local cluster bound to 127.0.0.1 with no
dashboard, sized to this machine's cores; anything else is passed to ``ray.init(address=...)``
(``"HOST:6379"``, ``"ray://HOST:10001"``). Ray is imported only when a cluster is used: the miner
works without it.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable

import jax
import numpy as np

from miners.shapley.incremental import (
    Estimate,
    RunResult,
    ShapleyState,
    estimate,
    init_state,
    merge_states,
    step,
)


def worker_key(key: jax.Array, worker: int, t: int) -> jax.Array:
    """The key of worker ``worker``'s ``t``-th step."""
    return jax.random.fold_in(jax.random.fold_in(key, worker), t)


def state_to_host(state: ShapleyState) -> dict:
    """A state as plain NumPy (what travels between processes)."""
    return {f: np.asarray(getattr(state, f)) for f in ShapleyState._fields}


def state_from_host(d: dict) -> ShapleyState:
    import jax.numpy as jnp

    return ShapleyState(*(jnp.asarray(d[f]) for f in ShapleyState._fields))


def round_to_host(game) -> dict:
    """A :class:`fedcoin.ml.utility.RoundGame` as picklable NumPy arrays plus its static fields."""
    return {
        "arch": game.arch, "params": {k: np.asarray(v) for k, v in game.params.items()},
        "updates": {k: np.asarray(v) for k, v in game.updates.items()}, "n_k": np.asarray(game.n_k),
        "x": np.asarray(game.x), "y": np.asarray(game.y), "aggregation": game.aggregation, "metric": game.metric,
    }


def round_from_host(d: dict):
    from fedcoin.ml.utility import RoundGame

    return RoundGame.create(d["arch"], d["params"], d["updates"], d["n_k"], d["x"], d["y"],
                            aggregation=d["aggregation"], metric=d["metric"])


class SamplerWorker:
    """One worker's game and state (the body of the Ray actor; also usable in-process).

    Args:
        round_arrays: :func:`round_to_host` of the round.
        control_variate: as :func:`miners.shapley.fl.fl_game`.
        sampler: a :data:`miners.shapley.sampling.SAMPLERS` name (one per state).
        fl_kwargs: further :func:`fl_game` arguments (``row_chunk``, ``perm_batch``, ...).
    """

    def __init__(self, round_arrays: dict, *, control_variate: bool | str = True, sampler: str = "antithetic_stratified",
                 fl_kwargs: dict | None = None):
        from miners.shapley.fl import fl_game

        self.game = fl_game(round_from_host(round_arrays), control_variate=control_variate, **(fl_kwargs or {}))
        self.sampler = sampler
        self.state = init_state(self.game.n_players, offset=self.game.offset)
        self.t = 0

    def info(self) -> dict:
        d = jax.devices()
        return {"pid": os.getpid(), "backend": d[0].platform, "devices": len(d)}

    def run(self, key_data: np.ndarray, worker: int, n_perms: int) -> dict:
        """Advance by ``n_perms`` with key ``worker_key(key, worker, t)``; return the whole state."""
        key = jax.random.wrap_key_data(np.asarray(key_data))
        self.state = step(self.game, self.state, key=worker_key(key, worker, self.t), n_perms=n_perms,
                          sampler=self.sampler)
        self.t += 1
        return state_to_host(self.state)


def sample_like_workers(game, *, key: jax.Array, n_workers: int, steps: int, n_perms: int,
                        sampler: str = "antithetic_stratified") -> ShapleyState:
    """In one process, what ``n_workers`` workers produce after ``steps`` steps each, merged."""
    merged = init_state(game.n_players, offset=game.offset)
    for w in range(n_workers):
        s = init_state(game.n_players, offset=game.offset)
        for t in range(steps):
            s = step(game, s, key=worker_key(key, w, t), n_perms=n_perms, sampler=sampler)
        merged = merge_states(merged, s)
    return merged


def connect(address: str, *, num_cpus: int | None = None) -> None:
    """``ray.init`` for ``address`` (``"auto"``/``"local"``: a fresh local cluster on 127.0.0.1)."""
    if address in ("auto", "local"):
        # Ray resolves 127.0.0.1 to the host's routable address and binds there (and on every
        # interface) unless it runs in its single-machine mode; ask for that mode (read when
        # ray is first imported) so a local cluster listens on loopback only.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("Ray is not installed: pip install 'fedcoin[ray]' (or run without --ray)") from e
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address in ("auto", "local"):
        # if ray was imported before the variable above was set, ask for the mode directly
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 num_cpus=num_cpus or os.cpu_count() or 1, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)


def start_workers(round_game, *, n_workers: int | None = None, control_variate: bool | str = True,
                  sampler: str = "antithetic_stratified", fl_kwargs: dict | None = None) -> list:
    """Ray actors, one per worker, each holding the round's game (one GPU each where the cluster
    has GPUs, else one CPU each; ``n_workers`` defaults to as many as fit)."""
    import ray

    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    per = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    n = n_workers or (gpus or max(1, int(res.get("CPU", 1))))
    arrays = ray.put(round_to_host(round_game))
    Actor = ray.remote(**per)(SamplerWorker)
    # one host device per CPU worker: XLA runs one device's loop on one core
    env = {"env_vars": {"XLA_FLAGS": "--xla_force_host_platform_device_count=1"}} if not gpus else None
    opts = {"runtime_env": env} if env else {}
    workers = [Actor.options(**opts).remote(arrays, control_variate=control_variate, sampler=sampler,
                                            fl_kwargs=fl_kwargs) for _ in range(n)]
    ray.get([w.info.remote() for w in workers])  # built and ready (fl_game ran on each)
    return workers


def run_until(
    round_game,
    *,
    key: jax.Array,
    D: float,
    address: str | None = "auto",
    workers: list | None = None,
    n_workers: int | None = None,
    p: float = 2,
    confidence: float = 0.95,
    deadline: float | None = None,
    max_perms: int | None = None,
    sampler: str = "antithetic_stratified",
    control_variate: bool | str = True,
    perms_per_step: int | None = None,
    min_blocks: int = 8,
    progress: Callable[[Estimate], None] | None = None,
    fl_kwargs: dict | None = None,
) -> RunResult:
    """:func:`miners.shapley.incremental.run_until` with the sampling spread over Ray workers.

    Every round of the loop, each worker adds ``perms_per_step`` permutations to its own state;
    the driver merges all workers' states (exactly) and applies the same stopping rule. Pass
    ``workers`` (from :func:`start_workers`) to reuse them across calls.

    Returns:
        :class:`RunResult` (its ``state`` is the merged state).
    """
    import ray

    from miners.shapley.sampling import block_size

    if deadline is None and max_perms is None and not (D > 0):
        raise ValueError("with D <= 0 give a deadline or max_perms, or the loop never ends")
    start = time.time()
    if workers is None:
        connect(address or "auto")
        workers = start_workers(round_game, n_workers=n_workers, control_variate=control_variate,
                                sampler=sampler, fl_kwargs=fl_kwargs)
    K = round_game.n_players
    bs = block_size(sampler, K)
    per = perms_per_step or max(bs, 32)
    key_data = np.asarray(jax.random.key_data(key))
    states: list[dict | None] = [None] * len(workers)
    merged = None
    est = Estimate(np.zeros(K), 0, math.inf)
    last_dt, reason = 0.0, "max_perms"
    while True:
        if max_perms is not None and est.iterations >= max_perms:
            reason = "max_perms"
            break
        if deadline is not None and time.time() + last_dt > deadline:
            reason = "deadline"
            break
        take = per if max_perms is None else max(1, min(per, -(-(max_perms - est.iterations) // len(workers))))
        t0 = time.time()
        states = ray.get([w.run.remote(key_data, i, take) for i, w in enumerate(workers)])
        merged = None
        for s in states:
            s = state_from_host(s)
            merged = s if merged is None else merge_states(merged, s)
        est = estimate(merged, p=p, confidence=confidence)
        last_dt = time.time() - t0
        if progress is not None:
            progress(est)
        if int(merged.n_blocks) >= min_blocks and est.err_p <= D:
            reason = "converged"
            break
    if merged is None:
        merged = init_state(K)
    return RunResult(est.phi, est.iterations, est.err_p, reason, time.time() - start, merged)


class RayGame:
    """A round to be sampled on a Ray cluster: what the miner loop keeps per round in place of
    the in-process game (workers start on the first :meth:`run_until` and keep their states, so
    a re-opened round resumes where it stopped).

    Args:
        round_game: the round (:class:`fedcoin.ml.utility.RoundGame`).
        address: Ray address, or ``"auto"`` for a local cluster on 127.0.0.1.
        control_variate: as :func:`miners.shapley.fl.fl_game`.
        n_workers: default: one per GPU of the cluster, else one per CPU.
        fl_kwargs: further :func:`miners.shapley.fl.fl_game` arguments for every worker.
    """

    def __init__(self, round_game, address: str = "auto", *, control_variate: bool | str = True,
                 n_workers: int | None = None, fl_kwargs: dict | None = None):
        self.round_game = round_game
        self.n_players = round_game.n_players
        self.address = address
        self.control_variate = control_variate
        self.n_workers = n_workers
        self.fl_kwargs = fl_kwargs
        self.workers: list | None = None
        self.sampler: str | None = None

    def run_until(self, *, key, D, p=2, confidence=0.95, deadline=None, max_perms=None,
                  sampler="antithetic_stratified", state=None, progress=None, **kw) -> RunResult:
        """:func:`run_until` on this round's workers (``state`` is ignored: the workers hold it)."""
        del state
        if self.workers is None or sampler != self.sampler:
            connect(self.address)
            if self.workers:  # a new sampler: the old actors give their CPUs back first
                import ray

                for w in self.workers:
                    ray.kill(w)
            self.workers = start_workers(self.round_game, n_workers=self.n_workers,
                                         control_variate=self.control_variate, sampler=sampler,
                                         fl_kwargs=self.fl_kwargs)
            self.sampler = sampler
        return run_until(self.round_game, key=key, D=D, workers=self.workers, p=p, confidence=confidence,
                         deadline=deadline, max_perms=max_perms, sampler=sampler, progress=progress, **kw)


def shutdown() -> None:
    """Disconnect from (and, for a local cluster, stop) Ray."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


__all__: list[Any] = [
    "RayGame", "SamplerWorker", "connect", "round_from_host", "round_to_host", "run_until", "sample_like_workers",
    "shutdown", "start_workers", "state_from_host", "state_to_host", "worker_key",
]
