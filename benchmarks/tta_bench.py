"""Time to an accurate Shapley vector: the miner's estimators vs Algorithm 1, GTG-Shapley, pyDVL.

One JSON object per line (``.venv/bin/python benchmarks/tta_bench.py [--quick]``). For every
estimator and every target x ∈ {10 %, 5 %, 2 %} of relative L2 error ‖φ̂ − φ‖₂/‖φ‖₂ it reports the
wall time until the estimate first reaches x — sampling only (``sampling_s``) and with the
round's one-time setup and the compile included (``wall_s``) — and the permutations used.

Rounds are real FedCoin rounds (:mod:`fl_rounds`: MNIST, the paper's quality types, MLP
784-200-10, FedAvg as the FL server runs it; the 3rd round is valued). Sections:

* ``exact``: K = 14 clients, 1,000 validation rows, truth = exact values from all 2^14
  coalitions. (K = 20 at this model and row count is 2^20 coalitions ≈ 1 h on this CPU.)
* ``ref``: K = 100, 1,000 rows, truth = a reference run of the default estimator with
  ``--ref-factor`` × the largest permutation budget measured against it, from an independent
  key; its own 95 % error bound is on the ``truth`` line.

Kinds of figure (the ``how`` field):

* ``measured``: run here to the target; median over ``seeds`` first-passage times.
* ``predicted``: an unbiased estimator's RMS error after n permutations is
  √(Σ_k Var_k / n_blocks)/‖φ‖ with the per-block variances of its own run, so the permutations for
  target x follow; wall = setup + compile + permutations × the measured time per permutation.
* ``derived``: a slow baseline whose estimator is numerically identical to one run on the fast
  evaluator (Algorithm 1 and pyDVL's permutation sampler are plain Monte-Carlo; GTG as published
  is GTG on the fast evaluator): wall = that estimator's permutations to the target × the
  baseline's own time per permutation, measured in this run.

Every line carries the load average; ratios are on ``ratios`` lines, all from this run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={os.cpu_count() or 1}").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from miners.shapley import block_size, estimate, exact_shapley, fl_game, init_state, step  # noqa: E402
from miners.shapley.gtg import converged, gtg_marginals, gtg_shapley  # noqa: E402

TARGETS = (0.10, 0.05, 0.02)
BENCH_PY = os.path.join(ROOT, ".venv-bench", "bin", "python")
#: (label, sampler, control variate: fl_game's ``control_variate``); the first is the miner's default
VARIANTS = (
    ("ours_default", "plain", "pairwise"),
    ("ours_pairwise_as", "antithetic_stratified", "pairwise"),
    ("ours_linear_cv", "antithetic_stratified", "linear"),
    ("ours_linear_cv_plain", "plain", "linear"),
    ("ours_antithetic_stratified", "antithetic_stratified", False),
    ("ours_stratified", "stratified", False),
    ("ours_antithetic", "antithetic", False),
    ("ours_plain", "plain", False),
)


def emit(obj: dict) -> None:
    obj["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(obj), flush=True)


def rel(phi, truth) -> float:
    return float(np.linalg.norm(np.asarray(phi, np.float64) - truth) / np.linalg.norm(truth))


def _median(xs):
    return float(np.median(xs)) if xs else None


def summarize(first: list[dict], n_seeds: int) -> dict:
    """Per target: median perms / sampling seconds over the seeds that reached it."""
    out = {}
    for x in TARGETS:
        hit = [f[x] for f in first if x in f]
        out[f"{x:g}"] = {"reached": f"{len(hit)}/{n_seeds}", "perms": _median([h[0] for h in hit]),
                         "sampling_s": _median([h[1] for h in hit])}
    return out


# ------------------------------------------------------------------------------ fast estimators


def trace_ours(rg, truth, *, sampler, cv, seeds, step_perms, cap, fl_kwargs) -> dict:
    t0 = time.perf_counter()
    game = fl_game(rg, control_variate=cv, **fl_kwargs)
    jax.block_until_ready(game.data)
    setup = time.perf_counter() - t0
    K = rg.n_players
    bs = block_size(sampler, K)
    step_perms = max(bs, step_perms // bs * bs)
    cap = max(cap, 2 * bs)  # two blocks at least: the prediction needs a variance
    times = []
    s = init_state(K, offset=game.offset)
    wkey = jax.random.key(10_000)
    for i in range(3):  # the first two calls compile (a fresh state, then a stepped one: other layouts)
        wkey, sub = jax.random.split(wkey)  # keys made as the trace makes them (same layout, no recompile)
        t0 = time.perf_counter()
        s = step(game, s, key=sub, n_perms=step_perms, sampler=sampler)
        jax.block_until_ready(s)
        times.append(time.perf_counter() - t0)
    compile_s, per_step = max(0.0, times[0] + times[1] - 2 * times[2]), times[2]
    first, var_terms, final_err = [], [], []
    for seed in seeds:
        state = init_state(K, offset=game.offset)
        key = jax.random.key(seed)
        elapsed, hit = 0.0, {}
        while int(state.n_perms) < cap and len(hit) < len(TARGETS):
            key, sub = jax.random.split(key)
            t0 = time.perf_counter()
            state = step(game, state, key=sub, n_perms=step_perms, sampler=sampler)
            phi = estimate(state).phi  # blocks until done
            elapsed += time.perf_counter() - t0
            err = rel(phi, truth)
            for x in TARGETS:
                if x not in hit and err <= x:
                    hit[x] = (int(state.n_perms), elapsed)
        first.append(hit)
        nb = int(state.n_blocks)
        var_terms.append(float(np.sum(np.asarray(state.m2, np.float64)) / max(nb - 1, 1)))  # Σ_k Var_k per block
        final_err.append(rel(estimate(state).phi, truth))
    s_per_perm = per_step / step_perms
    norm2 = float(np.sum(truth**2))
    var = float(np.mean(var_terms))
    pred = {}
    for x in TARGETS:
        perms = bs * var / (x * x * norm2)
        pred[f"{x:g}"] = {"perms": round(perms, 1), "sampling_s": round(perms * s_per_perm, 3),
                          "wall_s": round(setup + compile_s + perms * s_per_perm, 3)}
    meas = summarize(first, len(seeds))
    for v in meas.values():
        v["wall_s"] = None if v["sampling_s"] is None else round(setup + compile_s + v["sampling_s"], 3)
    return {"setup_s": round(setup, 3), "compile_s": round(compile_s, 3), "ms_per_perm": round(1e3 * s_per_perm, 3),
            "step_perms": step_perms, "cap_perms": cap, "seeds": len(seeds), "measured": meas, "predicted": pred,
            "final_rel_err": round(float(np.median(final_err)), 5)}


def trace_gtg_fast(rg, truth, *, seeds, batch, cap, long_perms, fl_kwargs) -> dict:
    """GTG-Shapley's estimator on the fast evaluator (same marginals as the published loop)."""
    t0 = time.perf_counter()
    game = fl_game(rg, **fl_kwargs)
    jax.block_until_ready(game.data)
    v_all = float(game.prefix_values(jnp.arange(rg.n_players, dtype=jnp.int32)[None])[0, -1])
    setup = time.perf_counter() - t0
    K = rg.n_players
    times = []
    wkey = jax.random.key(10_000)
    for i in range(2):
        wkey, sub = jax.random.split(wkey)
        t0 = time.perf_counter()
        jax.block_until_ready(gtg_marginals(game, key=sub, n=batch, start=i * batch, v_all=v_all))
        times.append(time.perf_counter() - t0)
    compile_s, per_batch = max(0.0, times[0] - times[1]), times[1]
    first, stops, eval_frac = [], [], []
    for seed in seeds:
        key = jax.random.key(seed)
        total = np.zeros(K)
        t, elapsed, hit, stop, evals = 0, 0.0, {}, None, 0
        history: list = []
        while t < cap and (len(hit) < len(TARGETS) or stop is None):
            key, sub = jax.random.split(key)
            t0 = time.perf_counter()
            marg, ev = gtg_marginals(game, key=sub, n=batch, start=t, v_all=v_all)
            marg = np.asarray(marg, np.float64)
            elapsed += time.perf_counter() - t0
            evals += int(ev)
            running = (total + np.cumsum(marg, axis=0)) / (t + 1 + np.arange(batch))[:, None]
            for i, phi in enumerate(running):
                history.append(phi)
                err = rel(phi, truth)
                for x in TARGETS:
                    if x not in hit and err <= x:
                        hit[x] = (t + i + 1, elapsed)
                if stop is None and converged(np.asarray(history[-11:]), seen=t + i + 1):
                    stop = (t + i + 1, err)
            total += marg.sum(axis=0)
            t += batch
        first.append(hit)
        stops.append(stop)
        eval_frac.append(evals / (t * K))
    # long run: what GTG converges to (its bias), with the Monte-Carlo error of that mean
    key = jax.random.key(77)
    sums, sq, t = np.zeros(K), np.zeros(K), 0
    while t < long_perms:
        key, sub = jax.random.split(key)
        marg = np.asarray(gtg_marginals(game, key=sub, n=batch, start=t, v_all=v_all)[0], np.float64)
        sums += marg.sum(0)
        sq += (marg**2).sum(0)
        t += batch
    mean = sums / t
    se2 = np.sum(np.maximum(sq / t - mean**2, 0.0)) / t  # Σ_k SE_k² (guided order ≈ iid per perm)
    bias = max(0.0, float(np.sum((mean - truth) ** 2)) - se2)
    s_per_perm = per_batch / batch
    meas = summarize(first, len(seeds))
    for v in meas.values():
        v["wall_s"] = None if v["sampling_s"] is None else round(setup + compile_s + v["sampling_s"], 3)
        # GTG skips the truncated evaluations; on the fast path they cost the same, so also give
        # the time as if they were free (generous to GTG)
        v["wall_s_truncation_credited"] = None if v["sampling_s"] is None else round(
            setup + compile_s + v["sampling_s"] * float(np.mean(eval_frac)), 3)
    conv = [s for s in stops if s is not None]
    return {"setup_s": round(setup, 3), "compile_s": round(compile_s, 3), "ms_per_perm": round(1e3 * s_per_perm, 3),
            "batch": batch, "cap_perms": cap, "seeds": len(seeds), "measured": meas,
            "evaluated_fraction": round(float(np.mean(eval_frac)), 4),
            "own_stop": {"perms": _median([c[0] for c in conv]), "rel_err": _median([c[1] for c in conv]),
                         "stopped": f"{len(conv)}/{len(seeds)}"},
            "long_run": {"perms": t, "rel_err": round(rel(mean, truth), 5),
                         "bias_rel_l2": round(math.sqrt(bias) / float(np.linalg.norm(truth)), 5),
                         "mc_rel_se": round(math.sqrt(se2) / float(np.linalg.norm(truth)), 5)}}


