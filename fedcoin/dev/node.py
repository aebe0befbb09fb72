"""``fedcoin node``: a local development chain (Anvil) at ``http://127.0.0.1:8545``, in the foreground.

This is the node the README's "separate parties" walk-through and ``brownie run deploy
--network anvil`` talk to (brownie's ``anvil`` network is ``http://127.0.0.1:8545``; with a node
already listening there brownie attaches to it instead of starting a throw-away one). It
listens on 127.0.0.1 only, enforces EIP-7825's per-transaction gas cap, and funds Anvil's
public development accounts (their keys are known to everyone: development only). Stop it with
Ctrl-C. With ``--state FILE`` the chain is saved on exit and loaded on start, so a recorded
deployment survives a restart.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

DEFAULT_PORT = 8545


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1")
    parser.add_argument("--accounts", type=int, default=10, help="funded development accounts")
    parser.add_argument("--balance", type=int, default=10_000, help="ether per development account")
    parser.add_argument("--state", type=Path, default=None, help="load the chain from FILE and save it there on exit")


def run(args: argparse.Namespace) -> int:
    from fedcoin.dev.devnet import Anvil

    extra = ["--state", str(args.state)] if args.state else []
    node = Anvil(accounts=args.accounts, balance_eth=args.balance, port=args.port, extra_args=extra)
    try:
        node.start()
    except (RuntimeError, TimeoutError, OSError) as e:
        print(f"fedcoin node: could not start Anvil on 127.0.0.1:{args.port}: {str(e).splitlines()[-1] if str(e) else e}",
              file=sys.stderr)
        return 1
    print(f"Anvil (chain 31337) listening at {node.url}; {args.accounts} development accounts with "
          f"{args.balance} ETH each (public keys: never for real value). Ctrl-C stops it.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        node.proc.wait()
        print(f"fedcoin node: Anvil exited with code {node.proc.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping Anvil", file=sys.stderr)
        return 0
    finally:
        node.stop()
