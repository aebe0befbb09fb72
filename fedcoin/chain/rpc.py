"""JSON-RPC plumbing: retries with backoff, connecting, per-account nonce locks, and signing and
sending transactions with explicit EIP-1559 fees.

Transactions are signed locally (a ``LocalAccount`` from :mod:`fedcoin.chain.keys`); a
per-account lock serializes nonce assignment so several threads (miners, server workers) sharing
an account never collide.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from fedcoin.chain.errors import ChainError, ContractRevert, ErrorDecoder, RPCUnavailable, TransactionTimeout
from fedcoin.chain.types import TxResult
from fedcoin.protocol.constants import TX_GAS_CAP

DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei

_TRANSIENT = (ConnectionError, TimeoutError, OSError)


def _is_transient(e: BaseException) -> bool:
    import requests

    if isinstance(e, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(e, (ContractLogicError, Web3RPCError)):
        return False
    return isinstance(e, _TRANSIENT) and not isinstance(e, ChainError)


def with_retries(fn: Callable[[], Any], *, retries: int = 4, backoff: float = 0.25, what: str = "RPC call") -> Any:
    """Run ``fn``; retry transient transport failures with exponential backoff.

    Raises :class:`RPCUnavailable` when every attempt failed on transport.
    """
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - filtered right below
            if not _is_transient(e):
                raise
            if attempt == retries:
                raise RPCUnavailable(f"{what} failed after {retries + 1} attempts: {type(e).__name__}: {e}") from e
            time.sleep(backoff * (2**attempt))
    raise AssertionError("unreachable")


def connect(rpc_url: str, *, timeout: float = 60.0, retries: int = 3) -> Web3:
    """A ``Web3`` on ``rpc_url`` that answered ``eth_chainId``.

    Raises:
        RPCUnavailable: nothing answers there (with the URL in the message).
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        with_retries(lambda: w3.eth.chain_id, retries=retries, what=f"eth_chainId on {rpc_url}")
    except RPCUnavailable as e:
        raise RPCUnavailable(f"cannot reach the Ethereum RPC at {rpc_url} (is the node running?): {e.__cause__}") from e
    return w3



_LOCKS_GUARD = threading.Lock()
_NONCE_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def nonce_lock(w3: Web3, address: str) -> threading.Lock:
    """The process-wide lock for ``address`` on ``w3``'s endpoint (one per account)."""
    key = (str(getattr(w3.provider, "endpoint_uri", id(w3.provider))), to_checksum_address(address))
    with _LOCKS_GUARD:
        return _NONCE_LOCKS.setdefault(key, threading.Lock())