# ------------------------------------------------------------------------------ slow baselines


def numpy_round(rg, path):
    from numpy_shapley import NumpyRound
    from shapley_bench import to_npz

    to_npz(rg, path)
    return NumpyRound(np.load(path))


def run_numpy_alg1(rnd, K, truth, *, time_cap, seed, measure_perms) -> dict:
    """Real NumPy Algorithm 1 run, tracking the error, until 2 % or ``time_cap`` seconds."""
    from miners.shapley import sample_permutations

    perms = np.asarray(sample_permutations(200_000 if time_cap > 0 else measure_perms, K, key=jax.random.key(seed)))
    t_start = time.perf_counter()
    hit, done = {}, [0]

    def cb(t, S):
        done[0] = t
        el = time.perf_counter() - t_start
        err = rel(S, truth)
        for x in TARGETS:
            if x not in hit and err <= x:
                hit[x] = (t, el)
        return len(hit) == len(TARGETS) or el > max(time_cap, 0) and t >= measure_perms

    rnd.alg1(perms, callback=cb)
    dt = time.perf_counter() - t_start
    return {"perms_run": done[0], "seconds": round(dt, 3), "ms_per_perm": round(1e3 * dt / done[0], 3),
            "hit": {f"{x:g}": {"perms": h[0], "wall_s": round(h[1], 3)} for x, h in hit.items()}}


