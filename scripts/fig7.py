"""Reproduce Fig. 7 of Record-and-Reward (Martinez et al.): federated against centralised test
accuracy per round, with every federated round run through the chain.

Run it with ``.venv/bin/python scripts/fig7.py`` (defaults: ``--rounds 15 --clients 10 --out
docs/figures``); ``--quick`` is a small smoke run (digits, 4 clients, 2 rounds) written to
``$FEDCOIN_HOME/fig7-quick``. It writes ``rr_fig7.csv`` and ``rr_fig7.png``.

The federated side is the real path, as ``make demo`` runs it: a fresh Anvil on 127.0.0.1,
FedCoin deployed with web3.py (``FedCoin.deploy``), a task created by the requester with
relative D = 0.2, p = 2 and the windows of :func:`fedcoin.roles.request.suggest_windows` (the
contract's target block time set to half the commit window, so that D settles where miners
agree in time), M ``fedcoin mine`` processes (keys in their environment,
:func:`fedcoin.dev.demo.start_miner`), and :class:`fl_server.server.FLServer` with one
in-process :class:`~fl_server.client.DataOwner` per client, each registering its own update
from its own account. Miners value every round
(Shapley), commit, reveal and finalize; clients then claim with Merkle proofs. The global model
of round r is the server's ``global_model(r)``: rebuilt from the updates *registered on-chain*
and included by the published specs.

Clients (R&R is silent on the exact shares): client k holds ``shares[k]`` of the 50 000-image
MNIST pool, shares evenly spaced from 0.1 to 0.5 (``numpy.linspace``), each drawn uniformly
without replacement, independently per client with the server's seed, so the shares overlap
(:func:`fl_server.partition.shares_partition`).

The centralised baseline, "a comparable compute budget": one model on the whole pool, starting
from the same w_0, trained with the clients' own SGD (:func:`fl_server.fedavg.local_sgd`: the
same lr, batch size and minibatch sampling) for ``local_steps`` steps per round — as many
sequential SGD steps per round as each federated client takes. A second column gives the
baseline with ``clients × local_steps`` steps per round: as many gradient evaluations per round
as all clients together.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ETH = 10**18
CENTRAL_KEY = 0xCE17  # folded into the seed's key: the baseline's minibatches are no client's


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--shares", type=lambda s: tuple(float(v) for v in s.split(",")),
                    help="comma-separated fraction of the pool per client (default: evenly spaced 0.1…0.5)")
    ap.add_argument("--miners", type=int, default=2)
    ap.add_argument("--data", default="mnist", help="mnist | digits | idx:DIR | npz:FILE")
    ap.add_argument("--arch", help="default: the server's MLP <d>-200-<classes>")
    ap.add_argument("--local-steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--val-size", type=int, default=1000, help="validation rows of the Shapley utility")
    ap.add_argument("--commit-window", type=int, help="default: suggest_windows for the clients, rows and model")
    ap.add_argument("--reveal-window", type=int, default=20, help="the demo's (one transaction per miner)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="default docs/figures (--quick: $FEDCOIN_HOME/fig7-quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: digits, 4 clients, 2 rounds, logreg, short windows")
    args = ap.parse_args(argv)
    if args.quick:
        from fedcoin.home import fedcoin_home

        args.data, args.arch, args.clients, args.rounds, args.val_size = "digits", "logreg-64-10", 4, 2, 200
        args.local_steps, args.batch_size, args.lr = 5, 10, 0.5
        args.commit_window = args.commit_window or 25  # the e2e tests' window for this size
        args.out = args.out or fedcoin_home() / "fig7-quick"
    args.out = args.out or ROOT / "docs" / "figures"
    if args.shares is None:
        import numpy as np

        args.shares = tuple(float(s) for s in np.round(np.linspace(0.1, 0.5, args.clients), 6))
    if args.clients < 1 or args.rounds < 1 or args.miners < 1:
        ap.error("--clients, --rounds and --miners must be at least 1")
    return args


def centralised_curve(strategy, w0, pool, test, *, rounds: int, steps: int, key) -> list[dict]:
    """Test metrics after each of ``rounds`` rounds of ``steps`` SGD steps on the whole pool.

    The steps are :func:`fl_server.fedavg.local_sgd` with the strategy's lr and batch size, so
    the baseline differs from a client only in its data; round r uses ``round_key(key, r)``.
    """
    import jax.numpy as jnp

    from fedcoin.ml.fedavg import round_key
    from fl_server.fedavg import local_sgd

    x, y, n = jnp.asarray(pool.x), jnp.asarray(pool.y), jnp.int32(len(pool))
    w, out = w0, []
    for r in range(rounds):
        w = local_sgd(strategy.arch, w, x, y, n, jnp.float32(strategy.lr), key=round_key(key, r), steps=steps,
                      batch_size=strategy.batch_size)
        out.append(strategy.evaluate(r, w, test))
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import jax

    return f"{os.cpu_count()} cores ({cpu}, {platform.machine()}), JAX {jax.__version__} on {jax.default_backend()}"


def run_chain(args, log=print) -> dict:
    """The federated rounds on a fresh Anvil (see the module docstring).

    Returns:
        ``{"server": FLServer, "task": id, "rounds": [per round: status, attempts, relative_D,
        reveals, clients_paid_wei, seconds], "accounting": Accounting}``. The chain is gone on return, so
        everything needed later (the global models included) is read before.
    """
    from eth_account import Account

    from fedcoin.chain import FedCoin, connect
    from fedcoin.chain.deployment import DeployParams
    from fedcoin.content.store import LocalStore
    from fedcoin.dev.demo import start_miner
    from fedcoin.dev.devnet import Anvil, dev_private_keys
    from fedcoin.home import fedcoin_home
    from fedcoin.ml.models import Arch
    from fedcoin.protocol import fixedpoint
    from fedcoin.roles.accounting import task_accounting
    from fedcoin.roles.request import suggest_windows
    from fl_server.server import FLServer, ServerConfig, ServerHooks

    if args.commit_window is None:
        hidden = max(Arch.parse(args.arch).sizes[1:-1] or (10,)) if args.arch else 200
        args.commit_window = suggest_windows(args.clients, val_rows=args.val_size, hidden=hidden)[1]
    # the store, journals and miner logs (~100 MB for the full run): kept out of the figure folder
    run_dir = fedcoin_home() / "fig7" / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    # the miners are child processes: make them import this checkout, as the script does
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])

    n_accounts = 2 + args.miners + args.clients
    V = 10 * ETH
    procs: list[subprocess.Popen] = []
    with Anvil(accounts=n_accounts, balance_eth=1000) as node:
        try:
            keys = dev_private_keys(n_accounts)
            accts = [Account.from_key(k) for k in keys]
            requester, server, clients = accts[0], accts[1], accts[2 + args.miners:]
            # D adapts toward the contract's target block time (publication to the last qualifying
            # commit). The 600 s default would halve D after every one of these sub-minute rounds
            # until the miners could no longer agree within the commit window; half the window
            # keeps them committing with time to spare.
            params = DeployParams(target_block_time=max(1, args.commit_window // 2))
            fc = FedCoin.deploy(connect(node.url), requester, params)
            task = fc.create_task(server.address, [c.address for c in clients], args.rounds, V,
                                  difficulty=2 * 10**17, relative=True, p=2,
                                  commit_window=args.commit_window, reveal_window=args.reveal_window).task_id
            log(f"run folder {run_dir}")
            log(f"chain {node.url}, FedCoin {fc.address}, task {task}: {args.clients} clients, {args.rounds} rounds, "
                f"V = 10 ETH, windows commit {args.commit_window} s / reveal {args.reveal_window} s, "
                f"target block time {params.target_block_time} s")
            store_dir = run_dir / "store"
            for i, key in enumerate(keys[2:2 + args.miners]):
                p, _ = start_miner(node.url, fc.address, key, store=f"local:{store_dir}", journal=run_dir / "journal",
                                   task=task, seed=1000 + i, log=run_dir / f"miner-{i}.log", prefix=f"[miner {i}]")
                procs.append(p)

            seconds: dict[int, float] = {}

            class Clock(ServerHooks):
                def on_round_start(self, rnd, global_params):
                    self.t = time.monotonic()

                def on_round_settled(self, rnd, status):
                    seconds[rnd] = time.monotonic() - self.t
                    log(f"round {rnd + 1}/{args.rounds} settled ({status.name}) in {seconds[rnd]:.0f} s")

            cfg = ServerConfig(data=args.data, arch=args.arch, shares=args.shares, seed=args.seed, lr=args.lr,
                               local_steps=args.local_steps, batch_size=args.batch_size, val_size=args.val_size,
                               poll_interval=0.5, round_timeout=10 * (args.commit_window + args.reveal_window) + 120)
            srv = FLServer(fc.as_account(server), task, clients, LocalStore(store_dir), cfg, hooks=Clock())
            srv.run(wait=True)
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.terminate()

            by_addr = {c.address: c for c in clients}
            per_round = []
            for rnd in range(args.rounds):
                info, fin = fc.get_round(task, rnd), fc.round_finalized(task, rnd)
                amounts = list(fin.args["amounts"]) if fin is not None else []
                for client, amount in zip(fc.registered_clients(task, rnd), amounts):
                    if amount > 0:
                        fc.as_account(by_addr[client]).claim(task, rnd)
                per_round.append({"status": info.status.name.lower(), "attempts": info.attempt + 1,
                                  "relative_D": f"{fixedpoint.decode(info.difficulty):.4g}",
                                  "reveals": info.reveal_count, "clients_paid_wei": sum(amounts),
                                  "seconds": round(seconds.get(rnd, float("nan")), 1)})
            for who in (server, requester):
                if fc.credits(who.address) > 0:
                    fc.as_account(who).withdraw()
            # the models are rebuilt from the store and the specs published on-chain: read them now
            for rnd in range(args.rounds + 1):
                srv.global_model(rnd)
            return {"server": srv, "task": task, "rounds": per_round, "accounting": task_accounting(fc, task)}
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def run(args, log=print) -> tuple[list[dict], object, object]:
    """The figure's rows (round 0 = w_0, then one per round), the task's accounting and the server."""
    import jax

    chain = run_chain(args, log)
    srv = chain["server"]
    test = srv.splits.test
    fed = [srv.strategy.evaluate(r, srv.global_model(r), test) for r in range(args.rounds + 1)]
    w0, key = srv.global_model(0), jax.random.fold_in(jax.random.key(args.seed), CENTRAL_KEY)
    same_steps = centralised_curve(srv.strategy, w0, srv.splits.train, test, rounds=args.rounds,
                                   steps=args.local_steps, key=key)
    all_steps = centralised_curve(srv.strategy, w0, srv.splits.train, test, rounds=args.rounds,
                                  steps=args.clients * args.local_steps, key=key)
    rows = []
    for r in range(args.rounds + 1):
        c, c_all = ([fed[0]] + same_steps)[r], ([fed[0]] + all_steps)[r]
        chain_row = chain["rounds"][r - 1] if r else {"status": "initial"}
        rows.append({
            "round": r, "federated_test_accuracy": f"{fed[r]['accuracy']:.4f}",
            "centralised_test_accuracy": f"{c['accuracy']:.4f}",
            "centralised_kx_steps_test_accuracy": f"{c_all['accuracy']:.4f}",
            "federated_test_loss": f"{fed[r]['loss']:.4f}", "centralised_test_loss": f"{c['loss']:.4f}",
            "status": chain_row["status"], "attempts": chain_row.get("attempts", ""),
            "relative_D": chain_row.get("relative_D", ""),
            "reveals": chain_row.get("reveals", ""), "clients_paid_wei": chain_row.get("clients_paid_wei", ""),
            "round_seconds": chain_row.get("seconds", ""),
        })
    return rows, chain["accounting"], srv


def plot(rows: list[dict], args, arch_id: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = [int(x["round"]) for x in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(r, [float(x["federated_test_accuracy"]) for x in rows], "o-",
            label=f"federated ({args.clients} clients, on-chain)")
    ax.plot(r, [float(x["centralised_test_accuracy"]) for x in rows], "s-",
            label=f"centralised, {args.local_steps} steps/round")
    ax.plot(r, [float(x["centralised_kx_steps_test_accuracy"]) for x in rows], "s--", alpha=0.6,
            label=f"centralised, {args.clients * args.local_steps} steps/round")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"R&R Fig. 7: {args.data}, {arch_id}, shares {min(args.shares):g}–{max(args.shares):g}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from fedcoin.roles.accounting import format_line

    args = parse_args(argv)
    t0 = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    rows, acc, srv = run(args, log=lambda s: print(s, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = args.out / "rr_fig7.csv", args.out / "rr_fig7.png"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(rows, args, srv.arch.id, png_path)

    n = srv.partition.n_k
    print(f"\nmodel {srv.arch.id}; {args.clients} clients with n_k {n.min()}…{n.max()} "
          f"(shares {', '.join(f'{s:g}' for s in args.shares)}) of a {len(srv.splits.train)}-example pool")
    print("round  federated  centralised  centralised(K×steps)  status     paid to clients (wei)")
    for x in rows:
        print(f"{x['round']:>5}  {x['federated_test_accuracy']:>9}  {x['centralised_test_accuracy']:>11}  "
              f"{x['centralised_kx_steps_test_accuracy']:>20}  {x['status']:<9}  {x['clients_paid_wei']}")
    print(f"money conservation (task_accounting.ok): {acc.ok}  {format_line(acc)}")
    print(f"wrote {csv_path} and {png_path}")
    print(f"machine: {machine()}; wall time {time.perf_counter() - t0:.0f} s", flush=True)
    settled = all(x["status"] == "finalized" for x in rows[1:])
    return 0 if acc.ok and settled else 1


if __name__ == "__main__":
    raise SystemExit(main())