class Transactor:
    """Signs, sends and waits for transactions as ``account`` on ``w3``; runs calls with retries.

    Reverts are decoded with ``errors`` into :class:`ContractRevert`. ``decode_logs(receipt)``
    turns a mined receipt's logs into the events put on the :class:`TxResult`. Fees are EIP-1559
    with ``maxFeePerGas = 2·baseFee + priority``; ``gas_multiplier`` pads estimated gas (clamped
    to EIP-7825's cap). When ``fixed_gas`` is set, transactions use it and skip
    ``eth_estimateGas`` (so a revert happens on chain and is decoded from the mined receipt).
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount | None,
        errors: ErrorDecoder,
        *,
        decode_logs: Callable[[Any], list] = lambda receipt: [],
        priority_fee: int = DEFAULT_PRIORITY_FEE,
        gas_multiplier: float = 1.2,
        receipt_timeout: float = 120.0,
        retries: int = 4,
    ):
        self.w3, self.account, self.errors, self.decode_logs = w3, account, errors, decode_logs
        self.priority_fee, self.gas_multiplier = priority_fee, gas_multiplier
        self.receipt_timeout, self.retries = receipt_timeout, retries
        self.fixed_gas: int | None = None
        self._chain_id: int | None = None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.rpc(lambda: self.w3.eth.chain_id, "eth_chainId")
        return self._chain_id

    def rpc(self, fn: Callable[[], Any], what: str = "RPC call") -> Any:
        """``fn()`` with transport failures retried (:func:`with_retries`)."""
        return with_retries(fn, retries=self.retries, what=what)

    def call(self, fn: Any, name: str) -> Any:
        """``eth_call`` of a bound contract function, reverts decoded."""
        try:
            return self.rpc(lambda: fn.call({"from": self.account.address} if self.account else {}), f"eth_call {name}")
        except (ContractLogicError, Web3RPCError) as e:
            err = self.errors.from_exception(e, name)
            if err is None:
                raise
            raise err from None

    def fees(self) -> tuple[int, int]:
        block = self.rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")
        base = int(block.get("baseFeePerGas") or 0)
        return 2 * base + self.priority_fee, self.priority_fee
    def send(self, tx: dict, name: str, to: str | None) -> TxResult:
        """Sign and send ``{"data", "value"}`` to ``to`` (None: a contract creation); wait for it.

        Raises:
            ContractRevert: the estimate or the mined transaction reverted (decoded).
            TransactionTimeout: not mined within ``receipt_timeout``.
            RPCUnavailable: the node stayed unreachable through the retries.
        """
        if self.account is None:
            raise ChainError(f"{name}: this binding has no account to sign with")
        sender = self.account.address
        base = {"from": sender, "data": tx["data"], "value": tx.get("value", 0)}
        if to is not None:
            base["to"] = to
        if self.fixed_gas is not None:
            gas = self.fixed_gas
        else:
            try:
                # Against the pending block: deadlines compare with block time, and on a chain
                # that mines only on demand (Anvil) the latest block can be minutes old, so a
                # reveal estimated against it would revert for a window that is already open.
                estimate = self.rpc(lambda: self.w3.eth.estimate_gas(base, "pending"), f"eth_estimateGas {name}")
            except (ContractLogicError, Web3RPCError) as e:
                err = self.errors.from_exception(e, name)
                if err is None:
                    raise
                raise err from None
            gas = min(int(estimate * self.gas_multiplier) + 10_000, TX_GAS_CAP)
        max_fee, prio = self.fees()
        with nonce_lock(self.w3, sender):
            nonce = self.rpc(lambda: self.w3.eth.get_transaction_count(sender, "pending"), "eth_getTransactionCount")
            full = dict(base, nonce=nonce, gas=gas, maxFeePerGas=max_fee, maxPriorityFeePerGas=prio,
                        chainId=self.chain_id, type=2)
            signed = self.account.sign_transaction(full)
            tx_hash = self._send_raw(signed.raw_transaction, keccak(signed.raw_transaction))
        try:
            receipt = self.rpc(
                lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout, poll_latency=0.05),
                "eth_getTransactionReceipt",
            )
        except TimeExhausted as e:
            raise TransactionTimeout(f"{name}: transaction {tx_hash.hex()} not mined within {self.receipt_timeout}s") from e
        if receipt["status"] != 1:
            raise self._failed(base, receipt, name)
        fee = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0))
        return TxResult("0x" + bytes(tx_hash).hex(), receipt, int(receipt["gasUsed"]), fee, self.decode_logs(receipt))
    def _send_raw(self, raw: bytes, expected_hash: bytes) -> bytes:
        def send() -> bytes:
            try:
                return bytes(self.w3.eth.send_raw_transaction(raw))
            except Web3RPCError as e:  # a retried send of the same tx is not an error
                if "already known" in str(e).lower():
                    return expected_hash
                raise

        return self.rpc(send, "eth_sendRawTransaction")
    def _failed(self, base: dict, receipt: Any, name: str) -> ContractRevert:
        try:
            self.w3.eth.call(base, receipt["blockNumber"] - 1)
        except (ContractLogicError, Web3RPCError) as e:
            err = self.errors.from_exception(e, name, receipt=receipt)
            if err is not None:
                return err
        return ContractRevert("Unknown", (), b"", receipt=receipt, function=name)