def time_paper_alg1(rg, n) -> dict:
    from fedcoin.ml.utility import utility_jit
    from miners.shapley import paper_alg1

    K = rg.n_players
    u = lambda m: utility_jit(rg, jnp.asarray(m))  # noqa: E731
    t0 = time.perf_counter()
    u(np.ones(K, bool)).block_until_ready()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    paper_alg1(u, K, key=jax.random.key(1), n_iter=n)
    return {"ms_per_perm": round(1e3 * (time.perf_counter() - t0) / n, 3), "compile_s": round(compile_s, 3)}


def run_gtg_published(rnd, K, truth, *, time_cap, seed) -> dict:
    """GTG-Shapley's own loop: one utility call per evaluated coalition, re-aggregating the
    coalition's updates from scratch (NumPy: 4-5x faster per call than the jitted JAX utility on
    this CPU, so the stronger baseline)."""
    u = lambda m: rnd.utility(np.flatnonzero(m))  # noqa: E731
    t0 = time.perf_counter()
    u(np.ones(K, bool))
    compile_s = time.perf_counter() - t0
    hit = {}
    t_start = time.perf_counter()

    def cb(t, phi):
        err = rel(phi, truth)
        for x in TARGETS:
            if x not in hit and err <= x:
                hit[x] = (t, time.perf_counter() - t_start)

    res = gtg_shapley(u, K, key=jax.random.key(seed), max_perms=1_000_000, stop_when_converged=False,
                      deadline=time.time() + time_cap, callback=cb)
    dt = time.perf_counter() - t_start
    return {"compile_s": round(compile_s, 3), "perms_run": res.permutations, "evaluations": res.evaluations,
            "seconds": round(dt, 3), "ms_per_perm": round(1e3 * dt / max(res.permutations, 1), 3),
            "converged_at": res.converged_at, "final_rel_err": round(rel(res.phi, truth), 5),
            "hit": {f"{x:g}": {"perms": h[0], "wall_s": round(h[1] + compile_s, 3)} for x, h in hit.items()}}


