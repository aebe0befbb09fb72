"""Reproduce Figure 4 of the FedCoin paper: the mean Shapley value S̄ of each client type.

Run it with ``.venv/bin/python scripts/figure4.py`` (no chain, no network). It writes
``docs/figures/figure4.csv`` (one row per type), ``docs/figures/figure4_clients.csv`` (one row
per client and valued round) and ``docs/figures/figure4.png``.

What it does, round by round, exactly as the FL server and a miner would:

1. The FL server's setup (``fl_server.server.FLServer``): MNIST, K = 100 quality-typed clients
   (10 per type, T0 … T9; Tj holds 10 − j labels), 500 samples each, MLP 784-200-10, FedAvg
   weighted by n_k, 20 local SGD steps of batch 50 at lr 0.1; w_0 and round r's local training
   keys from the server's schedule (``fedcoin.ml.fedavg.init_key`` / ``round_key``); the validation set of
   the utility is the first 1 000 validation rows. So round r here is the round the server
   would publish as round r − 1 on-chain.
2. In each valued round the utility is the spec's: v(C) = m(A(w_t, Δ_C)) − m(w_t) with m the
   negative validation cross-entropy, and every client's Shapley value is estimated with the
   miner's engine (``fl_game(..., control_variate=True)``, ``antithetic_stratified`` blocks of
   2K permutations, ``--perms`` permutations). The 95 % p = 2 error bound of the estimate is
   recorded next to it (``err2_round``), and every client's standard error.
3. Per type, the values of its 10 clients in every valued round are pooled: mean, standard
   deviation (the error bar), and per-round means.

Paper-scale run (``docs/figures.md`` says what was run): ``--rounds-valued 1-10 --perms 4000``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_rounds(text: str) -> list[int]:
    """``"1,3,5"`` or ``"1-10"`` or ``"1-4,8"`` → sorted distinct 1-based round numbers."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = (int(s) for s in part.split("-", 1))
            out.update(range(a, b + 1))
        else:
            out.add(int(part))
    if not out or min(out) < 1:
        raise ValueError(f"rounds must be 1-based round numbers, got {text!r}")
    return sorted(out)


