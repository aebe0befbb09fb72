"""``fedcoin server`` (also ``fedcoin-server``): run an FL server for one task.

The normal path (the clients are separate ``fedcoin client`` processes with their own keys)::

    export FEDCOIN_KEYSTORE=server.json FEDCOIN_KEYSTORE_PASSWORD=...   # the server's key only
    fedcoin server --rpc http://127.0.0.1:8545 --task 1 --data mnist --store local

Each round the server waits until every listed client registered or ``--registration-window``
seconds from the round's start passed, builds the spec from the registered updates, publishes
it, waits for the miners to settle the round, and goes on with the next.

A simulation (demos, figures: the server trains the clients itself, with their keys)::

    fedcoin server --task 1 --simulate-clients --client-keystore-dir DIR   # or $FEDCOIN_CLIENT_KEYS,
                                                                          # or --anvil-dev-clients

Keys never come from the command line. The server's key: ``--keystore`` / ``$FEDCOIN_KEYSTORE``
(password in ``$FEDCOIN_KEYSTORE_PASSWORD``) or ``$FEDCOIN_PRIVATE_KEY`` (:mod:`fedcoin.chain.keys`).
The simulated clients' keys (``--simulate-clients`` only): every keystore in
``--client-keystore-dir`` (password in the variable ``--client-password-env`` names), or
``$FEDCOIN_CLIENT_KEYS`` (comma-separated), or ``--anvil-dev-clients`` (Anvil's public
development keys; refused on any chain but 31337).

Run it again after a crash with the same settings: it resumes from the chain and the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

CLIENT_KEYS_ENV = "FEDCOIN_CLIENT_KEYS"
CLIENT_PASSWORD_ENV = "FEDCOIN_CLIENT_KEYSTORE_PASSWORD"
from fedcoin.content.csves_gate import CSVES_GATES
from fedcoin.ml.fedavg import RULES
from fedcoin.protocol.constants import ANVIL_CHAIN_ID


def configure(parser: argparse.ArgumentParser) -> None:
    from fedcoin.chain.keys import add_key_arguments

    from .server import ServerConfig

    d = ServerConfig()
    parser.description = __doc__.splitlines()[0]
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="Ethereum JSON-RPC URL")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment for the chain)")
    parser.add_argument("--task", type=int, required=True, help="task id")
    parser.add_argument("--store", default="local", help="local | local:DIR | ipfs:http://127.0.0.1:5001")
    add_key_arguments(parser)
    g = parser.add_argument_group("simulation (the server trains the clients itself: demos and figures only)")
    g.add_argument("--simulate-clients", action="store_true",
                   help="run the listed clients in-process with the keys below (fedcoin client's code)")
    g.add_argument("--client-keystore-dir", type=Path, default=None, help="a directory of client keystores (*.json)")
    g.add_argument("--client-password-env", default=CLIENT_PASSWORD_ENV, metavar="VAR",
                   help=f"variable holding the client keystores' password (default {CLIENT_PASSWORD_ENV})")
    g.add_argument("--anvil-dev-clients", action="store_true",
                   help="use Anvil's public development keys for listed clients (chain 31337 only)")
    t = parser.add_argument_group("the model and validation set (the task's model card; same when resuming)")
    t.add_argument("--data", default=d.data, help="mnist | digits | idx:DIR | npz:FILE")
    t.add_argument("--arch", default=None, help="e.g. logreg-784-10 (default mlp-<d>-200-<classes>)")
    t.add_argument("--samples", type=int, default=d.samples_per_client, help="simulation: samples per client (n_k)")
    t.add_argument("--iid", action="store_true", help="simulation: IID clients instead of the paper's quality types")
    t.add_argument("--seed", type=int, default=d.seed, help="w_0's seed (clients: --init-seed) and the simulation's")
    t.add_argument("--lr", type=float, default=d.lr, help="simulation: local SGD learning rate")
    t.add_argument("--local-steps", type=int, default=d.local_steps, help="simulation: local SGD steps")
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="simulation: local SGD batch")
    t.add_argument("--aggregation", default=d.aggregation, choices=RULES)
    t.add_argument("--metric", default=d.metric, choices=["neg_cross_entropy", "accuracy"])
    t.add_argument("--val-size", type=int, default=d.val_size, help="validation rows in the spec (0: all)")
    c = parser.add_argument_group("CSVES gate (Record-and-Reward's class-sampled validation; docs/rr.md)")
    c.add_argument("--csves", choices=CSVES_GATES, default=None,
                   help="exclude updates that fail CSVES-Th (th: the error of w_t + update on the client's "
                        "class-sampled validation rows must be below --csves-tau; every miner recomputes it), "
                        "CSVES-Tr (tr: the client's self-reported v_E must fall; NOT verifiable) or both")
    c.add_argument("--csves-tau", type=float, default=d.csves_tau, help="CSVES-Th threshold τ (paper: 0.1)")
    c.add_argument("--csves-m", type=int, default=d.csves_m, help="validation rows per declared class")
    f = parser.add_argument_group("FLChain trainer requirement (docs/flchain.md)")
    f.add_argument("--flchain", default=None, metavar="ADDRESS",
                   help="the FLChain serving this FedCoin: when the task requires trainers there, exclude the "
                        "update of any client that had not joined the task when it registered "
                        "(unregistered-trainer; miners re-check it). Default: the FLChain recorded for the chain, "
                        "if it serves this FedCoin, else no check")
    f.add_argument("--no-flchain", action="store_true", help="no trainer check, even with an FLChain recorded")
    r = parser.add_argument_group("rounds")
    r.add_argument("--max-rounds", type=int, default=None, help="handle at most this many rounds now")
    r.add_argument("--no-wait", action="store_true", help="handle the current round only; do not wait for miners")
    r.add_argument("--round-timeout", type=float, default=None, help="give up waiting for a round after SECONDS (default: never)")
    r.add_argument("--poll", type=float, default=d.poll_interval, help="seconds between chain polls")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def client_accounts(args, chain_id: int, listed: list[str]) -> list:
    """The simulated clients' accounts from a keystore directory, the environment, or Anvil's
    development mnemonic (never from argv)."""
    from eth_account import Account

    from fedcoin.chain.keys import KeyLoadError, load_account

    accounts = []
    if args.client_keystore_dir:
        files = sorted(Path(args.client_keystore_dir).glob("*.json"))
        if not files:
            raise KeyLoadError(f"no *.json keystores in {args.client_keystore_dir}")
        for f in files:
            accounts.append(load_account(f, password_env=args.client_password_env, prompt=False))
    elif os.environ.get(CLIENT_KEYS_ENV):
        for i, k in enumerate(os.environ[CLIENT_KEYS_ENV].split(",")):
            try:
                accounts.append(Account.from_key(k.strip()))
            except Exception:
                raise KeyLoadError(f"${CLIENT_KEYS_ENV} entry {i} is not a private key") from None
    elif args.anvil_dev_clients:
        if chain_id != ANVIL_CHAIN_ID:
            raise KeyLoadError(f"--anvil-dev-clients is for the local Anvil chain (31337), not chain {chain_id}")
        from fedcoin.chain.keys import dev_private_keys

        accounts = [Account.from_key(k) for k in dev_private_keys(60)]
    else:
        raise KeyLoadError(f"no client keys: use --client-keystore-dir, ${CLIENT_KEYS_ENV}, or --anvil-dev-clients")
    listed_set = set(listed)
    return [a for a in accounts if a.address in listed_set]


def run(args) -> int:
    from fedcoin.chain import RPCUnavailable, open_fedcoin
    from fedcoin.chain.keys import KeyLoadError, account_from_args
    from fedcoin.content.store import open_store
    from fedcoin.flchain.binding import resolve_flchain

    from .server import FLServer, ServerConfig, ServerError

    try:
        server_account = account_from_args(args)
        fc = open_fedcoin(args.rpc, args.contract, server_account)
        listed = fc.task_clients(args.task)
        flc = resolve_flchain(fc, getattr(args, "flchain", None), off=getattr(args, "no_flchain", False),
                              log=lambda m: print(f"fedcoin server: {m}", file=sys.stderr))
        clients = client_accounts(args, fc.chain_id, listed) if args.simulate_clients else []
        if not args.simulate_clients and (args.client_keystore_dir or args.anvil_dev_clients):
            raise ServerError("client keys are for --simulate-clients only: a server never needs a client's key")
        config = ServerConfig(
            data=args.data, arch=args.arch, samples_per_client=args.samples, iid=args.iid, seed=args.seed,
            lr=args.lr, local_steps=args.local_steps, batch_size=args.batch_size, aggregation=args.aggregation,
            metric=args.metric, val_size=args.val_size, poll_interval=args.poll, round_timeout=args.round_timeout,
            csves=args.csves, csves_tau=args.csves_tau, csves_m=args.csves_m,
            flchain=flc.address if flc is not None else None,
        )
        if args.simulate_clients and not clients:
            raise ServerError(
                f"none of the {len(listed)} clients listed in task {args.task} has a key here, so this server could "
                f"train and register nothing: it refuses to accept the task (accepting would lock the requester's "
                f"deposit until the round's time bound). Give the clients' keys (--client-keystore-dir, "
                f"${CLIENT_KEYS_ENV}, --anvil-dev-clients on a dev chain).")
        t = fc.get_task(args.task)
        who = f"simulating {len(clients)}/{len(listed)} clients" if args.simulate_clients else f"{len(listed)} listed clients"
        print(f"FL server {server_account.address} on task {args.task} at {fc.address} ({who}; the task's windows: "
              f"registration {t.registration_window}s, commit {t.commit_window}s, reveal {t.reveal_window}s; "
              f"store {args.store}; trainer check: "
              f"{'FLChain ' + flc.address if flc is not None else 'off'})", file=sys.stderr)
        server = FLServer(fc, args.task, clients, open_store(args.store), config)
        summary = server.run(max_rounds=args.max_rounds, wait=not args.no_wait, progress=True)
    except (RPCUnavailable, KeyLoadError, ServerError, LookupError, ValueError, FileNotFoundError) as e:
        print(f"fedcoin server: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({
            "task": summary.task_id, "status": summary.task_status, "server_credit": summary.server_credit,
            "rounds": [r.__dict__ for r in summary.rounds],
        }, default=str))
    else:
        print("\n".join(summary.lines()))
    return 0
