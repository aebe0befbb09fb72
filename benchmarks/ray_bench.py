"""Throughput of the miner's sampling on a local Ray cluster with 1 and 2 workers.

``.venv/bin/python benchmarks/ray_bench.py`` (one JSON line per configuration). Round: real MNIST,
K = 100, MLP 784-200-10, 1,000 validation rows (``--n-val``), control variate +
antithetic-stratified blocks. Each worker is one Ray actor on one CPU with one JAX host device;
the in-process line (``inproc``, the miner without ``--ray``, all cores as host devices) is
measured in the same run. The cluster binds to 127.0.0.1 and has no dashboard.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--perms", type=int, default=400, help="permutations per worker per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}")
    import jax

    from fl_rounds import mnist_round
    from miners.shapley import distributed, fl_game, init_state, step

    load = lambda: [round(x, 2) for x in os.getloadavg()]  # noqa: E731
    print(json.dumps({"impl": "meta", "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                      "machine": platform.machine(), "nproc": os.cpu_count(), "load": load()}), flush=True)
    rg = mnist_round(args.K, args.n_val)
    sampler = "antithetic_stratified"
    # in-process, as the miner runs without --ray
    game = fl_game(rg, control_variate=True)
    s = init_state(args.K, offset=game.offset)
    key = jax.random.key(0)
    for _ in range(2):  # compile
        key, sub = jax.random.split(key)
        s = step(game, s, key=sub, n_perms=args.perms, sampler=sampler)
    jax.block_until_ready(s)
    t0 = time.perf_counter()
    for _ in range(args.rounds):
        key, sub = jax.random.split(key)
        s = step(game, s, key=sub, n_perms=args.perms, sampler=sampler)
    jax.block_until_ready(s)
    dt = time.perf_counter() - t0
    base = args.rounds * args.perms / dt
    print(json.dumps({"impl": "inproc", "K": args.K, "n_val": args.n_val, "devices": len(jax.devices()),
                      "perms_per_s": round(base, 2), "load": load()}), flush=True)
    del game, s
    distributed.connect("auto", num_cpus=os.cpu_count() or 1)
    try:
        for n in (1, 2):
            workers = distributed.start_workers(rg, n_workers=n, sampler=sampler)
            kd = jax.random.key_data(jax.random.key(1))
            import ray

            for _ in range(2):  # compile on every worker
                ray.get([w.run.remote(kd, i, args.perms) for i, w in enumerate(workers)])
            t0 = time.perf_counter()
            for _ in range(args.rounds):
                states = ray.get([w.run.remote(kd, i, args.perms) for i, w in enumerate(workers)])
            dt = time.perf_counter() - t0
            total = sum(int(st["n_perms"]) for st in states) - 2 * n * args.perms
            print(json.dumps({"impl": "ray", "workers": n, "K": args.K, "n_val": args.n_val,
                              "perms_per_s": round(total / dt, 2), "x_vs_inproc": round(total / dt / base, 2),
                              "load": load()}), flush=True)
            for w in workers:
                ray.kill(w)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