def shapley_by_type(
    splits,
    *,
    clients: int = 100,
    samples: int = 500,
    valued_rounds: list[int] = (1, 3, 5),
    perms: int = 1000,
    perms_per_step: int = 200,
    seed: int = 0,
    val_size: int = 1000,
    arch_id: str | None = None,
    lr: float = 0.1,
    local_steps: int = 20,
    batch_size: int = 50,
    log=print,
) -> dict:
    """Train FedAvg as the FL server does and value every client in the chosen rounds.

    Args:
        splits: a :class:`fl_server.data.Splits` (``load_dataset("mnist")``).
        clients: K (types assigned in blocks, ``type = k·10 // K``).
        samples: samples per client.
        valued_rounds: 1-based rounds whose Shapley values are estimated (training runs up to
            the last of them).
        perms: permutations per valued round (rounded up to blocks of 2K).
        seed: seeds the partition, w_0, local training and the Monte-Carlo keys.
        val_size: rows of the validation set in the utility (0 = all), as the server's
            ``--val-size``.

    Returns:
        ``{"types": [row per type], "clients": [row per client and round], "rounds": [row per
        valued round], "arch": id}``; values are floats (neg-cross-entropy units).
    """
    import jax
    import numpy as np

    from fedcoin.ml.models import Arch
    from fedcoin.ml.utility import RoundGame
    from fedcoin.ml import fedavg as fedavg_rule
    from fl_server.fedavg import ClientBatch, FedAvg
    from fl_server.partition import NUM_TYPES, partition
    from miners.shapley import fl_game, run_until, standard_error

    arch = Arch.parse(arch_id or f"mlp-{splits.num_features}-200-{splits.num_classes}")
    part = partition(splits.train, num_clients=clients, samples_per_client=samples,
                     num_classes=splits.num_classes, seed=seed)
    batch = ClientBatch.from_clients(part.clients)
    types = np.array([c.type for c in part.clients])
    strategy = FedAvg(arch, lr=lr, local_steps=local_steps, batch_size=batch_size)
    val = splits.val if not val_size else splits.val.take(val_size)
    train_key = jax.random.key(seed)  # the server's key schedule (fedcoin.ml.fedavg)
    k_mc = jax.random.key(seed + 1_000_003)
    w = strategy.initialize(key=fedavg_rule.init_key(train_key))

    valued = sorted(set(valued_rounds))
    client_rows, round_rows = [], []
    per_type: dict[int, list[float]] = {j: [] for j in range(NUM_TYPES)}
    per_type_se: dict[int, list[float]] = {j: [] for j in range(NUM_TYPES)}
    per_type_round: dict[tuple[int, int], float] = {}
    for rnd in range(max(valued)):  # rnd is 0-based; the paper's / our round number is rnd + 1
        deltas = strategy.fit(rnd, w, batch, key=fedavg_rule.round_key(train_key, rnd))
        r1 = rnd + 1
        if r1 in valued:
            t0 = time.perf_counter()
            before = strategy.evaluate(rnd, w, val)
            rg = RoundGame.create(arch, w, deltas, batch.n, val.x, val.y,
                                  aggregation=strategy.rule, metric="neg_cross_entropy")
            game = fl_game(rg, control_variate=True)
            res = run_until(game, key=jax.random.fold_in(k_mc, rnd), D=0.0, p=2, confidence=0.95,
                            max_perms=perms, perms_per_step=perms_per_step, sampler="antithetic_stratified")
            phi = np.asarray(res.phi, np.float64)
            se = standard_error(res.state)
            dt = time.perf_counter() - t0
            round_rows.append({
                "round": r1, "val_loss_before": before["loss"], "val_accuracy_before": before["accuracy"],
                "v_all": float(phi.sum()), "norm2_phi": float(np.linalg.norm(phi)),
                "err2_bound_95": res.err_p, "max_se": float(se.max()), "permutations": res.iterations,
                "seconds": dt,
            })
            for k, c in enumerate(part.clients):
                client_rows.append({"round": r1, "client": k, "type": int(c.type), "labels": len(c.labels),
                                    "shapley": float(phi[k]), "std_error": float(se[k])})
            for j in range(NUM_TYPES):
                sel = phi[types == j]
                if sel.size:
                    per_type[j].extend(sel.tolist())
                    per_type_se[j].extend(se[types == j].tolist())
                    per_type_round[(j, r1)] = float(sel.mean())
            log(f"round {r1:2d}: val loss {before['loss']:.4f} acc {before['accuracy']:.3f} before; "
                f"{res.iterations} permutations, v(all) = {phi.sum():+.5f}, ‖φ‖₂ = {np.linalg.norm(phi):.5f}, "
                f"95% bound ‖φ̂ − φ‖₂ ≤ {res.err_p:.5f}, max SE {se.max():.5f} ({dt:.0f}s)")
        w = strategy.aggregate_fit(rnd, w, deltas, batch.n)

    type_rows = []
    for j in range(NUM_TYPES):
        vals = np.asarray(per_type[j])
        if not vals.size:
            continue
        n_cl = int(np.sum(types == j))
        row = {
            "type": f"T{j}", "labels_per_client": splits.num_classes - j, "clients": n_cl,
            "rounds": len(valued), "n_values": int(vals.size), "mean_shapley": float(vals.mean()),
            "std_shapley": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
            "sem_shapley": float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else 0.0,
            # Monte-Carlo standard error of the type mean (clients' SEs combined as independent)
            "mc_se_mean": float(np.sqrt(np.sum(np.square(per_type_se[j]))) / vals.size),
            "min_shapley": float(vals.min()), "max_shapley": float(vals.max()),
            "frac_positive": float(np.mean(vals > 0)),
        }
        for r1 in valued:
            row[f"mean_round{r1}"] = per_type_round[(j, r1)]
        type_rows.append(row)
    return {"types": type_rows, "clients": client_rows, "rounds": round_rows, "arch": arch.id}


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def main(argv: list[str] | None = None) -> int:
    from fl_server.data import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", help="mnist | digits | idx:DIR | npz:FILE")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--samples", type=int, default=500, help="samples per client")
    ap.add_argument("--rounds-valued", default="1,3,5", help="1-based rounds to value, e.g. 1,3,5 or 1-10")
    ap.add_argument("--perms", type=int, default=1000, help="permutations per valued round")
    ap.add_argument("--perms-per-step", type=int, default=200, help="permutations per jitted engine step")
    ap.add_argument("--val-size", type=int, default=1000, help="validation rows in the utility (0 = all)")
    ap.add_argument("--local-steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--arch", default=None, help="default mlp-<d>-200-10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    splits = load_dataset(args.data)
    res = shapley_by_type(
        splits, clients=args.clients, samples=args.samples, valued_rounds=parse_rounds(args.rounds_valued),
        perms=args.perms, perms_per_step=args.perms_per_step, seed=args.seed, val_size=args.val_size,
        arch_id=args.arch, lr=args.lr,
        local_steps=args.local_steps, batch_size=args.batch_size,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    _write_csv(args.out / "figure4.csv", res["types"])
    _write_csv(args.out / "figure4_clients.csv", res["clients"])
    _write_csv(args.out / "figure4_rounds.csv", res["rounds"])
    _plot(res, args, args.out / "figure4.png")
    print(f"{'type':>4} {'mean S':>10} {'std':>9} {'MC SE':>8} {'>0':>5}")
    for r in res["types"]:
        print(f"{r['type']:>4} {r['mean_shapley']:+10.5f} {r['std_shapley']:9.5f} {r['mc_se_mean']:8.5f} "
              f"{r['frac_positive']:5.2f}")
    print(f"wrote {args.out / 'figure4.csv'} and {args.out / 'figure4.png'} in {time.perf_counter() - t0:.0f}s")
    return 0


def _plot(res: dict, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = res["types"]
    names = [r["type"] for r in rows]
    x = np.arange(len(names))
    means = [r["mean_shapley"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = ["tab:green" if m > 0 else "tab:red" for m in means]
    a.bar(x, means, yerr=[r["std_shapley"] for r in rows], capsize=3, color=colors, alpha=0.85,
          error_kw=dict(lw=1))
    a.axhline(0, color="black", lw=0.8)
    a.set_xticks(x, names)
    a.set_xlabel("client type (Tj: 10 - j labels per client)")
    a.set_ylabel("mean Shapley value (Δ neg. val. cross-entropy)")
    a.set_title("Figure 4 (reproduction): mean S per type\nerror bars: std over clients and rounds")
    rounds = sorted({c["round"] for c in res["clients"]})
    cmap = plt.get_cmap("viridis")
    width = 0.8 / max(len(rounds), 1)
    for i, r1 in enumerate(rounds):
        b.bar(x - 0.4 + width * (i + 0.5), [row[f"mean_round{r1}"] for row in rows], width,
              color=cmap(i / max(len(rounds) - 1, 1)), label=f"round {r1}")
    b.axhline(0, color="black", lw=0.8)
    b.set_xticks(x, names)
    b.set_xlabel("client type")
    b.set_ylabel("mean Shapley value of the type in that round")
    b.set_title("per valued round")
    b.legend(fontsize=8, ncol=2)
    bounds = ", ".join(f"r{r['round']}: {r['err2_bound_95']:.3g}/{r['norm2_phi']:.3g}" for r in res["rounds"])
    fig.suptitle(f"{args.data}, {res['arch']}, K={args.clients}, {args.samples} samples/client, "
                 f"{args.perms} permutations/round (CV + antithetic-stratified), seed {args.seed}; "
                 f"95% bound ‖φ̂−φ‖₂ / ‖φ‖₂ per round: {bounds}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
