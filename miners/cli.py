"""``fedcoin mine`` (also ``fedcoin-miner``): a PoSap miner pointed at an RPC endpoint.

The key comes from a keystore file or ``$FEDCOIN_PRIVATE_KEY`` (:mod:`fedcoin.chain.keys`), never
from the command line. The contract address defaults to the one recorded for the chain by
``fedcoin deploy`` / ``brownie run deploy``.
"""

from __future__ import annotations

import argparse
import signal
import sys

from miners.miner import MinerConfig
from miners.shapley.fl import CONTROL_VARIATES, PAIRWISE_MAX_K
from miners.shapley.sampling import SAMPLERS


def configure(parser: argparse.ArgumentParser) -> None:
    from fedcoin.chain.keys import add_key_arguments

    d = MinerConfig()
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    parser.add_argument("--contract", help="FedCoin address (default: the deployment recorded for the chain)")
    parser.add_argument("--flchain", metavar="ADDRESS",
                        help="the FLChain serving this FedCoin, whose trainer requirement this miner re-checks "
                             "(a spec that keeps an unjoined client's update, or excludes a joined one as "
                             "unregistered-trainer, is refused). Default: the FLChain recorded for the chain, if it "
                             "serves this FedCoin, else none")
    parser.add_argument("--no-flchain", action="store_true", help="check no trainer requirement")
    parser.add_argument("--store", default="local",
                        help="content store: 'local', 'local:DIR' or 'ipfs:http://127.0.0.1:5001' (default %(default)s)")
    parser.add_argument("--journal", help="journal directory (default $FEDCOIN_HOME/journal)")
    parser.add_argument("--task", type=int, help="mine only this task, and exit when it has ended")
    parser.add_argument("--margin", type=float, default=d.margin, help="sample until error bound <= margin*D (default %(default)s)")
    parser.add_argument("--confidence", type=float, default=d.confidence, help="confidence of the error bound (default %(default)s)")
    parser.add_argument("--sampler", default=d.sampler, choices=("auto", *SAMPLERS),
                        help="permutation sampler; auto = plain with the pairwise control variate, else "
                             "antithetic_stratified (default %(default)s)")
    parser.add_argument("--control-variate", choices=CONTROL_VARIATES, default="auto",
                        help="game sampled against: 'pairwise' (through every singleton and pair), 'linear' "
                             f"(weighted mean of singletons), 'none'; 'auto' = pairwise up to {PAIRWISE_MAX_K} "
                             "clients, else linear (default %(default)s)")
    parser.add_argument("--no-control-variate", action="store_true", help="same as --control-variate none")
    parser.add_argument("--max-perms", type=int, help="permutations per round (default: the contract's iteration cap)")
    parser.add_argument("--bond", type=int, help="bond in wei per commitment (default: the contract minimum)")
    parser.add_argument("--seed", type=int, help="PRNG seed (default: random)")
    parser.add_argument("--poll", type=float, default=d.poll_s, help="seconds between polls (default %(default)s)")
    parser.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                        help="exit after this long with nothing to do and nothing pending")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--ray", metavar="ADDRESS|auto",
                        help="sample on a Ray cluster (pip install 'fedcoin[ray]'); 'auto': a local one on 127.0.0.1")
    parser.add_argument("--jury", metavar="ADDRESS|none",
                        help="AggregateJury to attest in after each commit whether the round's global model is the "
                             "previous round's aggregate (default: the one of the FLChain recorded for the chain, "
                             "if any; 'none': never attest)")
    add_key_arguments(parser)


