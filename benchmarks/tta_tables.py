"""Markdown tables from ``tta_bench.py`` / ``scaling_bench.py`` output.

Usage: ``.venv/bin/python benchmarks/tta_tables.py benchmarks/results/tta_cpu.jsonl [scaling.jsonl]``.
In a time-to-accuracy cell, ``wall s (perms)``: wall time to the target with the round's setup and
the compile included, and the permutations. Marks: none = measured here (median over seeds),
``p`` = predicted from the estimator's own variance (unbiased estimators only), ``d`` = derived
(the baseline's own measured time per permutation × the permutations its numerically identical
estimator needed on the fast evaluator), ``—`` = not reached. GTG is biased, so it is only
predicted (from its long run's Monte-Carlo error) where its measured bias is below half the target.
"""

from __future__ import annotations

import json
import sys

TARGETS = ("0.1", "0.05", "0.02")
NAMES = {
    "ours_default": "**ours, default** (pairwise control variate, plain sampler)",
    "ours_pairwise_as": "ours, pairwise control variate + antithetic-stratified",
    "ours_linear_cv": "ours, linear control variate + antithetic-stratified (the previous default)",
    "ours_linear_cv_plain": "ours, linear control variate + plain",
    "ours_cv_plain": "ours, control variate + plain",
    "ours_antithetic_stratified": "ours, antithetic-stratified",
    "ours_stratified": "ours, stratified",
    "ours_antithetic": "ours, antithetic",
    "ours_plain": "ours, plain (= Algorithm 1's estimator)",
    "gtg_fast": "GTG-Shapley on our fast evaluator",
    "gtg_published": "GTG-Shapley as published (per-evaluation loop, NumPy utility)",
    "numpy_alg1": "paper's Algorithm 1, NumPy loop",
    "paper_alg1_jax": "paper's Algorithm 1, JAX per-evaluation loop",
    "pydvl_permutation": "pyDVL 0.10 permutation Monte-Carlo",
}


def cell(wall, perms, mark="") -> str:
    if wall is None:
        return "—"
    p = f"{perms:,.0f}" if perms is not None else "?"
    return f"{wall:,.1f} s ({p}){' ' + mark if mark else ''}"


def gtg_predicted(row, x):
    """GTG's permutations for target x from its long run's Monte-Carlo error, where its bias is
    below x/2 (else None: it may never get there)."""
    lr = row["long_run"]
    if lr["bias_rel_l2"] >= float(x) / 2:
        return None
    return lr["perms"] * (lr["mc_rel_se"] / float(x)) ** 2


def fast_cell(row, x):
    m = row["measured"][x]
    n, d = (int(v) for v in m["reached"].split("/"))
    if m["wall_s"] is not None and n == d:
        return cell(m["wall_s"], m["perms"])
    if "predicted" in row and row["predicted"][x]["perms"]:  # 0: one block, no variance estimate
        p = row["predicted"][x]
        return cell(p["wall_s"], p["perms"], "p")
    if "long_run" in row and gtg_predicted(row, x) is not None:
        perms = gtg_predicted(row, x)
        return cell(row["setup_s"] + row["compile_s"] + perms * row["ms_per_perm"] / 1e3, perms, "p")
    return "—"


