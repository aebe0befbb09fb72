"""Shapley engine benchmark: one JSON object per line (``make bench-shapley ARGS=--quick``).

Sections (each line has ``impl``; see docs/shapley.md for how to read them):

* speed, K = 100, MLP, n_val rows — ``numpy_alg1`` (NumPy Algorithm 1, running-mean aggregate,
  whole model re-evaluated per prefix: the reference code's loop), ``paper_alg1`` (Algorithm 1
  in JAX, every prefix re-aggregated from scratch), ``pydvl`` (pyDVL 0.10 permutation
  Monte-Carlo on the same utility in NumPy, in the ``.venv-bench`` subprocess), ``fast`` (this
  engine). Ratios against the baselines of the same run are on the ``fast`` line.
* accuracy, K = 20 (exact known) — ``rel_l2_err`` = ‖φ̂ − φ‖₂/‖φ‖₂ at a fixed budget of utility
  evaluations, mean over seeds, for ``fast`` (plain sampler) and each variance-reduction variant
  (``fast_antithetic``, ``fast_stratified``, ``fast_antithetic_stratified``), and ``paper_alg1``.
* ``memory`` — peak RSS of a fresh process running the fast path at K = 100 / MLP / 10,000 rows.
* ``gpu_config`` — K = 100, MLP, 10,000 rows, 2,500 permutations, when a GPU is present, and the
  memory-bandwidth / FLOP bounds of that work either way.

Inputs are synthetic but shaped like MNIST rounds: 784-dim images built from 10 smooth class
prototypes plus pixel noise in [0, 1]; w_t = a randomly initialised model after 30 SGD steps on
pooled data ("trained-ish"); each client's update = 5 local SGD steps on its own non-iid shard
(2 dominant classes; every 7th client has shuffled labels, so values differ in sign); data costs
n_k uniform in [50, 500]; validation rows drawn from the balanced mixture. Fixed seeds: the
inputs are identical on every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _host_devices_from_argv() -> int:
    for i, a in enumerate(sys.argv):
        if a == "--host-devices" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--host-devices="):
            return int(a.split("=", 1)[1])
    return os.cpu_count() or 1


# XLA runs one device's loop on one core: expose the CPU's cores as host devices (before JAX
# starts) so the fast path can split its row chunks over them. No effect on GPU/TPU backends.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={_host_devices_from_argv()}").strip()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from fedcoin.ml.models import Arch, apply, cross_entropy, init_params  # noqa: E402
from fedcoin.ml.fedavg import Aggregation  # noqa: E402
from fedcoin.ml.utility import RoundGame, utility_jit  # noqa: E402
from miners.shapley import (  # noqa: E402

    exact_shapley,
    fl_game,
    monte_carlo,
    paper_alg1,
    permutation_marginals,
    sample_permutations,
)
from numpy_shapley import NumpyRound  # noqa: E402

BENCH_PY = os.path.join(ROOT, ".venv-bench", "bin", "python")


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def loadavg() -> list[str] | str:
    try:
        return open("/proc/loadavg").read().split()[0:3]
    except OSError:
        return "n/a"


def device_info() -> dict:
    d = jax.devices()[0]
    return {"backend": d.platform, "device": getattr(d, "device_kind", str(d)) or str(d)}


# ------------------------------------------------------------------------------------ inputs


def make_round(arch: Arch, K: int, n_val: int, *, seed: int = 0, metric: str = "neg_cross_entropy") -> RoundGame:
    key = jax.random.key(seed)
    k_proto, k_init, k_pool, k_clients, k_val, k_n = jax.random.split(key, 6)
    d = arch.sizes[0]
    side = int(round(d ** 0.5))
    # smooth prototypes: low-frequency random images, squashed into [0, 1]
    coarse = jax.random.normal(k_proto, (10, 7, 7))
    protos = jax.nn.sigmoid(2.0 * jax.image.resize(coarse, (10, side, side), "linear")).reshape(10, -1)[:, :d]
    if protos.shape[1] < d:
        protos = jnp.pad(protos, ((0, 0), (0, d - protos.shape[1])))

    def draw(k, labels):
        noise = 0.35 * jax.random.normal(k, (labels.shape[0], d))
        return jnp.clip(protos[labels] + noise, 0.0, 1.0)

    loss = lambda p, x, y: cross_entropy(apply(arch, p, x), y)  # noqa: E731
    grad = jax.grad(loss)

    def sgd(p, x, y, steps, lr):
        def body(p, _):
            g = grad(p, x, y)
            return {n: p[n] - lr * g[n] for n in p}, None
        return jax.lax.scan(body, p, None, length=steps)[0]

    w_t = init_params(arch, key=k_init)
    ky, kx = jax.random.split(k_pool)
    y_pool = jax.random.randint(ky, (512,), 0, 10)
    w_t = jax.jit(sgd, static_argnums=(3, 4))(w_t, draw(kx, y_pool), y_pool, 30, 0.1)

    def client(k, idx):
        ka, kb, kc, kx = jax.random.split(k, 4)
        major = jax.random.randint(ka, (2,), 0, 10)
        labels = jnp.where(jax.random.uniform(kb, (64,)) < 0.8, major[jax.random.randint(kc, (64,), 0, 2)],
                           jax.random.randint(kc, (64,), 0, 10))
        x = draw(kx, labels)
        labels = jnp.where(idx % 7 == 3, jax.random.permutation(kc, labels), labels)  # noisy client
        p = sgd(w_t, x, labels, 5, 0.1)
        return {n: p[n] - w_t[n] for n in p}

    updates = jax.jit(jax.vmap(client))(jax.random.split(k_clients, K), jnp.arange(K))
    ky, kx = jax.random.split(k_val)
    y_val = jnp.arange(n_val, dtype=jnp.int32) % 10
    x_val = draw(kx, y_val)
    n_k = jnp.round(jax.random.uniform(k_n, (K,), minval=50.0, maxval=500.0))
    return RoundGame.create(arch, w_t, updates, n_k, x_val, y_val, metric=metric)


def to_npz(game: RoundGame, path: str) -> None:
    arrays = {f"p_{n}": np.asarray(v) for n, v in game.params.items()}
    arrays.update({f"u_{n}": np.asarray(v) for n, v in game.updates.items()})
    arrays.update(n_k=np.asarray(game.n_k), x=np.asarray(game.x), y=np.asarray(game.y),
                  n_layers=game.arch.n_layers, uniform=int(Aggregation.from_rule(game.aggregation) == Aggregation.UNIFORM),
                  accuracy=int(game.metric == "accuracy"))
    np.savez(path, **arrays)


# ------------------------------------------------------------------------------------ speed


def time_fast(game: RoundGame, n_perms: int, *, row_chunk: int, perm_batch: int, devices=None) -> dict:
    devices = jax.devices() if devices is None else devices
    t0 = time.perf_counter()
    fast = fl_game(game, row_chunk=row_chunk, perm_batch=perm_batch, devices=devices)
    jax.block_until_ready(fast.data)
    setup = time.perf_counter() - t0
    K = game.n_players
    perms = sample_permutations(n_perms, K, key=jax.random.key(1))
    t0 = time.perf_counter()
    permutation_marginals(fast, perms).block_until_ready()  # compile + first run
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        permutation_marginals(fast, perms).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return {"perms": n_perms, "seconds": best, "setup_s": round(setup, 3), "compile_s": round(compile_s, 3),
            "row_chunk": row_chunk, "perm_batch": perm_batch, "devices": len(devices)}


def time_numpy_alg1(game: RoundGame, n_perms: int, path: str) -> dict:
    rnd = NumpyRound(np.load(path))
    perms = np.asarray(sample_permutations(n_perms, game.n_players, key=jax.random.key(1)))
    t0 = time.perf_counter()
    rnd.alg1(perms)
    return {"perms": n_perms, "seconds": time.perf_counter() - t0}


def time_paper_alg1(game: RoundGame, n_perms: int) -> dict:
    K = game.n_players
    u = lambda m: utility_jit(game, jnp.asarray(m))  # noqa: E731
    u(np.ones(K, bool)).block_until_ready()  # compile
    t0 = time.perf_counter()
    paper_alg1(u, K, key=jax.random.key(1), n_iter=n_perms)
    return {"perms": n_perms, "seconds": time.perf_counter() - t0}


def time_pydvl(path: str, n_perms: int, bench_python: str) -> dict:
    if not os.path.exists(bench_python):
        return {"status": f"not run: {bench_python} missing (make bench-venv)"}
    out = subprocess.run([bench_python, os.path.join(os.path.dirname(__file__), "pydvl_runner.py"), path,
                          str(n_perms), "0"], capture_output=True, text=True)
    if out.returncode != 0:
        return {"status": "failed: " + out.stderr.strip().splitlines()[-1]}
    r = json.loads(out.stdout)
    return {"perms": r["samples"], "seconds": r["seconds"], "evals": r["utility_calls"],
            "pydvl_version": r["pydvl_version"], "numpy_version": r["numpy_version"]}


def speed_section(arch: Arch, K: int, n_val: int, *, perms: dict, args, dev: dict) -> None:
    game = make_round(arch, K, n_val)
    common = {"section": "speed", "K": K, "model": arch.id, "n_val": n_val, **dev}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "round.npz")
        to_npz(game, path)
        results["numpy_alg1"] = time_numpy_alg1(game, perms["numpy_alg1"], path)
        results["paper_alg1"] = time_paper_alg1(game, perms["paper_alg1"])
        if not args.skip_pydvl:
            results["pydvl"] = time_pydvl(path, perms["pydvl"], args.bench_python)
    results["fast"] = time_fast(game, perms["fast"], row_chunk=args.row_chunk, perm_batch=args.perm_batch)
    if len(jax.devices()) > 1 and not args.quick:  # the same on one device (one core), for the record
        results["fast_1dev"] = time_fast(game, perms["fast"], row_chunk=args.row_chunk, perm_batch=args.perm_batch,
                                         devices=jax.devices()[:1])
    for impl, r in results.items():
        if "seconds" in r:
            evals = r.get("evals", r["perms"] * K)
            r["perms_per_s"] = r["perms"] / r["seconds"]
            r["evals_per_s"] = evals / r["seconds"]
            r["ms_per_perm"] = 1e3 * r["seconds"] / r["perms"]
    for f in (results[k] for k in ("fast", "fast_1dev") if k in results):
        for base in ("numpy_alg1", "paper_alg1", "pydvl"):
            if base in results and "evals_per_s" in results[base]:
                f[f"x_vs_{base}"] = round(f["evals_per_s"] / results[base]["evals_per_s"], 2)
    for impl, r in results.items():
        emit({"impl": impl, **common, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}})


# ------------------------------------------------------------------------------------ accuracy


def accuracy_section(K: int, n_val: int, budget_perms: int, seeds: int, alg1_seeds: int, dev: dict) -> None:
    arch = Arch("mlp", (784, 32, 10))
    game = make_round(arch, K, n_val, seed=1)
    fast = fl_game(game, row_chunk=min(256, n_val), coalition_batch=512)
    t0 = time.perf_counter()
    exact = exact_shapley(fast, batch_size=8192)
    common = {"section": "accuracy", "K": K, "model": arch.id, "n_val": n_val, **dev,
              "budget_evals": budget_perms * K, "seeds": seeds}
    emit({"impl": "exact", **{k: v for k, v in common.items() if k not in ("budget_evals", "seeds")},
          "coalitions": 1 << K, "seconds": round(time.perf_counter() - t0, 3),
          "sum_phi": float(exact.sum()), "v_all": float(utility_jit(game, jnp.ones(K, bool)))})
    norm = np.linalg.norm(exact)
    errs = {}
    for sampler in ("plain", "antithetic", "stratified", "antithetic_stratified"):
        e = []
        t0 = time.perf_counter()
        for s in range(seeds):
            est = monte_carlo(fast, key=jax.random.key(100 + s), n_perms=budget_perms, sampler=sampler)
            e.append(np.linalg.norm(est.phi - exact) / norm)
        errs[sampler] = float(np.mean(e))
        impl = "fast" if sampler == "plain" else f"fast_{sampler}"
        emit({"impl": impl, **common, "sampler": sampler, "rel_l2_err": round(errs[sampler], 5),
              "rel_l2_err_std": round(float(np.std(e)), 5), "err_ratio_vs_plain": round(errs[sampler] / errs["plain"], 3),
              "seconds": round(time.perf_counter() - t0, 3)})
    cv = fl_game(game, row_chunk=min(256, n_val), control_variate=True)
    for sampler in ("plain", "antithetic_stratified"):
        e = []
        t0 = time.perf_counter()
        for s in range(seeds):
            # the control variate spent K evaluations on singletons: one permutation fewer
            est = monte_carlo(cv, key=jax.random.key(100 + s), n_perms=budget_perms - 1, sampler=sampler)
            e.append(np.linalg.norm(est.phi - exact) / norm)
        impl = "fast_cv" if sampler == "plain" else f"fast_{sampler}_cv"
        emit({"impl": impl, **common, "sampler": sampler, "control_variate": True,
              "rel_l2_err": round(float(np.mean(e)), 5), "rel_l2_err_std": round(float(np.std(e)), 5),
              "err_ratio_vs_plain": round(float(np.mean(e)) / errs["plain"], 3),
              "seconds": round(time.perf_counter() - t0, 3)})
    e = []
    t0 = time.perf_counter()
    u = lambda m: utility_jit(game, jnp.asarray(m))  # noqa: E731
    for s in range(alg1_seeds):
        S, _ = paper_alg1(u, K, key=jax.random.key(100 + s), n_iter=budget_perms)
        e.append(np.linalg.norm(S - exact) / norm)
    emit({"impl": "paper_alg1", **common, "seeds": alg1_seeds, "sampler": "plain",
          "rel_l2_err": round(float(np.mean(e)), 5), "seconds": round(time.perf_counter() - t0, 3),
          "note": "same permutations as fast (plain) for these seeds"})


# ------------------------------------------------------------------------------------ memory / GPU


def memory_child(args) -> None:
    arch = Arch("mlp", (784, 200, 10))
    game = make_round(arch, 100, 10_000)
    r = time_fast(game, args.perm_batch * 2, row_chunk=args.row_chunk, perm_batch=args.perm_batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_rss_bytes": peak, "ms_per_perm": 1e3 * r["seconds"] / r["perms"]}))


def memory_section(args, dev: dict) -> None:
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", "--row-chunk", str(args.row_chunk),
           "--perm-batch", str(args.perm_batch)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = {"impl": "memory", "section": "memory", "K": 100, "model": "mlp-784-200-10", "n_val": 10_000, **dev}
    if out.returncode != 0:
        emit({**line, "status": "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]})
        return
    r = json.loads(out.stdout.strip().splitlines()[-1])
    emit({**line, "peak_rss_gib": round(r["peak_rss_bytes"] / 2**30, 3), "target_gib": 4.0,
          "preactivation_table_gib": round(4 * 100 * 10_000 * 200 / 2**30, 3)})


def gpu_bounds(K=100, n=10_000, H=200, C=10, perms=2500, perm_batch=16, hbm_tb_s=3.35, fp32_tflops=67.0):
    """Lower bounds on the GPU configuration's time (H100 SXM figures by default)."""
    flops = perms * K * n * (2 * H * C + 4 * H + 6 * C)  # skinny product + running sum/scale/relu + softmax
    table = 4 * K * n * H  # D, read once per permutation batch
    bytes_min = perms / perm_batch * table
    bytes_per_perm_stream = perms * table
    return {
        "flops": flops, "flop_bound_s": flops / (fp32_tflops * 1e12),
        "bytes_if_table_streamed_per_perm": bytes_per_perm_stream,
        "bw_bound_streamed_per_perm_s": bytes_per_perm_stream / (hbm_tb_s * 1e12),
        "bytes_with_perm_batch": bytes_min, "perm_batch": perm_batch,
        "bw_bound_with_perm_batch_s": bytes_min / (hbm_tb_s * 1e12),
        "assumed": f"HBM {hbm_tb_s} TB/s, FP32 {fp32_tflops} TFLOP/s (H100 SXM)",
    }


