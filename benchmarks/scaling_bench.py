"""Scaling of the miner with K: time per permutation, permutations and wall time until the error
bound reaches ½·D, peak memory. One JSON line per K (``.venv/bin/python benchmarks/scaling_bench.py``).

D is the demo's: the contract's initial difficulty, 0.1 in the task's p = 2 norm (absolute,
``fedcoin.chain.deployment.DeployParams``), so the miner samples until its 95 % bound on
‖φ̂ − φ‖₂ is ≤ 0.05. Each K runs in a fresh process (``--child K``) so its peak RSS is its own.
Rounds are real (:mod:`fl_rounds`, MNIST, MLP 784-200-10, 10,000 validation rows by default).

Sampler: the miner's default for K ≤ 100 (``control_variate=True``: the pairwise game up to
K = 300, the linear one above; ``default_sampler``: plain permutations with the pairwise game). At K = 1000 a block is
2,000 permutations and the stopping rule wants 8 blocks, so the run uses ``antithetic`` pairs
instead (same estimator family, unbiased; the ``sampler`` and ``control_variate`` fields say which).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

D_DEMO = 0.1  # an absolute D of 0.1 (TaskConfig(difficulty=10**17, relative=False)), p = 2


def child(K: int, n_val: int, hidden: int, host_devices: int) -> None:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={host_devices}"
    import jax

    from fl_rounds import mnist_round
    from miners.shapley import default_sampler, fl_game, init_state, run_until, step
    from miners.shapley.fl import preactivation_bytes

    t0 = time.perf_counter()
    rg = mnist_round(K, n_val, hidden=hidden)
    jax.block_until_ready(rg.updates)
    round_s = time.perf_counter() - t0
    rss_round = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampler = default_sampler(True, K) if K <= 100 else "antithetic"
    t0 = time.perf_counter()
    game = fl_game(rg, control_variate=True)
    jax.block_until_ready(game.data)
    setup_s = time.perf_counter() - t0
    # one block / the 8 pairs the stopping rule wants / plain steps of K/2 (at least 32)
    per = 2 * K if sampler == "antithetic_stratified" else 16 if sampler == "antithetic" else max(32, K // 2)
    times = []
    s = init_state(K, offset=game.offset)
    for i in range(3):  # the first two calls compile (a fresh state, then a stepped one); then steady state
        t0 = time.perf_counter()
        s = step(game, s, key=jax.random.key(99 + i), n_perms=per, sampler=sampler)
        jax.block_until_ready(s)
        times.append(time.perf_counter() - t0)
    times = [times[0] + times[1] - times[2], times[2]]
    t0 = time.perf_counter()
    res = run_until(game, key=jax.random.key(0), D=D_DEMO / 2, p=2, confidence=0.95, sampler=sampler,
                    perms_per_step=per, max_perms=200_000)
    run_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "K": K, "n_val": n_val, "model": rg.arch.id, "sampler": sampler,
        "control_variate": "pairwise" if game.name.endswith("+pcv") else "linear",
        "devices": len(jax.devices()), "round_build_s": round(round_s, 1), "setup_s": round(setup_s, 2),
        "compile_s": round(max(0.0, times[0] - times[1]), 2), "ms_per_perm": round(1e3 * times[1] / per, 2),
        "D": D_DEMO, "target_err2": D_DEMO / 2, "perms_to_half_D": res.iterations, "err2_bound": res.err_p,
        "reason": res.reason, "wall_to_half_D_s": round(run_s, 2),
        "wall_incl_setup_compile_s": round(setup_s + max(0.0, times[0] - times[1]) + run_s, 2),
        "norm2_phi": float((res.phi**2).sum() ** 0.5),
        "peak_rss_gib": round(peak / 2**30, 2), "rss_after_round_gib": round(rss_round / 2**30, 2),
        "preactivation_table_gib": round(preactivation_bytes(K, n_val, hidden) / 2**30, 2),
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", default="10,100,1000")
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--host-devices", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n_val, args.hidden, args.host_devices)
        return
    import platform

    print(json.dumps({"impl": "meta", "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                      "machine": platform.machine(), "nproc": os.cpu_count(),
                      "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                      "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    for K in (int(k) for k in args.ks.split(",")):
        load0 = os.getloadavg()
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(K), "--n-val", str(args.n_val),
               "--hidden", str(args.hidden), "--host-devices", str(args.host_devices)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = {"impl": "scaling", "load_before": [round(x, 2) for x in load0],
                "load_after": [round(x, 2) for x in os.getloadavg()]}
        if out.returncode != 0:
            tail = (out.stderr.strip().splitlines() or ["?"])[-1]
            print(json.dumps({**line, "K": K, "status": f"failed (rc {out.returncode}): {tail}"}), flush=True)
            continue
        print(json.dumps({**line, **json.loads(out.stdout.strip().splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
