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
    return contract