def tta_table(lines, section):
    rows = {d["impl"]: d for d in lines if d.get("section") == section}
    out = ["| estimator | ms/perm | 10 % | 5 % | 2 % |", "| --- | ---: | ---: | ---: | ---: |"]
    for impl in ("ours_default", "ours_pairwise_as", "ours_linear_cv", "ours_linear_cv_plain", "ours_cv_plain", "ours_antithetic_stratified", "ours_stratified", "ours_antithetic",
                 "ours_plain", "gtg_fast"):
        if impl in rows:
            r = rows[impl]
            out.append(f"| {NAMES[impl]} | {r['ms_per_perm']:.1f} | " + " | ".join(fast_cell(r, x) for x in TARGETS) + " |")
    for impl in ("gtg_published", "numpy_alg1", "paper_alg1_jax", "pydvl_permutation"):
        if impl not in rows or "derived" not in rows[impl]:
            continue
        r = rows[impl]
        real = r.get("real", {})
        ms = real.get("ms_per_perm", r.get("ms_per_perm"))
        cells = []
        for x in TARGETS:
            hit = (real.get("hit") or {}).get(x)
            if hit:
                cells.append(cell(hit["wall_s"], hit["perms"]))
            elif r["derived"].get(x):
                cells.append(cell(r["derived"][x]["wall_s"], r["derived"][x]["perms"], "d"))
            elif impl == "gtg_published" and "gtg_fast" in rows and gtg_predicted(rows["gtg_fast"], x):
                perms = gtg_predicted(rows["gtg_fast"], x)
                cells.append(cell(real["compile_s"] + perms * ms / 1e3, perms, "d, p"))
            else:
                cells.append("—")
        out.append(f"| {NAMES[impl]} | {ms:,.1f} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _gtg_ratio(rows, base, x, ours_wall):
    """GTG's ratio from its predicted permutations (``gtg_predicted``) where no run reached x."""
    g = rows.get("gtg_fast")
    perms = gtg_predicted(g, x) if g and "long_run" in g else None
    if perms is None or base not in rows:
        return None
    if base == "gtg_fast":
        wall = g["setup_s"] + g["compile_s"] + perms * g["ms_per_perm"] / 1e3
    else:
        real = rows[base].get("real", {})
        wall = real["compile_s"] + perms * real["ms_per_perm"] / 1e3
    return {"x": wall / ours_wall, "how": "p" if base == "gtg_fast" else "d, p"}


def ratio_table(lines, section):
    r = next((d for d in lines if d.get("impl") == "ratios" and d.get("section") == section), None)
    if r is None:
        return ""
    bases = ("numpy_alg1", "paper_alg1_jax", "pydvl", "gtg_published", "gtg_fast", "gtg_fast_truncation_credited")
    out = ["| target | ours (wall s) | " + " | ".join(bases) + " |", "| --- | ---: |" + " ---: |" * len(bases)]
    rows = {d["impl"]: d for d in lines if d.get("section") == section}
    for x in TARGETS:
        if x not in r:
            continue
        c = r[x]
        cells = []
        for b in bases:
            v = c.get(b)
            if v is None and b in ("gtg_fast", "gtg_published"):
                v = _gtg_ratio(rows, b, x, c["ours_wall_s"])
            mark = "" if v is None or v["how"] in ("real", "measured") else " d" if v["how"].startswith("derived") else " " + v["how"]
            cells.append("—" if v is None else f"{v['x']:,.0f}×{mark}")
        out.append(f"| {float(x):.0%} | {c['ours_wall_s']:.1f}{'' if c['ours_how'] == 'measured' else ' p'} | "
                   + " | ".join(cells) + " |")
    return "\n".join(out)


def scaling_table(lines):
    out = ["| K | rows | sampler | ms/perm | perms to ½·D | wall to ½·D (s) | + setup, compile (s) | peak RSS (GiB) | D table (GiB) | load |",
           "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for d in lines:
        if d.get("impl") != "scaling":
            continue
        if "status" in d:
            out.append(f"| {d['K']} | | | {d['status']} | | | | | | |")
            continue
        out.append(f"| {d['K']:,} | {d['n_val']:,} | {d['sampler']} + {'linear' if d.get('control_variate', True) is True else d['control_variate']} CV | {d['ms_per_perm']:,.1f} | {d['perms_to_half_D']:,} | "
                   f"{d['wall_to_half_D_s']:.1f} | {d['wall_incl_setup_compile_s']:.1f} | {d['peak_rss_gib']:.2f} | "
                   f"{d['preactivation_table_gib']:.2f} | {d['load_before'][0]}–{d['load_after'][0]} |")
    return "\n".join(out)


def main() -> None:
    lines = [json.loads(l) for l in open(sys.argv[1])]
    for section in ("exact", "ref"):
        truth = next((d for d in lines if d.get("impl") == "truth" and d.get("section") == section), None)
        if truth is None:
            continue
        print(f"### {section}: K = {truth['K']}, {truth['n_val']} rows, truth: {truth['truth']}\n")
        print(tta_table(lines, section) + "\n")
        print(ratio_table(lines, section) + "\n")
    if len(sys.argv) > 2:
        print(scaling_table([json.loads(l) for l in open(sys.argv[2])]))


if __name__ == "__main__":
    main()