def gpu_section(args, dev: dict) -> None:
    line = {"impl": "gpu_config", "section": "gpu", "K": 100, "model": "mlp-784-200-10", "n_val": 10_000,
            "perms": 2500, **dev, "target_s": 1.0, "bounds": gpu_bounds()}
    if dev["backend"] != "gpu":
        emit({**line, "status": "not measured: no GPU available"})
        return
    game = make_round(Arch("mlp", (784, 200, 10)), 100, 10_000)
    r = time_fast(game, 2500, row_chunk=args.gpu_row_chunk, perm_batch=args.gpu_perm_batch)
    emit({**line, **r, "x_of_flop_bound": round(r["seconds"] / line["bounds"]["flop_bound_s"], 2)})


# ------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="< 60 s on a 2-core CPU: K=100 MLP at 1,000 rows, K=12 accuracy")
    ap.add_argument("--skip-pydvl", action="store_true")
    ap.add_argument("--bench-python", default=BENCH_PY, help="interpreter of the venv with pyDVL")
    ap.add_argument("--row-chunk", type=int, default=256)
    ap.add_argument("--perm-batch", type=int, default=8)
    ap.add_argument("--gpu-row-chunk", type=int, default=2048)
    ap.add_argument("--gpu-perm-batch", type=int, default=64)
    ap.add_argument("--host-devices", type=int, default=os.cpu_count() or 1,
                    help="CPU cores exposed as JAX host devices (read before JAX starts; default nproc)")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args)
        return
    dev = device_info()
    t_start = time.perf_counter()
    emit({"impl": "meta", "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
          "quick": args.quick, "python": platform.python_version(), "jax": jax.__version__,
          "machine": platform.machine(), "cpu": platform.processor() or platform.machine(),
          "nproc": os.cpu_count(), "jax_devices": len(jax.devices()), "loadavg_before": loadavg(), **dev})
    mlp = Arch("mlp", (784, 200, 10))
    if args.quick:
        speed_section(mlp, 100, 1000, perms={"numpy_alg1": 2, "paper_alg1": 1, "pydvl": 1, "fast": 16},
                      args=args, dev=dev)
        accuracy_section(12, 128, budget_perms=120, seeds=6, alg1_seeds=1, dev=dev)
    else:
        speed_section(mlp, 100, 1000, perms={"numpy_alg1": 3, "paper_alg1": 2, "pydvl": 2, "fast": 64},
                      args=args, dev=dev)
        speed_section(mlp, 100, 10_000, perms={"numpy_alg1": 1, "paper_alg1": 1, "pydvl": 1, "fast": 16},
                      args=args, dev=dev)
        speed_section(Arch("mlp", (784, 128, 10)), 100, 10_000,
                      perms={"numpy_alg1": 1, "paper_alg1": 1, "pydvl": 1, "fast": 16}, args=args, dev=dev)
        accuracy_section(20, 256, budget_perms=400, seeds=10, alg1_seeds=2, dev=dev)
        memory_section(args, dev)
    gpu_section(args, dev)
    emit({"impl": "meta_end", "loadavg_after": loadavg(), "total_s": round(time.perf_counter() - t_start, 1)})


if __name__ == "__main__":
    main()
