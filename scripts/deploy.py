"""`brownie run deploy --network NAME`: deploy FedCoin and record its address.

Works on `anvil`/`development` (the node's first unlocked account signs) and on any RPC
network configured in brownie (set $FEDCOIN_PRIVATE_KEY or $FEDCOIN_KEYSTORE, see
fedcoin/chain/keys.py). Constructor parameters: fedcoin.chain.deployment.DeployParams. Fees: EIP-1559 with
an automatic priority fee. The address is recorded by fedcoin.chain.deployment.record_deployment.
"""

import os

from brownie import FedCoin, accounts, chain, network

from fedcoin.chain.deployment import DeployParams, record_deployment
from fedcoin.chain.keys import KEY_ENV, KEYSTORE_ENV, load_account


def _deployer():
    if os.environ.get(KEY_ENV) or os.environ.get(KEYSTORE_ENV):
        return accounts.add(load_account().key.hex())
    if len(accounts):
        return accounts[0]
    raise SystemExit(f"no deployer: set ${KEY_ENV} or ${KEYSTORE_ENV}")


def main():
    network.priority_fee("auto")
    deployer = _deployer()
    params = DeployParams()
    contract = FedCoin.deploy(*params.as_args(), {"from": deployer})
    path = record_deployment(chain.id, contract.address, tx_hash=contract.tx.txid, block=contract.tx.block_number,
                             deployer=deployer.address, params=params)
    print(f"FedCoin deployed at {contract.address} (chain {chain.id}); recorded in {path}")
    return contract
