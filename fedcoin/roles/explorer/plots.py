"""``fedcoin plot --task N``: the explorer's charts of a task as PNG files (for papers and READMEs).

Written to ``--out`` (default ``reports/plots/task<N>/``): ``consensus_round<r>.png`` (the
consensus vector S̄ by client, one per settled round), ``payouts.png`` (each client's payout
per round, in ETH) and ``difficulty.png`` (D after each PoSap block). The numbers are the ones
the page shows: both come from :mod:`fedcoin.roles.explorer.model` over the event index.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedcoin.roles.explorer import model
from fedcoin.roles.index import EventIndex

FP = 10**18


def _short(a: str) -> str:
    return f"{a[:6]}…{a[-4:]}"


def write_plots(idx: EventIndex, fc, task_id: int, out: Path) -> list[Path]:
    """Write the task's PNGs into ``out``; returns their paths (raises LookupError for an unknown task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    view = model.task_view(idx, fc, task_id)
    if view is None:
        raise LookupError(f"task {task_id} is not in the index")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    settled = [r for r in view["rounds"] if r["finalized"]]
    for r in settled:
        fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=150)
        vals = [p["value"] / FP for p in r["payouts"]]
        ax.bar([_short(p["client"]) for p in r["payouts"]], vals,
               color=["#2f6fde" if v > 0 else "#c0c4cc" for v in vals])
        ax.axhline(0, color="#555", lw=0.8)
        ax.set_ylabel("consensus S̄ (Shapley value)")
        ax.set_title(f"Task {task_id} round {r['round']}: consensus by client (PoSap block {r['finalized']['height']})")
        fig.tight_layout()
        written.append(out / f"consensus_round{r['round']}.png")
        fig.savefig(written[-1])
        plt.close(fig)
    if settled:
        fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=150)
        clients = view["clients"]
        width = 0.8 / max(1, len(settled))
        for j, r in enumerate(settled):
            amt = {p["client"]: p["amount"] / FP for p in r["payouts"]}
            ax.bar([i + j * width for i in range(len(clients))], [amt.get(c, 0) for c in clients], width,
                   label=f"round {r['round']}")
        ax.set_xticks([i + width * (len(settled) - 1) / 2 for i in range(len(clients))], [_short(c) for c in clients])
        ax.set_ylabel("payout (ETH)")
        ax.set_title(f"Task {task_id}: client payouts per round")
        ax.legend()
        fig.tight_layout()
        written.append(out / "payouts.png")
        fig.savefig(written[-1])
        plt.close(fig)
    chain = model.chain_view(idx, fc)
    if chain["difficulty"]:
        fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=150)
        ds = chain["difficulty"]
        ax.step(range(len(ds) + 1), [ds[0]["old"] / FP] + [d["new"] / FP for d in ds], where="post", color="#2f6fde")
        mine = [i + 1 for i, b in enumerate(chain["blocks"][:len(ds)]) if b["taskId"] == task_id]
        ax.plot(mine, [ds[i - 1]["new"] / FP for i in mine], "o", color="#e07b16", label=f"after task {task_id}'s blocks")
        ax.set_xlabel("PoSap blocks appended")
        ax.set_ylabel("difficulty D")
        ax.set_title("Difficulty over time")
        ax.legend()
        fig.tight_layout()
        written.append(out / "difficulty.png")
        fig.savefig(written[-1])
        plt.close(fig)
    return written


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", type=int, required=True, help="task id")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment)")
    parser.add_argument("--db", type=Path, default=None,
                        help="event index file (default: $FEDCOIN_HOME/index/<chainId>-<address>.sqlite)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default reports/plots/task<N>)")


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, RPCUnavailable, open_fedcoin
    from fedcoin.roles.index import IndexFileError

    try:
        fc = open_fedcoin(args.rpc, args.contract)
        with EventIndex.for_fedcoin(fc, args.db) as idx:
            idx.sync()
            paths = write_plots(idx, fc, args.task, args.out or Path("reports") / "plots" / f"task{args.task}")
    except (RPCUnavailable, LookupError, ValueError, IndexFileError, OSError) as e:
        print(f"fedcoin plot: {e}", file=sys.stderr)
        return 2
    except ChainError as e:
        print(f"fedcoin plot: {e}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0