def run_pydvl(path, n_perms, truth, bench_python) -> dict:
    if not os.path.exists(bench_python):
        return {"status": f"not run: {bench_python} missing (make .venv-bench/.installed)"}
    out = subprocess.run([bench_python, os.path.join(os.path.dirname(__file__), "pydvl_runner.py"), path,
                          str(n_perms), "0"], capture_output=True, text=True)
    if out.returncode != 0:
        return {"status": "failed: " + out.stderr.strip().splitlines()[-1]}
    r = json.loads(out.stdout)
    return {"perms": r["samples"], "seconds": round(r["seconds"], 3), "ms_per_perm": round(1e3 * r["seconds"] / r["samples"], 3),
            "rel_err": round(rel(np.asarray(r["phi"]), truth), 5), "pydvl_version": r["pydvl_version"]}


# ------------------------------------------------------------------------------ sections


def derived(perms_by_target: dict, ms_per_perm: float, extra_s: float = 0.0) -> dict:
    return {x: (None if p is None else {"perms": p, "wall_s": round(extra_s + p * ms_per_perm / 1e3, 3)})
            for x, p in perms_by_target.items()}


def perms_needed(row: dict) -> dict:
    """Permutations to each target: measured median if every seed reached it, else predicted."""
    out = {}
    for x in (f"{t:g}" for t in TARGETS):
        m = row["measured"][x]
        if m["perms"] is not None and m["reached"].split("/")[0] == m["reached"].split("/")[1]:
            out[x] = (m["perms"], "measured")
        elif "predicted" in row:
            out[x] = (row["predicted"][x]["perms"], "predicted")
        else:
            out[x] = (None, "not reached")
    return out


#: the rows of the light section (10,000 rows): the default, the previous default, and plain
#: sampling (which gives Algorithm 1's permutations)
LIGHT_VARIANTS = ("ours_default", "ours_linear_cv", "ours_plain")


