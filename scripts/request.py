"""`brownie run request --network NAME`: deposit a budget V for a new FedCoin task.

brownie passes no arguments to ``main()``, so the request comes from environment variables
(the same checks and messages as ``fedcoin request``, see fedcoin/roles/request.py):

    FEDCOIN_SERVER         the FL server's address (required)
    FEDCOIN_CLIENTS        comma-separated client addresses, or @FILE (required)
    FEDCOIN_V_WEI          budget V in wei, or with a unit such as 1.5ether (required)
    FEDCOIN_ROUNDS         number of rounds R (default 1)
    FEDCOIN_SPLIT          TrainPrice,ComPrice,SapPrice basis points (default 7000,1000,2000)
    FEDCOIN_ACCEPT_WINDOW  seconds the server has to accept (default 3600)
    FEDCOIN_PAYMENT        shapley | data-cost | data-cost-gated (default shapley; docs/rr.md)
    FEDCOIN_MAX_DATA_COST  the largest n_k a client may register (default: no cap)
    FEDCOIN_CONTRACT       FedCoin address (default: fedcoin.chain.deployment's record for the chain)
    FEDCOIN_FOLLOW=1       wait until the task completes or is refunded, print the accounting
    FEDCOIN_POLL, FEDCOIN_TIMEOUT   seconds between polls / before giving up following
    FEDCOIN_STATUS=1 with FEDCOIN_TASK=N   only print task N's accounting

The requester's key: $FEDCOIN_PRIVATE_KEY or $FEDCOIN_KEYSTORE (+ $FEDCOIN_KEYSTORE_PASSWORD),
see fedcoin/chain/keys.py. On a local Anvil (chain 31337) without either, Anvil's development
account 0 signs — the account brownie's ``accounts[0]`` is there — and a line says so.
The RPC URL is the brownie network's.
"""

import os

from brownie import chain, web3

from fedcoin.roles import request
from fedcoin.chain.keys import dev_private_keys
from fedcoin.chain.keys import KEY_ENV, KEYSTORE_ENV

from fedcoin.protocol.constants import ANVIL_CHAIN_ID


def _default_dev_key():
    """Anvil's public dev key 0, only on chain 31337 where the node holds that account unlocked."""
    if os.environ.get(KEY_ENV) or os.environ.get(KEYSTORE_ENV) or chain.id != ANVIL_CHAIN_ID:
        return
    key = dev_private_keys(1)[0]
    from eth_account import Account

    address = Account.from_key(key).address
    if address in web3.eth.accounts:
        print(f"no ${KEY_ENV} or ${KEYSTORE_ENV}: signing with Anvil's development account {address}")
        os.environ[KEY_ENV] = key


def main():
    _default_dev_key()
    rc = request.main(request.argv_from_env(os.environ, web3.provider.endpoint_uri))
    if rc:
        raise SystemExit(rc)