def _jury(args, fc, account, flc):
    """The AggregateJury to attest in (fedcoin.flchain.binding), or None: ``--jury ADDRESS`` (its
    code must be the shipped AggregateJury's), else the jury of the FLChain the trainer check
    resolved (already verified to serve this FedCoin), else none."""
    from fedcoin.chain.artifact import code_matches
    from fedcoin.flchain.binding import AggregateJury

    if args.jury == "none":
        return None
    if args.jury:
        jury = AggregateJury(fc.w3, args.jury, account)
        if not code_matches("AggregateJury", bytes(fc.w3.eth.get_code(jury.address))):
            raise ValueError(f"the code at {jury.address} is not this version of AggregateJury")
        return jury
    return flc.jury(account) if flc is not None else None


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, RPCUnavailable, TaskStatus, open_fedcoin
    from fedcoin.home import fedcoin_home
    from fedcoin.chain.keys import KeyLoadError, account_from_args
    from fedcoin.content.store import open_store
    from fedcoin.flchain.binding import TrainerGateError, resolve_flchain
    from miners.journal import Journal, JournalLocked
    from miners.miner import Miner

    try:
        account = account_from_args(args)
    except KeyLoadError as e:
        print(f"fedcoin mine: {e}", file=sys.stderr)
        return 2
    try:
        fc = open_fedcoin(args.rpc, args.contract, account)
        fc.max_iterations()  # fails clearly if the contract there is not FedCoin
    except RPCUnavailable as e:
        print(f"fedcoin mine: cannot reach {args.rpc}: {e}", file=sys.stderr)
        return 2
    except (ChainError, LookupError, FileNotFoundError, ValueError) as e:
        print(f"fedcoin mine: no usable FedCoin contract: {e}", file=sys.stderr)
        return 2
    try:
        flc = resolve_flchain(fc, getattr(args, "flchain", None), off=getattr(args, "no_flchain", False),
                              log=lambda m: print(f"fedcoin mine: {m}", file=sys.stderr))
    except TrainerGateError as e:
        print(f"fedcoin mine: --flchain: {e}", file=sys.stderr)
        return 2
    cfg = MinerConfig(confidence=args.confidence, margin=args.margin, sampler=args.sampler,
                      control_variate="none" if args.no_control_variate else args.control_variate,
                      max_perms=args.max_perms, bond=args.bond, poll_s=args.poll, seed=args.seed, ray=args.ray)
    journal = Journal(args.journal or fedcoin_home() / "journal")
    try:
        journal.lock(account.address)
    except JournalLocked as e:
        print(f"fedcoin mine: {e}", file=sys.stderr)
        return 2
    try:
        jury = _jury(args, fc, account, flc)
    except (ChainError, ValueError) as e:
        print(f"fedcoin mine: no usable AggregateJury: {e}", file=sys.stderr)
        return 2
    miner = Miner(fc, open_store(args.store), journal, cfg, task=args.task, progress=not args.no_progress,
                  flchain=flc, jury=jury)
    print(f"miner {account.address} on chain {fc.chain_id}, contract {fc.address}, journal {journal.dir}, "
          f"trainer check: {'FLChain ' + flc.address if flc is not None else 'off'}, "
          f"aggregate jury: {jury.address if jury is not None else 'off'}",
          file=sys.stderr, flush=True)
    miner.check_journal()

    def task_over() -> bool:
        return args.task is not None and fc.get_task(args.task).status in (TaskStatus.COMPLETED, TaskStatus.REFUNDED) and miner.idle()

    def on_term(signum, frame):  # SIGTERM: the same clean stop as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        miner.run(until=task_over, max_idle_s=args.exit_when_idle)
    except KeyboardInterrupt:
        print(stop_message(miner, args), file=sys.stderr)
        return 130
    for line in miner.summaries:
        print(line)
    return 0


def stop_message(miner, args) -> str:
    """What a stopped miner leaves pending, where the money is, and the command that resumes."""
    from miners.journal import COMMITTED, PREPARED

    lines = ["miner stopped."]
    pending = [e for e in miner.journal.entries(miner=miner.me, open_only=True)
               if e.contract.lower() == miner.fc.address.lower()]
    for e in pending:
        try:
            r = miner.fc.get_round(e.task_id, e.round)
            when = f"reveal window closes at block time {r.reveal_deadline}"
        except Exception:  # noqa: BLE001 - the node may be the reason we stopped
            when = "reveal window unknown (node unreachable)"
        what = "bond at stake until revealed" if e.status in (COMMITTED, PREPARED) else f"status {e.status}"
        lines.append(f"  task {e.task_id} round {e.round} attempt {e.attempt}: {e.status}, {what}; {when}")
    if not pending:
        lines.append("  nothing pending: no bond at stake.")
    resume = f"fedcoin mine --rpc {args.rpc}" + (f" --task {args.task}" if args.task is not None else "")
    if args.journal:
        resume += f" --journal {args.journal}"
    lines.append(f"  resume with: {resume}   (the journal in {miner.journal.dir} keeps every salt and vector)")
    try:
        owed = miner.fc.credits(miner.me)
        if owed:
            lines.append(f"  {owed} wei is credited to {miner.me}: a restarted miner withdraws it")
    except Exception:  # noqa: BLE001
        pass
    return "\n".join(lines)
