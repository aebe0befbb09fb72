"""The one ``fedcoin`` command: each role's subcommand lives in its own module.

A subcommand module exposes ``configure(parser)`` (adds its arguments) and ``run(args) -> int``.
Modules are imported only when their subcommand runs, so ``fedcoin mine`` does not pay for
the FL server's imports and vice versa.

Private keys never come from the command line: see :mod:`fedcoin.chain.keys`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("fedcoin.dev.demo", "start Anvil, deploy and run a whole FedCoin task end to end"),
    "deploy": ("fedcoin.roles.deploy", "deploy the FedCoin contract to an RPC endpoint"),
    "request": ("fedcoin.roles.request", "deposit a budget V for a new task and follow where every wei goes"),
    "server": ("fl_server.cli", "run an FL server for a task: train, register updates, publish Shapley tasks"),
    "mine": ("miners.cli", "run a PoSap miner against an RPC endpoint"),
    "audit": ("fedcoin.roles.audit", "verify the PoSap block records, winners and payouts from events"),
    "index": ("fedcoin.roles.index", "index every FedCoin event into SQLite (incremental, reorg-safe)"),
    "explorer": ("fedcoin.roles.explorer.server", "serve a local web page of tasks, rounds, miners, blocks and payouts"),
    "plot": ("fedcoin.roles.explorer.plots", "write a task's explorer charts as PNG files"),
    "client": ("fl_server.client", "run one data owner (client) of a task: train locally, register, claim"),
    "claim": ("fedcoin.roles.collect:claim_cmd", "claim a client's payouts, with proofs built from events"),
    "withdraw": ("fedcoin.roles.collect:withdraw_cmd", "withdraw an account's credit (server, miners, requester)"),
    "refund": ("fedcoin.roles.collect:refund_cmd", "refund a task never accepted or stalled unpublished"),
    "status": ("fedcoin.roles.collect:status_cmd", "per party of a task: what is owed and the command that collects it"),
    "flchain": ("fedcoin.roles.flchain_cli", "FLChain beside FedCoin: trainers, deposits, reports, the model marketplace, queries"),
    "account": ("fedcoin.roles.accounts", "create and list keystores; fund an account on the local dev chain"),
    "node": ("fedcoin.dev.node", "start a local Anvil node at http://127.0.0.1:8545 (development only)"),
}


def _load(spec: str):
    """The object behind ``module`` or ``module:attribute`` (it has configure and run)."""
    module, _, attr = spec.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def _parser(argv: list[str]) -> tuple[argparse.ArgumentParser, str | None]:
    parser = argparse.ArgumentParser(prog="fedcoin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if name == chosen:
            _load(module).configure(p)
    return parser, chosen


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, chosen = _parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = _load(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry(command: str):
    """Console-script shim: ``fedcoin-miner`` is ``fedcoin mine``, and so on."""

    def _main() -> int:
        return main([command, *sys.argv[1:]])

    return _main


miner_main = entry("mine")
server_main = entry("server")

if __name__ == "__main__":
    raise SystemExit(main())
