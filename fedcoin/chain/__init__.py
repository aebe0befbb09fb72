"""The chain binding: web3.py access to the deployed FedCoin contract.

A small package, one concern a module:

* :mod:`~fedcoin.chain.rpc` — retries with backoff, connecting, nonce locks, signing and sending;
* :mod:`~fedcoin.chain.errors` — the errors, and revert data decoded into custom errors;
* :mod:`~fedcoin.chain.types` — ``IntEnum`` mirrors of every Solidity enum, view and event dataclasses;
* :mod:`~fedcoin.chain.binding` — :class:`FedCoin`, every function, event and view;
* :mod:`~fedcoin.chain.artifact`, :mod:`~fedcoin.chain.deployment`, :mod:`~fedcoin.chain.keys` —
  the shipped ABI, recorded deployments, and keys from keystores or the environment.

The names most callers need are re-exported here (``from fedcoin.chain import FedCoin``).
"""

from fedcoin.chain.binding import FedCoin, open_fedcoin
from fedcoin.chain.errors import ChainError, ContractRevert, RPCUnavailable, TransactionTimeout
from fedcoin.chain.rpc import connect, with_retries
from fedcoin.chain.types import (
    EVENT_NAMES,
    BlockRecord,
    CommitmentInfo,
    CreditReason,
    Event,
    RoundInfo,
    RoundStatus,
    TaskConfig,
    TaskInfo,
    TaskStatus,
    TxResult,
    Verdict,
)

__all__ = [
    "EVENT_NAMES", "BlockRecord", "ChainError", "CommitmentInfo", "ContractRevert", "CreditReason", "Event",
    "FedCoin", "RPCUnavailable", "RoundInfo", "RoundStatus", "TaskConfig", "TaskInfo", "TaskStatus",
    "TransactionTimeout", "TxResult", "Verdict", "connect", "open_fedcoin", "with_retries",
]
