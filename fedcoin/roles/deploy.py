"""``fedcoin deploy``: deploy FedCoin to an RPC endpoint and record its address.

The signing key comes from :mod:`fedcoin.chain.keys` (a keystore file or ``$FEDCOIN_PRIVATE_KEY``),
never from the command line. Constructor parameters default to
:class:`fedcoin.chain.deployment.DeployParams`; flags override single fields. The address is printed
and recorded in ``$FEDCOIN_HOME/deployments/<chainId>.json`` (:mod:`fedcoin.chain.deployment`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from fedcoin.chain.deployment import DeployParams, record_deployment
from fedcoin.chain.keys import KeyLoadError, account_from_args, add_key_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    add_key_arguments(parser)
    for f in dataclasses.fields(DeployParams):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=None,
                            help=f"constructor parameter (default {f.default})")


def params_from_args(args: argparse.Namespace) -> DeployParams:
    """DeployParams defaults with the fields given on the command line replaced."""
    over = {f.name: getattr(args, f.name) for f in dataclasses.fields(DeployParams) if getattr(args, f.name, None) is not None}
    return dataclasses.replace(DeployParams(), **over)


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, FedCoin, connect

    try:
        account = account_from_args(args)
    except KeyLoadError as e:
        print(f"fedcoin deploy: {e}", file=sys.stderr)
        return 2
    params = params_from_args(args)
    try:
        w3 = connect(args.rpc)
        fc = FedCoin.deploy(w3, account, params)
    except ChainError as e:
        print(f"fedcoin deploy: {e}", file=sys.stderr)
        return 1
    res = fc.deploy_result
    path = record_deployment(fc.chain_id, fc.address, tx_hash=res.tx_hash, block=int(res.receipt["blockNumber"]),
                             deployer=account.address, params=params)
    print(f"FedCoin deployed at {fc.address} on chain {fc.chain_id} (gas {res.gas_used}); recorded in {path}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="fedcoin deploy", description=__doc__.splitlines()[0])
    configure(p)
    raise SystemExit(run(p.parse_args()))
