"""`brownie run deploy --network NAME`: deploy FedCoin and record its address.

``--network anvil`` is brownie's built-in Anvil network, ``http://127.0.0.1:8545``: start the
node first (``fedcoin node``, or ``anvil`` with the flags in fedcoin/dev/devnet.py) and brownie
attaches to it. If nothing listens there brownie starts a throw-away Anvil of its own and kills
it on exit; this script refuses to deploy to that one (the address would be recorded for chain
31337 and be dead a second later). Any live network configured in brownie works too (set
$FEDCOIN_PRIVATE_KEY or $FEDCOIN_KEYSTORE, see fedcoin/chain/keys.py); on `anvil`/`development`
the node's first unlocked account signs.

Constructor parameters: fedcoin.chain.deployment.DeployParams. Fees: EIP-1559 with an
automatic priority fee. The address is recorded by fedcoin.chain.deployment.record_deployment,
and only once the node serves the contract's code at it: the recorded deployment is always
one whose code is on that chain.

FLChain too: with ``FEDCOIN_FLCHAIN=1`` in the environment the script then deploys FLChain
(``contracts/FLChain.sol``) reading the new FedCoin, with fedcoin.flchain.binding.FLChainParams
defaults and ``$FEDCOIN_FLCHAIN_AUTH`` as its authority (default: the deployer), and records it
under the name ``FLChain`` (where ``fedcoin flchain`` and ``open_flchain`` find it). Off by
default, so the plain FedCoin path is unchanged; ``fedcoin deploy --flchain`` is the same thing
from the fedcoin CLI.
"""

import os

from brownie import FedCoin, accounts, chain, network, web3

from fedcoin.chain.deployment import DeployParams, record_deployment
from fedcoin.chain.keys import KEY_ENV, KEYSTORE_ENV, load_account
from fedcoin.protocol.constants import TX_GAS_CAP


def _deployer():
    if os.environ.get(KEY_ENV) or os.environ.get(KEYSTORE_ENV):
        return accounts.add(load_account().key.hex())
    if len(accounts):
        return accounts[0]
    raise SystemExit(f"no deployer: set ${KEY_ENV} or ${KEYSTORE_ENV}")


def _refuse_throwaway_node():
    """Exit if brownie launched the node itself (it dies with this process)."""
    from brownie.network import rpc

    if rpc.is_active() and rpc.is_child():
        raise SystemExit(
            f"no node was running at {web3.provider.endpoint_uri}: brownie started a throw-away one that dies when "
            f"this command ends, so nothing was deployed or recorded. Start the node first (`fedcoin node`, "
            f"or `make shell` then `fedcoin node`) and run `brownie run deploy --network {network.show_active()}` again")


def main():
    _refuse_throwaway_node()
    network.priority_fee("auto")
    deployer = _deployer()
    params = DeployParams()
    # brownie's development networks (`--network anvil`) ask for the block gas limit, which a
    # node enforcing EIP-7825 (`fedcoin node`) refuses: ask for the estimate plus a margin instead
    gas = min(TX_GAS_CAP, int(FedCoin.deploy.estimate_gas(*params.as_args(), {"from": deployer}) * 1.2))
    contract = FedCoin.deploy(*params.as_args(), {"from": deployer, "gas_limit": gas})
    if not web3.eth.get_code(contract.address):
        raise SystemExit(f"the node reports no code at {contract.address} after deployment: nothing recorded")
    path = record_deployment(chain.id, contract.address, tx_hash=contract.tx.txid, block=contract.tx.block_number,
                             deployer=deployer.address, params=params)
    print(f"FedCoin deployed at {contract.address} (chain {chain.id}); recorded in {path}")
    if os.environ.get("FEDCOIN_FLCHAIN", "").strip().lower() in ("1", "true", "yes"):
        _deploy_flchain(contract, deployer)
    return contract


def _deploy_flchain(fedcoin, deployer):
    from brownie import FLChain
    from eth_utils import to_checksum_address

    from fedcoin.flchain.binding import FLChainParams

    params = FLChainParams()
    auth = to_checksum_address(os.environ.get("FEDCOIN_FLCHAIN_AUTH") or deployer.address)
    args = [fedcoin.address, auth, *params.as_args()]
    gas = min(TX_GAS_CAP, int(FLChain.deploy.estimate_gas(*args, {"from": deployer}) * 1.2))
    flc = FLChain.deploy(*args, {"from": deployer, "gas_limit": gas})
    if not web3.eth.get_code(flc.address):
        raise SystemExit(f"the node reports no code at {flc.address} after deployment: FLChain not recorded")
    path = record_deployment(chain.id, flc.address, tx_hash=flc.tx.txid, block=flc.tx.block_number,
                             deployer=deployer.address, params=params, name="FLChain")
    print(f"FLChain deployed at {flc.address} beside FedCoin {fedcoin.address} (auth {auth}); recorded in {path}")
    return flc
