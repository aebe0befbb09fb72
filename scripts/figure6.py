"""Reproduce Figure 6 of the FedCoin paper: PoSap block generation time against difficulty D.

Run it with ``.venv/bin/python scripts/figure6.py`` (no chain, no network). It writes
``docs/figures/figure6.csv`` (one row per estimator and D), ``docs/figures/figure6_trials.csv``
(one row per estimator, D and trial) and ``docs/figures/figure6.png``.

The round: MNIST, K = 10 quality-typed clients (one per type, T0 … T9, so exact Shapley values
are computable: 2^10 coalitions), 500 samples each, MLP 784-200-10, the FL server's training
(weighted FedAvg, 20 local SGD steps of batch 50 at lr 0.1, keys as ``FLServer``), and the
utility of round ``--round`` (default 3) on the first 1 000 validation rows, metric negative
cross-entropy — exactly a task spec's game.

Block generation time, the PoSap rule of the paper (``fedcoin.protocol.paper_rule``, an off-chain
simulation: the contract now ships the robust rule of ``fedcoin.protocol.posap``): M miners
(``--miners``, independent PRNG keys, the same hardware, so they advance in lockstep) sample
permutations of the same round. After every ``--check-every`` permutations each miner has a
running estimate S_i after t iterations; the consensus is the iteration-weighted mean
S̄ = Σ t_i S_i / Σ t_i of all miners' current estimates (Algorithm 1, line 16), and a miner
qualifies when Σ_k (S_ik − S̄_k)² ≤ D² (p = 2, the contract's comparison without a square
root). The block is found at the first t at which some miner qualifies; that miner is the
winner (ties: the lowest index, i.e. the earliest commitment), and t — the winner's iteration
count — is the block time. Not found by ``--cap`` iterations: reported as capped.

A capped point also gets ``projected_iterations`` = cap · (d_cap / D)², d_cap the closest
miner's distance to the consensus at the cap: for unbiased estimators that distance shrinks as
c/√t, so this is the iteration count the block would need — an extrapolation, labelled as such.

Side by side, the robust rule the contract ships (``robust_found``, ``robust_iterations``): the
consensus is the per-coordinate stake-weighted lower median of the miners' estimates (equal
stakes here) and a miner qualifies when its distance to it is ≤ D; the block is found at the first
check where some miner qualifies (the rule does not depend on the order of commitment).

Why this rule and not the engine's error bound: the paper's block time is when miners *agree*
within D, which is what the contract checks. Next to it we report the iterations at which the
first miner's own 95 % bound on ‖Ŝ − φ‖₂ falls to D/2 (the stopping rule ``fedcoin`` miners use,
``run_until(D=D/2)``), and — the point of the figure — the relative L2 error of the winner's
vector against the EXACT Shapley values, because agreement between miners is not accuracy.

Two estimators, both unbiased: ``alg1`` is the paper's Algorithm 1 (uniform permutations, plain
mean of marginals; identical to ``paper_alg1`` on the same keys, computed on the fast path), and
``miner`` is our miner's default (control variate + antithetic-stratified blocks of 2K).

Paper-scale run (``docs/figures.md``): ``--miners 5 --cap 10000 --trials 5``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: estimator name → (sampler, control variate)
ESTIMATORS = {"alg1": ("plain", False), "miner": ("antithetic_stratified", True)}
DEFAULT_DS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)


def round_game(splits, *, clients: int = 10, samples: int = 500, round: int = 3, seed: int = 0,
               val_size: int = 1000, arch_id: str | None = None, lr: float = 0.1, local_steps: int = 20,
               batch_size: int = 50):
    """The ``round``-th (1-based) round's :class:`fedcoin.ml.utility.RoundGame`, trained as the FL
    server trains (partition, w_0 and round keys from ``seed``)."""
    import jax

    from fedcoin.ml.models import Arch
    from fedcoin.ml.utility import RoundGame
    from fedcoin.ml import fedavg as fedavg_rule
    from fl_server.fedavg import ClientBatch, FedAvg
    from fl_server.partition import partition

    arch = Arch.parse(arch_id or f"mlp-{splits.num_features}-200-{splits.num_classes}")
    part = partition(splits.train, num_clients=clients, samples_per_client=samples,
                     num_classes=splits.num_classes, seed=seed)
    batch = ClientBatch.from_clients(part.clients)
    strategy = FedAvg(arch, lr=lr, local_steps=local_steps, batch_size=batch_size)
    val = splits.val if not val_size else splits.val.take(val_size)
    train_key = jax.random.key(seed)  # the server's key schedule (fedcoin.ml.fedavg)
    w = strategy.initialize(key=fedavg_rule.init_key(train_key))
    for rnd in range(round):
        deltas = strategy.fit(rnd, w, batch, key=fedavg_rule.round_key(train_key, rnd))
        if rnd + 1 == round:
            break
        w = strategy.aggregate_fit(rnd, w, deltas, batch.n)
    rg = RoundGame.create(arch, w, deltas, batch.n, val.x, val.y, aggregation=strategy.rule,
                          metric="neg_cross_entropy")
    return rg, [int(c.type) for c in part.clients]


def simulate_posap(game, exact, *, key, Ds=DEFAULT_DS, miners: int = 3, cap: int = 5000,
                   check_every: int = 20, sampler: str = "antithetic_stratified") -> list[dict]:
    """Race ``miners`` lockstep miners on ``game`` and record, for each D, when a block is found.

    Args:
        game: a :class:`miners.shapley.Game` (with ``offset`` for a control variate).
        exact: ``[K]`` exact Shapley values (for the error columns only; miners never see it).
        key: PRNG key, split into one independent key per miner.
        Ds: difficulties (p = 2).
        miners: M >= 2 (with one miner the consensus is its own vector: distance 0).
        cap: most permutations per miner.
        check_every: permutations between two checks (rounded up to whole blocks).

    Returns:
        One dict per D: ``D, found, iterations`` (the winner's, = ``cap`` when not found),
        ``winner``, ``dist_to_consensus``, ``winner_rel_l2``, ``consensus_rel_l2`` (errors against
        ``exact`` at the block, or at the cap when not found), ``bound_iterations`` (first t with
        some miner's 95 % bound ≤ D/2, ``None`` if never by the cap), ``bound_rel_l2``.
    """
    import jax
    import numpy as np

    from miners.shapley import estimate, init_state, step
    from miners.shapley.sampling import block_size

    if miners < 2:
        raise ValueError("PoSap needs at least 2 miners (one miner is always its own consensus)")
    exact = np.asarray(exact, np.float64)
    norm = float(np.linalg.norm(exact)) or 1.0
    bs = block_size(sampler, game.n_players)
    per = bs * max(1, -(-check_every // bs))
    keys = list(jax.random.split(key, miners))
    states = [init_state(game.n_players, offset=game.offset) for _ in range(miners)]
    out = {D: None for D in Ds}
    robust = {D: None for D in Ds}
    bound = {D: None for D in Ds}
    t = 0
    ests = None
    while t < cap and (any(v is None for v in out.values()) or any(v is None for v in bound.values())
                       or any(v is None for v in robust.values())):
        for i in range(miners):
            keys[i], sub = jax.random.split(keys[i])
            states[i] = step(game, states[i], key=sub, n_perms=per, sampler=sampler)
        ests = [estimate(s, p=2, confidence=0.95) for s in states]
        t = ests[0].iterations
        S = np.stack([e.phi for e in ests])
        w = np.array([e.iterations for e in ests], np.float64)
        mean = (w[:, None] * S).sum(0) / w.sum()
        d2 = ((S - mean[None]) ** 2).sum(1)
        # the robust rule: lower median per coordinate (equal stakes: the ceil(M/2)-th smallest)
        centre = np.sort(S, axis=0)[(miners - 1) // 2]
        r2 = ((S - centre[None]) ** 2).sum(1)
        for D in Ds:
            if robust[D] is None and (r2 <= D * D).any():
                robust[D] = t
            if out[D] is None:
                ok = np.flatnonzero(d2 <= D * D)
                if ok.size:
                    i = int(ok[0])
                    out[D] = dict(D=D, found=True, iterations=ests[i].iterations, winner=i,
                                  dist_to_consensus=float(math.sqrt(d2[i])),
                                  winner_rel_l2=float(np.linalg.norm(S[i] - exact) / norm),
                                  consensus_rel_l2=float(np.linalg.norm(mean - exact) / norm))
            if bound[D] is None:
                errs = np.array([e.err_p for e in ests])
                ok = np.flatnonzero(errs <= D / 2)
                if ok.size:
                    i = int(ok[0])
                    bound[D] = (ests[i].iterations, float(np.linalg.norm(S[i] - exact) / norm))
    rows = []
    for D in Ds:
        r = out[D]
        if r is None:  # capped: errors of the miner closest to consensus at the cap
            S = np.stack([e.phi for e in ests])
            w = np.array([e.iterations for e in ests], np.float64)
            mean = (w[:, None] * S).sum(0) / w.sum()
            d2 = ((S - mean[None]) ** 2).sum(1)
            i = int(np.argmin(d2))
            r = dict(D=D, found=False, iterations=t, winner=i, dist_to_consensus=float(math.sqrt(d2[i])),
                     winner_rel_l2=float(np.linalg.norm(S[i] - exact) / norm),
                     consensus_rel_l2=float(np.linalg.norm(mean - exact) / norm))
        # Unbiased estimators: miners' distance to the consensus shrinks as c/sqrt(t), so a
        # capped point needs about t_cap·(d_cap/D)² iterations (an extrapolation, marked as one).
        r["projected_iterations"] = (float(r["iterations"]) if r["found"]
                                     else float(t * (r["dist_to_consensus"] / D) ** 2))
        r["robust_found"] = robust[D] is not None
        r["robust_iterations"] = robust[D] if robust[D] is not None else t
        b = bound[D]
        r["bound_iterations"] = None if b is None else b[0]
        r["bound_rel_l2"] = None if b is None else b[1]
        rows.append(r)
    return rows


def block_times(rg, *, estimators=("alg1", "miner"), Ds=DEFAULT_DS, miners: int = 3, cap: int = 5000,
                trials: int = 2, check_every: int = 20, seed: int = 0, log=print) -> dict:
    """Exact values of ``rg`` and :func:`simulate_posap` per estimator and trial.

    Returns:
        ``{"exact": [K] list, "v_all": float, "trials": [rows], "summary": [rows]}``; a summary
        row per (estimator, D) with the median / min / max block iterations over trials, the
        number of capped trials, and the median rel-L2 errors.
    """
    import jax
    import numpy as np

    from miners.shapley import exact_shapley, fl_game

    base = fl_game(rg)
    exact = exact_shapley(base)
    trial_rows = []
    for name in estimators:
        sampler, cv = ESTIMATORS[name]
        game = fl_game(rg, control_variate=True) if cv else base
        for trial in range(trials):
            t0 = time.perf_counter()
            key = jax.random.fold_in(jax.random.key(seed + 7919), 1000 * trial + (1 if cv else 0))
            rows = simulate_posap(game, exact, key=key, Ds=Ds, miners=miners, cap=cap,
                                  check_every=check_every, sampler=sampler)
            for r in rows:
                trial_rows.append({"estimator": name, "trial": trial, **r})
            log(f"{name:>5} trial {trial}: " + ", ".join(
                f"D={r['D']:g}: {r['iterations']}{'' if r['found'] else '+ (capped)'}" for r in rows)
                + f" ({time.perf_counter() - t0:.0f}s)")
    summary = []
    for name in estimators:
        for D in Ds:
            rs = [r for r in trial_rows if r["estimator"] == name and r["D"] == D]
            its = np.array([r["iterations"] for r in rs], np.float64)
            bits = [r["bound_iterations"] for r in rs]
            summary.append({
                "estimator": name, "D": D, "neg_log10_D": -math.log10(D), "miners": miners, "trials": len(rs),
                "capped": sum(not r["found"] for r in rs), "cap": cap,
                "iterations_median": float(np.median(its)), "iterations_min": float(its.min()),
                "iterations_max": float(its.max()),
                "projected_iterations_median": float(np.median([r["projected_iterations"] for r in rs])),
                "winner_rel_l2_median": float(np.median([r["winner_rel_l2"] for r in rs])),
                "consensus_rel_l2_median": float(np.median([r["consensus_rel_l2"] for r in rs])),
                "bound_iterations_median": (float(np.median(bits)) if all(b is not None for b in bits) else None),
                "bound_capped": sum(b is None for b in bits),
                # the robust rule (lower-median centre), the contract's, on the same estimates
                "robust_iterations_median": float(np.median([r["robust_iterations"] for r in rs])),
                "robust_capped": sum(not r["robust_found"] for r in rs),
            })
    return {"exact": [float(v) for v in exact], "v_all": float(np.sum(exact)), "trials": trial_rows,
            "summary": summary}


def _fmt(v):
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else v


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(v) for k, v in r.items()})


def main(argv: list[str] | None = None) -> int:
    from fl_server.data import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", help="mnist | digits | idx:DIR | npz:FILE")
    ap.add_argument("--clients", type=int, default=10, help="K (exact Shapley needs 2^K coalitions)")
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--round", type=int, default=3, help="1-based FedAvg round whose game is mined")
    ap.add_argument("--val-size", type=int, default=1000)
    ap.add_argument("--miners", type=int, default=3)
    ap.add_argument("--cap", type=int, default=5000, help="most permutations per miner")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--check-every", type=int, default=20, help="permutations between consensus checks")
    ap.add_argument("--estimators", default="alg1,miner", help="comma list of " + ",".join(ESTIMATORS))
    ap.add_argument("--D", default=",".join(f"{d:g}" for d in DEFAULT_DS), help="difficulties, comma list")
    ap.add_argument("--arch", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    splits = load_dataset(args.data)
    rg, types = round_game(splits, clients=args.clients, samples=args.samples, round=args.round, seed=args.seed,
                           val_size=args.val_size, arch_id=args.arch)
    Ds = tuple(float(d) for d in args.D.split(","))
    res = block_times(rg, estimators=tuple(args.estimators.split(",")), Ds=Ds, miners=args.miners, cap=args.cap,
                      trials=args.trials, check_every=args.check_every, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    _write_csv(args.out / "figure6.csv", res["summary"])
    _write_csv(args.out / "figure6_trials.csv", res["trials"])
    _plot(res, args, rg.arch.id, types, args.out / "figure6.png")
    print("exact φ (types " + " ".join(f"T{t}" for t in types) + "): "
          + " ".join(f"{v:+.4f}" for v in res["exact"]) + f"; v(all) = {res['v_all']:+.5f}")
    print(f"{'est':>5} {'D':>7} {'iters':>8} {'capped':>6} {'projected':>10} {'winner relL2':>12} {'bound iters':>11}")
    for r in res["summary"]:
        print(f"{r['estimator']:>5} {r['D']:7.0e} {r['iterations_median']:8.0f} {r['capped']:>3}/{r['trials']:<2} "
              f"{r['projected_iterations_median']:10.3g} {r['winner_rel_l2_median']:12.4f} "
              f"{_fmt(r['bound_iterations_median']) or 'capped':>11}")
    print(f"wrote {args.out / 'figure6.csv'} and {args.out / 'figure6.png'} in {time.perf_counter() - t0:.0f}s")
    return 0


def _plot(res: dict, args, arch_id: str, types, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    style = {"alg1": dict(color="tab:blue", marker="o", label="Algorithm 1 (plain permutations)"),
             "miner": dict(color="tab:orange", marker="s", label="our miner (CV + antithetic-stratified)")}
    for name in dict.fromkeys(r["estimator"] for r in res["summary"]):
        rows = [r for r in res["summary"] if r["estimator"] == name]
        x = [r["neg_log10_D"] for r in rows]
        y = [r["iterations_median"] for r in rows]
        lo = [r["iterations_median"] - r["iterations_min"] for r in rows]
        hi = [r["iterations_max"] - r["iterations_median"] for r in rows]
        st = style.get(name, dict(marker="o", label=name))
        a.errorbar(x, y, yerr=[lo, hi], capsize=3, **st)
        for r in rows:
            if r["capped"]:
                a.annotate(f"capped {r['capped']}/{r['trials']}", (r["neg_log10_D"], r["iterations_median"]),
                           textcoords="offset points", xytext=(-30, 8), fontsize=7, color=st.get("color"))
        if any(r["capped"] for r in rows):
            a.plot(x, [r["projected_iterations_median"] for r in rows], ls="--", marker=st["marker"], mfc="none",
                   color=st.get("color"), alpha=0.6, label=f"{name}: projected past the cap (∝ 1/D²)")
        bx = [r["neg_log10_D"] for r in rows if r["bound_iterations_median"] is not None]
        by = [r["bound_iterations_median"] for r in rows if r["bound_iterations_median"] is not None]
        if bx:
            a.plot(bx, by, ls=":", marker=st["marker"], mfc="none", color=st.get("color"),
                   label=f"{name}: own 95% bound ≤ D/2")
        b.plot(x, [r["winner_rel_l2_median"] for r in rows], **{**st, "label": f"{name}: winner"})
        b.plot(x, [r["consensus_rel_l2_median"] for r in rows], ls="--", marker=st["marker"], mfc="none",
               color=st.get("color"), label=f"{name}: consensus S̄")
    a.axhline(args.cap, color="gray", lw=0.8, ls="--")
    a.set_yscale("log")
    a.set_xlabel("−log10 D  (p = 2)")
    a.set_ylabel("block time: winner's iterations (permutations)")
    a.set_title(f"Figure 6 (reproduction): PoSap block time, M={args.miners} miners\n"
                f"median over {args.trials} trials, bars min–max; dashed: cap {args.cap}")
    a.legend(fontsize=7)
    b.set_yscale("log")
    b.set_xlabel("−log10 D  (p = 2)")
    b.set_ylabel("‖S − φ_exact‖₂ / ‖φ_exact‖₂ at the block")
    b.set_title("accuracy against EXACT Shapley values (median over trials)")
    b.legend(fontsize=7)
    fig.suptitle(f"{args.data}, {arch_id}, K={args.clients} (types {'/'.join(f'T{t}' for t in types)}), "
                 f"round {args.round}, ‖φ‖₂ = {sum(v * v for v in res['exact']) ** 0.5:.4f}, seed {args.seed}",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