def section(name, rg, truth, truth_info, args, common, *, light: bool = False) -> None:
    """One round's rows. ``light``: only :data:`LIGHT_VARIANTS` and the NumPy Algorithm 1 loop
    (timed on a few permutations), for the 10,000-row round where every other baseline would
    take hours per target; their 1,000-row rows show how they compare."""
    K = rg.n_players
    fk = {"row_chunk": 256, "perm_batch": 8}
    emit({"impl": "truth", "section": name, **common, **truth_info})
    rows = {}
    seeds = range(args.light_seeds if light else args.seeds)
    for label, sampler, cv in VARIANTS:
        if light and label not in LIGHT_VARIANTS:
            continue
        r = trace_ours(rg, truth, sampler=sampler, cv=cv, seeds=seeds, step_perms=args.step(K, sampler),
                       cap=args.cap[name], fl_kwargs=fk)
        rows[label] = r
        emit({"impl": label, "section": name, **common, "sampler": sampler, "control_variate": cv, **r})
    if not light:
        g = trace_gtg_fast(rg, truth, seeds=seeds, batch=args.gtg_batch(K), cap=args.cap[name],
                           long_perms=args.gtg_long[name], fl_kwargs=fk)
        rows["gtg_fast"] = g
        emit({"impl": "gtg_fast", "section": name, **common, "eps": 1e-3, **g})
    need_plain = perms_needed(rows["ours_plain"])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "round.npz")
        rnd = numpy_round(rg, path)
        na = run_numpy_alg1(rnd, K, truth, time_cap=args.real_cap[name], seed=3, measure_perms=args.slow_perms)
        if not light:
            paper = time_paper_alg1(rg, args.slow_perms)
            gp = run_gtg_published(rnd, K, truth, time_cap=args.gtg_cap[name], seed=4)
            pyd = run_pydvl(path, args.slow_perms, truth, args.bench_python)
            if args.pydvl_real[name] and "ms_per_perm" in pyd:
                # a real run to the plain estimator's 10% budget, if it fits in pydvl_cap seconds
                n = min(int(need_plain["0.1"][0] or 0), int(args.pydvl_cap * 1e3 / pyd["ms_per_perm"]))
                if n > args.slow_perms:
                    pyd = {**run_pydvl(path, n, truth, args.bench_python), "per_perm_probe": pyd}
    plain_p = {x: p for x, (p, _) in need_plain.items()}
    how_plain = {x: h for x, (_, h) in need_plain.items()}
    emit({"impl": "numpy_alg1", "section": name, **common, "real": na, "derived": derived(plain_p, na["ms_per_perm"]),
          "derived_from": "ours_plain (same estimator, same permutations)", "perms_how": how_plain})
    if not light:
        emit({"impl": "paper_alg1_jax", "section": name, **common, **paper,
              "derived": derived(plain_p, paper["ms_per_perm"], paper["compile_s"]), "perms_how": how_plain})
        if "ms_per_perm" in pyd:
            emit({"impl": "pydvl_permutation", "section": name, **common, "real": pyd,
                  "derived": derived(plain_p, pyd["ms_per_perm"]), "perms_how": how_plain,
                  "note": "pyDVL 0.10 ShapleyValuation + PermutationSampler (no truncation) = plain Monte-Carlo"})
        else:
            emit({"impl": "pydvl_permutation", "section": name, **common, **pyd})
        gtg_p = {x: g["measured"][x]["perms"] for x in (f"{t:g}" for t in TARGETS)}
        emit({"impl": "gtg_published", "section": name, **common, "real": gp,
              "derived": derived(gtg_p, gp["ms_per_perm"], gp["compile_s"]),
              "derived_from": "gtg_fast (same estimator); None: GTG never reached it (bias)"})
    # ratios at equal error: the default estimator's wall (setup + compile included) vs each
    ours = rows["ours_default"]
    need_ours = perms_needed(ours)
    out = {"impl": "ratios", "section": name, **common}
    for x in (f"{t:g}" for t in TARGETS):
        p, how = need_ours[x]
        if p is None:
            continue
        w = ours["measured"][x]["wall_s"] if how == "measured" else ours["predicted"][x]["wall_s"]
        r = {"ours_wall_s": w, "ours_how": how}
        bases = [("numpy_alg1", (na["hit"].get(x) or {}).get("wall_s") or (derived(plain_p, na["ms_per_perm"])[x] or {}).get("wall_s"),
                  "real" if x in na["hit"] else f"derived ({how_plain[x]} perms)")]
        if not light:
            bases += [
                ("paper_alg1_jax", (derived(plain_p, paper["ms_per_perm"], paper["compile_s"])[x] or {}).get("wall_s"),
                 f"derived ({how_plain[x]} perms)"),
                ("pydvl", (derived(plain_p, pyd.get("ms_per_perm", math.nan))[x] or {}).get("wall_s"),
                 f"derived ({how_plain[x]} perms)"),
                ("gtg_published", (gp["hit"].get(x) or {}).get("wall_s") or (derived(gtg_p, gp["ms_per_perm"], gp["compile_s"])[x] or {}).get("wall_s"),
                 "real" if x in gp["hit"] else "derived (gtg_fast perms)"),
                ("gtg_fast", g["measured"][x]["wall_s"], "measured"),
                ("gtg_fast_truncation_credited", g["measured"][x]["wall_s_truncation_credited"], "measured"),
            ]
        for base, wb, hb in bases:
            r[base] = None if wb is None or w is None or not math.isfinite(wb) else {
                "wall_s": wb, "x": round(wb / w, 1), "how": hb}
        out[x] = r
    emit(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small budgets (a smoke run, not figures)")
    ap.add_argument("--sections", default="exact,ref,ref10k",
                    help="exact (K=14, 1,000 rows), ref (K=100, 1,000 rows), ref10k (K=100, 10,000 rows, light)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ref-factor", type=int, default=20)
    ap.add_argument("--bench-python", default=BENCH_PY)
    args = ap.parse_args()
    q = args.quick
    args.cap = {"exact": 2_000 if q else 3_000, "ref": 200 if q else 600, "ref10k": 50 if q else 150}
    args.light_seeds = 1
    args.gtg_long = {"exact": 2_000 if q else 10_000, "ref": 400 if q else 3_000}
    args.real_cap = {"exact": 10 if q else 60, "ref": 0, "ref10k": 0}
    args.gtg_cap = {"exact": 10 if q else 60, "ref": 10 if q else 60}
    args.pydvl_real = {"exact": True, "ref": False}
    args.slow_perms = 2
    args.pydvl_cap = 15 if q else 90
    args.step = lambda K, s: 4 * K if K <= 20 else 2 * K if s.endswith("stratified") else 50  # noqa: E731
    args.gtg_batch = lambda K: 50  # noqa: E731
    from fl_rounds import mnist_round

    d = jax.devices()[0]
    common0 = {"backend": d.platform, "device": getattr(d, "device_kind", str(d))}
    emit({"impl": "meta", "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
          "python": platform.python_version(), "jax": jax.__version__, "machine": platform.machine(),
          "nproc": os.cpu_count(), "jax_devices": len(jax.devices()), **common0,
          "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)})
    t_all = time.perf_counter()
    if "exact" in args.sections:
        K = 8 if q else 14
        rg = mnist_round(K, 1000)
        t0 = time.perf_counter()
        cache = os.path.join(tempfile.gettempdir(), f"fedcoin_tta_exact_K{K}_n1000.npy")  # same round every run
        if os.path.exists(cache):
            truth = np.load(cache)
        else:
            truth = exact_shapley(fl_game(rg, coalition_batch=512), batch_size=4096)
            np.save(cache, truth)
        section("exact", rg, truth, {"K": K, "n_val": 1000, "truth": "exact", "coalitions": 1 << K,
                                     "seconds": round(time.perf_counter() - t0, 1),
                                     "norm2_phi": float(np.linalg.norm(truth))}, args,
                {**common0, "K": K, "n_val": 1000, "model": rg.arch.id})
    for name, n_val in (("ref", 1000), ("ref10k", 10_000)):
        if name not in args.sections.split(","):
            continue
        K = 100
        rg = mnist_round(K, n_val)
        n_ref = args.ref_factor * args.cap[name]
        t0 = time.perf_counter()
        game = fl_game(rg, control_variate=VARIANTS[0][2])
        state = init_state(K, offset=game.offset)
        key = jax.random.key(123_456)
        while int(state.n_perms) < n_ref:
            key, sub = jax.random.split(key)
            state = step(game, state, key=sub, n_perms=min(2000, n_ref), sampler=VARIANTS[0][1])
        del game
        est = estimate(state, p=2, confidence=0.95)
        truth = est.phi
        section(name, rg, truth, {"K": K, "n_val": n_val, "truth": "reference: default estimator",
                                  "ref_perms": est.iterations, "seconds": round(time.perf_counter() - t0, 1),
                                  "err2_bound_95": est.err_p, "rel_err_bound_95": round(est.err_p / np.linalg.norm(truth), 5),
                                  "norm2_phi": float(np.linalg.norm(truth)),
                                  "largest_budget_measured": args.cap[name]}, args,
                {**common0, "K": K, "n_val": n_val, "model": rg.arch.id}, light=name == "ref10k")
    emit({"impl": "meta_end", "total_s": round(time.perf_counter() - t_all, 1)})


if __name__ == "__main__":
    main()
