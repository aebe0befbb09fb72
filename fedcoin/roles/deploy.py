"""``fedcoin deploy``: deploy FedCoin to an RPC endpoint and record its address.

The signing key comes from :mod:`fedcoin.chain.keys` (a keystore file or ``$FEDCOIN_PRIVATE_KEY``),
never from the command line. Constructor parameters default to
:class:`fedcoin.chain.deployment.DeployParams`; flags override single fields. The address is printed
and recorded in ``$FEDCOIN_HOME/deployments/<chainId>.json`` (:mod:`fedcoin.chain.deployment`).

With ``--flchain`` it also deploys FLChain (``contracts/FLChain.sol``) reading the new FedCoin,
with ``--auth ADDRESS`` as its authority (default: the deployer) and
:class:`fedcoin.flchain.binding.FLChainParams` defaults overridden by ``--min-deposit``,
``--report-fee``, ``--intention-fee``, ``--reward-bps``, ``--compensation-bps``, and records it
under the name ``FLChain`` (what ``open_flchain`` and ``fedcoin flchain`` read). Every FLChain
parameter is checked before FedCoin is deployed, so a bad one sends nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from fedcoin.chain.deployment import DeployParams, record_deployment
from fedcoin.chain.keys import KeyLoadError, account_from_args, add_key_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    from fedcoin.roles.flchain_cli import add_flchain_param_arguments

    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    add_key_arguments(parser)
    for f in dataclasses.fields(DeployParams):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=None,
                            help=f"constructor parameter (default {f.default})")
    g = parser.add_argument_group("FLChain (with --flchain)")
    g.add_argument("--flchain", action="store_true", help="also deploy FLChain reading the new FedCoin, and record it")
    add_flchain_param_arguments(g)


def params_from_args(args: argparse.Namespace) -> DeployParams:
    """DeployParams defaults with the fields given on the command line replaced."""
    over = {f.name: getattr(args, f.name) for f in dataclasses.fields(DeployParams) if getattr(args, f.name, None) is not None}
    return dataclasses.replace(DeployParams(), **over)


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, FedCoin, connect
    from fedcoin.roles.flchain_cli import FLCliError, deploy_flchain, flchain_params_from_args, parse_address

    try:
        account = account_from_args(args)
        fl_params = fl_auth = None
        if getattr(args, "flchain", False):
            fl_params = flchain_params_from_args(args)
            fl_auth = account.address if args.auth is None else parse_address(args.auth, "--auth")
        elif args.auth is not None or any(getattr(args, f, None) is not None for f in (
                "min_deposit", "report_fee", "intention_fee", "reward_bps", "compensation_bps")):
            raise FLCliError("--auth and the FLChain parameters need --flchain")
    except (KeyLoadError, FLCliError) as e:
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
    if fl_params is not None:
        try:
            deploy_flchain(w3, account, fc.address, fl_auth, fl_params)
        except ChainError as e:
            print(f"fedcoin deploy: FedCoin is deployed and recorded, but FLChain failed: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="fedcoin deploy", description=__doc__.splitlines()[0])
    configure(p)
    raise SystemExit(run(p.parse_args()))
