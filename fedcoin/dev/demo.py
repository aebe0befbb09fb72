"""The main job (``make demo``): a whole FedCoin task, end to end, on a local chain.

With no arguments it:

1. starts Anvil on a free loopback port (or uses ``--rpc``) and deploys FedCoin with
   ``brownie run deploy`` (:mod:`fedcoin.dev.brownie_net`);
2. funds the roles from Anvil's development accounts: a requester, a server, K clients
   (default 20, quality types T0…T9 as in the paper) and M miners (default 2);
3. the requester deposits V for a task of R rounds (default 1) split 7:1:2;
4. starts M **separate miner processes** (``fedcoin mine``, key passed in the environment);
5. runs the FL server: FedAvg on MNIST, every client registers its own update, the server
   publishes the round's Shapley task;
6. the miners estimate the Shapley vector, commit, reveal and finalize; every client claims its
   payout with a Merkle proof; the server, miners and requester withdraw;
7. prints the payout table (client, type, S̄, amount), the PoSap block records, the audit
   verdict and, last, ``V=… clients=… server=… miners=… refunded=… unaccounted=0``;
8. saves a plot of S̄ by client type (PNG) in the output folder.

The development accounts come from Anvil's public test mnemonic: with ``--rpc`` the node must
fund those accounts (any Anvil does). Nothing here is for real value.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ETH = 10**18


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", help="use this node instead of starting Anvil (its dev accounts must be funded)")
    parser.add_argument("--clients", type=int, default=20, help="K clients, types T0…T9 in blocks (default %(default)s)")
    parser.add_argument("--miners", type=int, default=2, help="M miner processes (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="FL rounds R (default %(default)s)")
    parser.add_argument("--value", type=float, default=10.0, help="budget V in ether (default %(default)s)")
    parser.add_argument("--data", default="mnist", help="mnist | digits | idx:DIR | npz:FILE (default %(default)s)")
    parser.add_argument("--arch", help="model id, e.g. mlp-784-200-10 or logreg-784-10 (default: MLP with 200 hidden)")
    parser.add_argument("--samples-per-client", type=int, default=300, help="n_k of each client (default %(default)s)")
    parser.add_argument("--val-size", type=int, default=1000, help="validation rows in the Shapley utility (default %(default)s)")
    parser.add_argument("--local-steps", type=int, default=20, help="local SGD steps per round (paper: 20)")
    parser.add_argument("--commit-window", type=int, default=None,
                        help="seconds from publication to the commit deadline (default: sized from the clients, "
                             "validation rows and model so that a loaded two-core machine meets it; 60 s for the "
                             "default demo — fedcoin.roles.request.suggest_windows)")
    parser.add_argument("--reveal-window", type=int, default=20,
                        help="seconds from the commit to the reveal deadline (at least the contract's 20)")
    parser.add_argument("--difficulty", type=float, default=0.2,
                        help="the task's relative D: a miner qualifies within this fraction of ‖centre‖₂ (default %(default)s)")
    parser.add_argument("--out", help="output folder (default $FEDCOIN_HOME/demo)")
    parser.add_argument("--no-brownie", action="store_true", help="deploy with web3.py instead of `brownie run deploy`")
    parser.add_argument("--seed", type=int, default=0, help="seed of data partition and training")
    rr = parser.add_argument_group("Record-and-Reward options (docs/rr.md)")
    rr.add_argument("--payment", default="shapley", choices=("shapley", "data-cost", "data-cost-gated"),
                    help="the task's payment rule (default %(default)s)")
    rr.add_argument("--max-data-cost", type=int, default=None, help="the task's cap on a declared n_k (default: none)")
    rr.add_argument("--csves", choices=("th", "tr", "th+tr"), default=None,
                    help="the server gates each round with CSVES (th: verified by every miner)")
    rr.add_argument("--csves-tau", type=float, default=0.1, help="CSVES-Th threshold τ (default %(default)s, the paper's)")
    rr.add_argument("--faulty", type=int, default=0,
                    help="simulation: the last N clients are faulty (their labels permuted among their own rows)")


def _stream(proc: subprocess.Popen, prefix: str, log_path: Path) -> threading.Thread:
    """Copy a child's output to its log file and, prefixed, to our stderr."""

    def pump():
        with open(log_path, "w") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                print(f"{prefix} {line.rstrip()}", file=sys.stderr, flush=True)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def start_miner(rpc: str, contract: str, key: str, *, store: str, journal: Path, task: int, seed: int,
                log: Path, prefix: str) -> tuple[subprocess.Popen, threading.Thread]:
    """One ``fedcoin mine`` process for ``task``; its key travels in the environment, not argv."""
    env = dict(os.environ, FEDCOIN_PRIVATE_KEY=key, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "fedcoin.cli", "mine", "--rpc", rpc, "--contract", contract, "--store", store,
           "--journal", str(journal), "--task", str(task), "--seed", str(seed), "--no-progress", "--poll", "0.5"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    return proc, _stream(proc, prefix, log)


def plot_by_type(rows, types: dict[str, int], path: Path) -> Path:
    """Bar chart of mean S̄ per client type with every client's S̄ as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_type: dict[int, list[float]] = {}
    for r in rows:
        by_type.setdefault(types[r.client], []).append(r.centre)
    ts = sorted(by_type)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([f"T{t}" for t in ts], [float(np.mean(by_type[t])) for t in ts], color="#4C72B0", alpha=0.7,
           label="mean S̄ of the type")
    for i, t in enumerate(ts):
        ax.scatter([i] * len(by_type[t]), by_type[t], color="k", s=12, zorder=3,
                   label="one client" if i == 0 else None)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("client type (Tj holds 10−j labels)")
    ax.set_ylabel("consensus Shapley value (centre)")
    ax.set_title("FedCoin demo: consensus centre by client type")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_blocks(fc) -> str:
    from fedcoin.protocol import fixedpoint

    lines = ["height task round winner       D         centre hash  winner S hash  prev record  payouts root"]
    for h in range(fc.block_count()):
        b = fc.get_block(h)
        lines.append(
            f"{h:>6} {b.task_id:>4} {b.round:>5} {b.winner[:12]} {fixedpoint.decode(b.difficulty):<9.3g} "
            f"0x{b.centre_hash.hex()[:10]}  0x{b.winner_hash.hex()[:10]}   0x{b.prev_hash.hex()[:8]}   0x{b.payouts_root.hex()[:10]}"
        )
    return "\n".join(lines)


def permute_labels(data, *, seed: int):
    """Simulation: a faulty client's data — its labels permuted at random among its own rows
    (the label histogram, hence its declared classes, unchanged; scripts/rr_tables.py's 'permuted')."""
    import numpy as np

    from fl_server.data import Dataset

    y = np.random.default_rng(seed).permutation(np.asarray(data.y))
    return Dataset(np.asarray(data.x), y)


def run(args: argparse.Namespace) -> int:
    from fedcoin.roles.accounting import format_line, format_payout_table, payout_table, task_accounting
    from fedcoin.roles.audit import audit
    from fedcoin.dev.brownie_net import brownie_deploy
    from fedcoin.chain import FedCoin, connect
    from fedcoin.chain.deployment import DeployParams
    from fedcoin.home import fedcoin_home
    from fedcoin.dev.devnet import Anvil, dev_private_keys
    from eth_account import Account

    from fedcoin.content.store import LocalStore
    from fedcoin.ml.models import Arch

    if args.clients < 1 or args.miners < 1 or args.rounds < 1:
        print("fedcoin demo: --clients, --miners and --rounds must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.faulty <= args.clients:
        print(f"fedcoin demo: --faulty {args.faulty} must be between 0 and --clients {args.clients}", file=sys.stderr)
        return 2
    if args.commit_window is None:
        from fedcoin.roles.request import suggest_windows

        hidden = max(Arch.parse(args.arch).sizes[1:-1] or (10,)) if args.arch else 200
        args.commit_window = suggest_windows(args.clients, val_rows=args.val_size, hidden=hidden)[1]
    print(f"[demo] commit window {args.commit_window} s, reveal window {args.reveal_window} s", flush=True)
    started = time.time()
    out = Path(args.out) if args.out else fedcoin_home() / "demo"
    run_dir = out / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    n_accounts = 2 + args.miners + args.clients
    node = None
    if args.rpc:
        url = args.rpc
    else:
        node = Anvil(accounts=n_accounts, balance_eth=max(1000, int(args.value) * 2)).start()
        url = node.url
    procs: list[subprocess.Popen] = []
    try:
        print(f"[demo] chain at {url}; output in {run_dir}", flush=True)
        keys = dev_private_keys(n_accounts)
        accts = [Account.from_key(k) for k in keys]
        requester, server = accts[0], accts[1]
        miner_keys = keys[2:2 + args.miners]
        clients = accts[2 + args.miners:]
        w3 = connect(url)
        if args.no_brownie:
            address = FedCoin.deploy(w3, requester, DeployParams()).address
        else:
            print("[demo] brownie run deploy …", flush=True)
            address = brownie_deploy(url)
        fc = FedCoin(w3, address, requester)
        print(f"[demo] FedCoin deployed at {address}", flush=True)

        V = int(round(args.value * ETH))
        # the requester sets the task's consensus: relative D (the same meaning at every scale of
        # Shapley values), p = 2, and the windows the server and miners work to
        cap = {} if args.max_data_cost is None else {"max_data_cost": args.max_data_cost}
        task_id = fc.create_task(server.address, [c.address for c in clients], args.rounds, V,
                                 difficulty=int(round(args.difficulty * 10**18)), relative=True, p=2,
                                 commit_window=args.commit_window, reveal_window=args.reveal_window,
                                 payment=args.payment, **cap).task_id
        print(f"[demo] requester {requester.address[:10]} deposited V={V} wei for task {task_id}: "
              f"{args.clients} clients, {args.rounds} round(s), split 7000/1000/2000, payment {args.payment}"
              f"{', CSVES-' + args.csves + f' (tau {args.csves_tau:g})' if args.csves else ''}", flush=True)

        store_dir = run_dir / "store"
        store = LocalStore(store_dir)
        threads = []
        for i, key in enumerate(miner_keys):
            p, t = start_miner(url, address, key, store=f"local:{store_dir}", journal=run_dir / "journal",
                               task=task_id, seed=1000 + i, log=run_dir / f"miner-{i}.log", prefix=f"[miner {i}]")
            procs.append(p)
            threads.append(t)

        from fl_server.server import FLServer, ServerConfig

        cfg = ServerConfig(
            data=args.data, arch=args.arch, samples_per_client=args.samples_per_client, seed=args.seed,
            local_steps=args.local_steps, val_size=args.val_size, poll_interval=0.5,
            round_timeout=10 * (args.commit_window + args.reveal_window) + 120,
            csves=args.csves, csves_tau=args.csves_tau,
        )
        srv = FLServer(fc.as_account(server), task_id, clients, store, cfg)
        types = {addr: c.type for addr, c in zip(srv.listed, srv.partition.clients)}
        faulty = srv.listed[len(srv.listed) - args.faulty:] if args.faulty else []
        for k, addr in enumerate(faulty):
            srv.owners[addr].replace_data(permute_labels(srv.owners[addr].data, seed=args.seed + 1 + k))
        if faulty:
            print(f"[demo] simulation: {len(faulty)} faulty client(s), labels permuted: "
                  f"{', '.join(a[:10] for a in faulty)}", flush=True)
        summary = srv.run(wait=True, progress=True)
        for rep in summary.rounds:
            print(f"[server] round {rep.round}: {len(rep.registered_now)} updates registered, spec "
                  f"{rep.spec_hash[:12]}… published; validation accuracy of the model before the round "
                  f"{rep.val_accuracy:.3f}", flush=True)
        final = srv.strategy.evaluate(args.rounds, srv.global_model(args.rounds), srv.splits.test)
        print(f"[server] global model after {args.rounds} round(s): test accuracy {final['accuracy']:.3f}", flush=True)

        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.terminate()
        for t in threads:
            t.join(timeout=5)

        # Everyone collects: clients claim with Merkle proofs, the others withdraw their credit.
        by_addr = {c.address: c for c in clients}
        claimed = 0
        for rnd in range(args.rounds):
            fin = fc.round_finalized(task_id, rnd)
            if fin is None:
                continue
            for client, amount in zip(fc.registered_clients(task_id, rnd), fin["amounts"]):
                if amount > 0:
                    fc.as_account(by_addr[client]).claim(task_id, rnd)
                    claimed += 1
        for who in (server, requester):
            if fc.credits(who.address) > 0:
                fc.as_account(who).withdraw()
        print(f"[demo] {claimed} client claims paid; server and requester withdrew their credit", flush=True)

        rows = payout_table(fc, task_id, store=store)
        labels = {a: f"T{t}" + ("!" if a in faulty else "") for a, t in types.items()}
        print(f"\nPayouts under '{args.payment}' (n_k, the server's check verdict, consensus Shapley value S̄ "
              f"and amount per client; ! = faulty):")
        print(format_payout_table(rows, labels))
        print("\nPoSap block records:")
        print(format_blocks(fc))
        verdict = audit(fc)
        print(f"\naudit: {verdict}")
        png = plot_by_type(rows, types, run_dir / "shapley_by_type.png")
        print(f"plot: {png}")
        print(f"elapsed: {time.time() - started:.0f}s")
        acc = task_accounting(fc, task_id)
        print(format_line(acc))
        return 0 if (acc.ok and verdict.ok) else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if node is not None:
            node.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fedcoin.dev.demo", description=__doc__.splitlines()[0])
    configure(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
