"""web3.py bindings for the FedCoin contract: deploy, every function, every event.

The ABI and bytecode come from the artifact shipped in ``fedcoin/artifacts/FedCoin.json``, so
no compiler is needed at run time. Transactions are signed locally (a ``LocalAccount`` from
:mod:`fedcoin.keys`) with explicit EIP-1559 fees; a per-account lock serializes nonce
assignment so several threads (miners, server workers) sharing an account never collide.
Reverts — whether caught while estimating gas or from a mined failed transaction — raise
:class:`ContractRevert` carrying the custom error's name and decoded arguments::

    try:
        fc.register_update(task_id, 0, h, "cid", 100)
    except ContractRevert as e:
        assert e.name == "FedCoinNotListedClient" and e.args_ == (client,)

Typical use::

    w3 = connect("http://127.0.0.1:8545")
    fc = FedCoin.deploy(w3, account)                  # or FedCoin(w3, address, account)
    task_id = fc.create_task(server, clients, rounds=1, value=10**18).task_id
    fc.as_account(server_account).accept_task(task_id)

Read vectors from events (:meth:`FedCoin.reveals`, :meth:`FedCoin.registrations`,
:meth:`FedCoin.round_finalized`): they never reach contract storage.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Sequence

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from . import commitment as _commitment
from . import merkle as _merkle
from . import posap as _posap
from .build import load_artifact
from .deployment import DeployParams

#: EIP-7825's per-transaction gas cap; gas limits are clamped to it.
TX_GAS_CAP = 16_777_216
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei

#: Every event FedCoin emits (each has a reader: :meth:`FedCoin.events`).
EVENT_NAMES = (
    "TaskCreated", "TaskAccepted", "TaskRefunded", "TaskCompleted", "UpdateRegistered",
    "ShapleyTaskPublished", "Committed", "Revealed", "RoundReopened", "RoundAbandoned",
    "RoundFinalized", "PoSapBlock", "DifficultyAdjusted", "Credited", "Claimed", "Withdrawn",
)


# ----------------------------------------------------------------------------- errors


class ChainError(RuntimeError):
    """Base class of this module's errors."""


class RPCUnavailable(ChainError, ConnectionError):
    """The JSON-RPC endpoint cannot be reached (after retries)."""


class ContractRevert(ChainError):
    """A call or transaction reverted.

    Attributes:
        name: the custom error's name (``"FedCoinNotListedClient"``), ``"Error"`` for
            ``Error(string)``, ``"Panic"`` for ``Panic(uint256)``, or ``"Unknown"``.
        args_: the decoded arguments as a tuple (addresses checksummed, bytes as ``bytes``).
        data: the raw revert data.
        receipt: the failed transaction's receipt when it was mined, else None.
    """

    def __init__(self, name: str, args_: tuple, data: bytes, receipt: Any = None, function: str = ""):
        self.name = name
        self.args_ = tuple(args_)
        self.data = bytes(data)
        self.receipt = receipt
        self.function = function
        where = f" in {function}" if function else ""
        super().__init__(f"{name}{self.args_!r}{where}")


class TransactionTimeout(ChainError, TimeoutError):
    """A sent transaction was not mined in time (it may still be mined later)."""


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction.

    Attributes:
        tx_hash: hex hash; receipt: the web3 receipt; gas_used; fee: gas_used × effective price
        (wei the sender paid for gas); events: the FedCoin events it emitted, decoded.
    """

    tx_hash: str
    receipt: Any
    gas_used: int
    fee: int
    events: list["Event"] = field(default_factory=list)

    def event(self, name: str) -> "Event":
        """The first emitted event called ``name`` (KeyError if none)."""
        for e in self.events:
            if e.name == name:
                return e
        raise KeyError(f"transaction {self.tx_hash} emitted no {name}")

    @property
    def task_id(self) -> int:
        """The id of the task a ``createTask`` transaction created."""
        return self.event("TaskCreated").args["taskId"]


@dataclass(frozen=True)
class Event:
    """A decoded FedCoin log."""

    name: str
    args: dict
    block_number: int
    log_index: int
    tx_hash: str

    def __getitem__(self, key: str) -> Any:
        return self.args[key]


@dataclass(frozen=True)
class TaskInfo:
    """``FedCoin.getTask`` (fields in Solidity order). status: 0 None, 1 Created, 2 Accepted,
    3 Completed, 4 Refunded."""

    requester: str
    accept_deadline: int
    rounds: int
    server: str
    round_started_at: int
    current_round: int
    client_count: int
    train_bps: int
    com_bps: int
    sap_bps: int
    status: int
    clients_root: bytes
    budget: int
    escrow: int
    unclaimed: int
    bonds: int


@dataclass(frozen=True)
class RoundInfo:
    """``FedCoin.getRound``. status: 0 Open, 1 Published, 2 Finalized, 3 Abandoned."""

    status: int
    attempt: int
    p: int
    aggregation: int
    registered: int
    commit_count: int
    reveal_count: int
    published_at: int
    commit_deadline: int
    reveal_deadline: int
    commit_window: int
    reveal_window: int
    registration_acc: bytes
    reveal_acc: bytes
    spec_hash: bytes
    difficulty: int
    bonds_held: int
    forfeited: int
    payouts_root: bytes


@dataclass(frozen=True)
class CommitmentInfo:
    """``FedCoin.getCommitment`` (hash is zero when there is none)."""

    hash: bytes
    bond: int
    seq: int
    committed_at: int
    revealed: bool


@dataclass(frozen=True)
class BlockRecord:
    """``FedCoin.getBlock``: one PoSap block record."""

    task_id: int
    round: int
    winner: str
    mean_hash: bytes
    winner_hash: bytes
    prev_hash: bytes
    difficulty: int
    payouts_root: bytes
    record_hash: bytes


TASK_STATUS = ("None", "Created", "Accepted", "Completed", "Refunded")
ROUND_STATUS = ("Open", "Published", "Finalized", "Abandoned")


def _norm(v: Any) -> Any:
    if isinstance(v, (bytes, HexBytes)):
        return bytes(v)
    if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
        return to_checksum_address(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_norm(x) for x in v) if isinstance(v, tuple) else [_norm(x) for x in v]
    return v


def _struct(cls, value) -> Any:
    vals = [_norm(v) for v in value]
    if len(vals) != len(fields(cls)):
        raise ChainError(f"{cls.__name__}: expected {len(fields(cls))} fields, got {len(vals)}")
    return cls(*vals)


# ----------------------------------------------------------------------------- rpc plumbing

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


def open_fedcoin(rpc_url: str, address: str | None = None, account: LocalAccount | None = None) -> "FedCoin":
    """The FedCoin contract behind ``rpc_url``: at ``address``, else the deployment recorded for
    the node's chain (:func:`fedcoin.deployment.deployed_address`). Every CLI opens it here.

    Raises:
        RPCUnavailable: nothing answers at ``rpc_url``.
        LookupError: no ``address`` given and none recorded for the chain.
        ValueError: ``address`` is not an address, or there is no contract code at it.
    """
    from .deployment import deployed_address

    w3 = connect(rpc_url)
    address = address or deployed_address(w3.eth.chain_id)
    try:
        address = to_checksum_address(address)
    except (ValueError, TypeError):
        raise ValueError(f"{address!r} is not an address") from None
    if not w3.eth.get_code(address):
        raise ValueError(f"no contract code at {address} on {rpc_url} (wrong contract address or chain?)")
    return FedCoin(w3, address, account)


def nonce_lock(w3: Web3, address: str) -> threading.Lock:
    """The process-wide lock for ``address`` on ``w3``'s endpoint (one per account)."""
    key = (str(getattr(w3.provider, "endpoint_uri", id(w3.provider))), to_checksum_address(address))
    with _LOCKS_GUARD:
        return _NONCE_LOCKS.setdefault(key, threading.Lock())


# ----------------------------------------------------------------------------- error decoding


class ErrorDecoder:
    """Turns revert data into (name, args) using an ABI's ``error`` entries."""

    def __init__(self, abi: Sequence[dict]):
        self._by_selector: dict[bytes, tuple[str, list[str]]] = {
            bytes.fromhex("08c379a0"): ("Error", ["string"]),
            bytes.fromhex("4e487b71"): ("Panic", ["uint256"]),
        }
        for item in abi:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                sig = f"{item['name']}({','.join(types)})"
                self._by_selector[keccak(text=sig)[:4]] = (item["name"], types)

    def decode(self, data: bytes) -> tuple[str, tuple]:
        data = bytes(data)
        if len(data) < 4 or data[:4] not in self._by_selector:
            return "Unknown", (data,)
        name, types = self._by_selector[data[:4]]
        try:
            args = abi_decode(types, data[4:])
        except Exception:  # noqa: BLE001 - malformed data is reported raw
            return name, (data[4:],)
        return name, tuple(_norm(a) for a in args)

    def from_exception(self, e: BaseException, function: str = "", receipt: Any = None) -> ContractRevert | None:
        data = _revert_data(e)
        if data is None:
            return None
        name, args = self.decode(data)
        return ContractRevert(name, args, data, receipt=receipt, function=function)


def _revert_data(e: BaseException) -> bytes | None:
    raw = getattr(e, "data", None)
    if isinstance(raw, dict):
        raw = raw.get("data")
    if raw is None and isinstance(e, Web3RPCError):
        resp = getattr(e, "rpc_response", None) or {}
        raw = (resp.get("error") or {}).get("data")
        if isinstance(raw, dict):
            raw = raw.get("data")
    if raw is None and isinstance(e, ContractLogicError):
        return b""
    if isinstance(raw, str):
        if raw.startswith("Reverted "):
            raw = raw[len("Reverted "):]
        try:
            return bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
        except ValueError:
            return None
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    return None


# ----------------------------------------------------------------------------- the binding


class FedCoin:
    """A FedCoin contract at ``address`` on ``w3``, acting as ``account`` (None: read-only).

    Write methods return :class:`TxResult` (or raise :class:`ContractRevert`); view methods
    return plain Python values / dataclasses; event readers return lists of :class:`Event`
    in chain order. ``gas_multiplier`` pads estimated gas; fees are EIP-1559 with
    ``maxFeePerGas = 2·baseFee + priority``.
    """

    def __init__(
        self,
        w3: Web3,
        address: str,
        account: LocalAccount | None = None,
        *,
        priority_fee: int = DEFAULT_PRIORITY_FEE,
        gas_multiplier: float = 1.2,
        receipt_timeout: float = 120.0,
        retries: int = 4,
    ):
        art = load_artifact("FedCoin")
        self.w3 = w3
        self.abi = art["abi"]
        self.address = to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=self.abi)
        self.account = account
        self.priority_fee = priority_fee
        self.gas_multiplier = gas_multiplier
        self.receipt_timeout = receipt_timeout
        self.retries = retries
        self.errors = ErrorDecoder(self.abi)
        self._chain_id: int | None = None
        self._client_cache: dict[tuple, Any] = {}
        #: When set, transactions use this gas limit and skip eth_estimateGas (so a revert
        #: happens on chain and is decoded from the mined receipt).
        self.fixed_gas: int | None = None

    # ---- construction

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, params: DeployParams | None = None, **kwargs) -> "FedCoin":
        """Deploy a new FedCoin with ``params`` (defaults: :class:`DeployParams`)."""
        params = params or DeployParams()
        art = load_artifact("FedCoin")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        data = factory.constructor(*params.as_args())._build_transaction({"from": account.address})["data"]
        tmp = cls.__new__(cls)
        cls.__init__(tmp, w3, "0x" + "00" * 20, account, **kwargs)
        res = tmp._send({"data": data}, "constructor", to=None)
        address = res.receipt["contractAddress"]
        inst = cls(w3, address, account, **kwargs)
        inst.deploy_result = res  # type: ignore[attr-defined]
        return inst

    def as_account(self, account: LocalAccount | None) -> "FedCoin":
        """The same contract, acting as another account (shares caches, not the account)."""
        other = FedCoin(self.w3, self.address, account, priority_fee=self.priority_fee,
                        gas_multiplier=self.gas_multiplier, receipt_timeout=self.receipt_timeout, retries=self.retries)
        other._chain_id = self._chain_id
        other._client_cache = self._client_cache
        return other

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: self.w3.eth.chain_id)
        return self._chain_id

    # ---- plumbing

    def _rpc(self, fn: Callable[[], Any], what: str = "RPC call") -> Any:
        return with_retries(fn, retries=self.retries, what=what)

    def _fees(self) -> tuple[int, int]:
        block = self._rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")
        base = int(block.get("baseFeePerGas") or 0)
        return 2 * base + self.priority_fee, self.priority_fee

    def _call(self, name: str, *args) -> Any:
        fn = self.contract.functions[name](*args)
        try:
            return self._rpc(lambda: fn.call({"from": self.account.address} if self.account else {}), f"eth_call {name}")
        except (ContractLogicError, Web3RPCError) as e:
            err = self.errors.from_exception(e, name)
            if err is None:
                raise
            raise err from None

    def _transact(self, name: str, *args, value: int = 0) -> TxResult:
        data = self.contract.functions[name](*args)._encode_transaction_data()
        return self._send({"data": data, "value": value}, name, to=self.address)

    def _send(self, tx: dict, name: str, to: str | None) -> TxResult:
        if self.account is None:
            raise ChainError(f"{name}: this FedCoin binding has no account to sign with")
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
                estimate = self._rpc(lambda: self.w3.eth.estimate_gas(base, "pending"), f"eth_estimateGas {name}")
            except (ContractLogicError, Web3RPCError) as e:
                err = self.errors.from_exception(e, name)
                if err is None:
                    raise
                raise err from None
            gas = min(int(estimate * self.gas_multiplier) + 10_000, TX_GAS_CAP)
        max_fee, prio = self._fees()
        with nonce_lock(self.w3, sender):
            nonce = self._rpc(lambda: self.w3.eth.get_transaction_count(sender, "pending"), "eth_getTransactionCount")
            full = dict(base, nonce=nonce, gas=gas, maxFeePerGas=max_fee, maxPriorityFeePerGas=prio,
                        chainId=self.chain_id, type=2)
            signed = self.account.sign_transaction(full)
            tx_hash = self._send_raw(signed.raw_transaction, keccak(signed.raw_transaction))
        try:
            receipt = self._rpc(
                lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout, poll_latency=0.05),
                "eth_getTransactionReceipt",
            )
        except TimeExhausted as e:
            raise TransactionTimeout(f"{name}: transaction {tx_hash.hex()} not mined within {self.receipt_timeout}s") from e
        if receipt["status"] != 1:
            raise self._failed(base, receipt, name)
        fee = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0))
        return TxResult("0x" + bytes(tx_hash).hex(), receipt, int(receipt["gasUsed"]), fee, self._decode_logs(receipt))

    def _send_raw(self, raw: bytes, expected_hash: bytes) -> bytes:
        def send() -> bytes:
            try:
                return bytes(self.w3.eth.send_raw_transaction(raw))
            except Web3RPCError as e:  # a retried send of the same tx is not an error
                if "already known" in str(e).lower():
                    return expected_hash
                raise

        return self._rpc(send, "eth_sendRawTransaction")

    def _failed(self, base: dict, receipt: Any, name: str) -> ContractRevert:
        try:
            self.w3.eth.call(base, receipt["blockNumber"] - 1)
        except (ContractLogicError, Web3RPCError) as e:
            err = self.errors.from_exception(e, name, receipt=receipt)
            if err is not None:
                return err
        return ContractRevert("Unknown", (), b"", receipt=receipt, function=name)

    def _decode_logs(self, receipt: Any) -> list[Event]:
        out = []
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) != self.address:
                continue
            ev = self._decode_log(log)
            if ev is not None:
                out.append(ev)
        return out

    def _event_by_topic(self) -> dict[bytes, Any]:
        if not hasattr(self, "_topics"):
            self._topics = {}
            for item in self.abi:
                if item.get("type") == "event":
                    sig = f"{item['name']}({','.join(_canonical_type(i) for i in item['inputs'])})"
                    self._topics[keccak(text=sig)] = self.contract.events[item["name"]]()
        return self._topics

    def _decode_log(self, log: Any) -> Event | None:
        if not log["topics"]:
            return None
        ev = self._event_by_topic().get(bytes(log["topics"][0]))
        if ev is None:
            return None
        d = ev.process_log(log)
        return Event(
            name=d["event"], args={k: _norm(v) for k, v in d["args"].items()},
            block_number=int(d["blockNumber"]), log_index=int(d["logIndex"]),
            tx_hash="0x" + bytes(d["transactionHash"]).hex(),
        )

    # ---- events

    def events(self, name: str, *, from_block: int | str = 0, to_block: int | str = "latest", **indexed) -> list[Event]:
        """Logs of event ``name``, decoded, in chain order; ``indexed`` filters indexed args
        (e.g. ``taskId=1, round=0``)."""
        ev = self.contract.events[name]
        topic_args = {k: v for k, v in indexed.items() if v is not None}
        logs = self._rpc(
            lambda: ev().get_logs(from_block=from_block, to_block=to_block, argument_filters=topic_args or None),
            f"eth_getLogs {name}",
        )
        out = [
            Event(name=name, args={k: _norm(v) for k, v in lg["args"].items()}, block_number=int(lg["blockNumber"]),
                  log_index=int(lg["logIndex"]), tx_hash="0x" + bytes(lg["transactionHash"]).hex())
            for lg in logs
        ]
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out

    def task_created_events(self, task_id: int | None = None, **kw) -> list[Event]:
        return self.events("TaskCreated", taskId=task_id, **kw)

    def task_accepted_events(self, task_id: int | None = None, **kw) -> list[Event]:
        return self.events("TaskAccepted", taskId=task_id, **kw)

    def task_refunded_events(self, task_id: int | None = None, **kw) -> list[Event]:
        return self.events("TaskRefunded", taskId=task_id, **kw)

    def task_completed_events(self, task_id: int | None = None, **kw) -> list[Event]:
        return self.events("TaskCompleted", taskId=task_id, **kw)

    def update_registered_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("UpdateRegistered", taskId=task_id, round=round, **kw)

    def published_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("ShapleyTaskPublished", taskId=task_id, round=round, **kw)

    def committed_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("Committed", taskId=task_id, round=round, **kw)

    def revealed_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("Revealed", taskId=task_id, round=round, **kw)

    def reopened_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("RoundReopened", taskId=task_id, round=round, **kw)

    def abandoned_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("RoundAbandoned", taskId=task_id, round=round, **kw)

    def finalized_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("RoundFinalized", taskId=task_id, round=round, **kw)

    def block_events(self, **kw) -> list[Event]:
        return self.events("PoSapBlock", **kw)

    def difficulty_events(self, **kw) -> list[Event]:
        return self.events("DifficultyAdjusted", **kw)

    def credited_events(self, account: str | None = None, task_id: int | None = None, **kw) -> list[Event]:
        return self.events("Credited", account=account, taskId=task_id, **kw)

    def claimed_events(self, task_id: int | None = None, round: int | None = None, client: str | None = None, **kw) -> list[Event]:
        return self.events("Claimed", taskId=task_id, round=round, client=client, **kw)

    def withdrawn_events(self, account: str | None = None, **kw) -> list[Event]:
        return self.events("Withdrawn", account=account, **kw)

    # ---- event-derived helpers (what miners, the server and claimers need)

    def task_clients(self, task_id: int) -> list[str]:
        """The task's listed clients (ascending), from its TaskCreated event."""
        root = self.get_task(task_id).clients_root  # cache key: survives reorgs/evm_revert
        if (task_id, root) not in self._client_cache:
            evs = [e for e in self.task_created_events(task_id) if e.args["clientsRoot"] == root]
            if not evs:
                raise ChainError(f"no TaskCreated event for task {task_id}")
            self._client_cache[(task_id, root)] = list(evs[-1].args["clients"])
        return self._client_cache[(task_id, root)]

    def client_proof(self, task_id: int, client: str) -> list[bytes]:
        """Merkle proof that ``client`` is listed in the task (for :meth:`register_update`)."""
        clients = self.task_clients(task_id)
        client = to_checksum_address(client)
        if client not in clients:
            return []
        key = ("tree", tuple(clients))
        if key not in self._client_cache:
            self._client_cache[key] = _merkle.client_tree(clients)  # type: ignore[assignment]
        return self._client_cache[key].proof(clients.index(client))  # type: ignore[union-attr]

    def registrations(self, task_id: int, round: int) -> list[Event]:
        """The round's UpdateRegistered events in registration (= vector) order."""
        return sorted(self.update_registered_events(task_id, round), key=lambda e: e.args["index"])

    def registered_clients(self, task_id: int, round: int) -> list[str]:
        """Registered clients in registration order (what ``finalize`` takes)."""
        return [e.args["client"] for e in self.registrations(task_id, round)]

    def reveals(self, task_id: int, round: int, attempt: int | None = None) -> list[_posap.Reveal]:
        """Reveals of an attempt (default: the round's current attempt) in reveal order."""
        if attempt is None:
            attempt = self.get_round(task_id, round).attempt
        return [
            _posap.Reveal(e.args["miner"], e.args["seq"], e.args["iterations"], tuple(e.args["values"]))
            for e in self.revealed_events(task_id, round)
            if e.args["attempt"] == attempt
        ]

    def round_finalized(self, task_id: int, round: int) -> Event | None:
        """The round's RoundFinalized event (mean, amounts, root) or None."""
        evs = self.finalized_events(task_id, round)
        return evs[-1] if evs else None

    def payout_proof(self, task_id: int, round: int, client: str) -> tuple[int, list[bytes]]:
        """(amount, proof) for ``client``'s claim, rebuilt from the round's events."""
        ev = self.round_finalized(task_id, round)
        if ev is None:
            raise ChainError(f"round {round} of task {task_id} is not finalized")
        clients = self.registered_clients(task_id, round)
        client = to_checksum_address(client)
        if client not in clients:
            raise ChainError(f"{client} did not register in round {round} of task {task_id}")
        i = clients.index(client)
        amounts = list(ev.args["amounts"])
        return amounts[i], _merkle.payout_tree(task_id, round, clients, amounts).proof(i)

    # ---- writes

    def create_task(
        self,
        server: str,
        clients: Iterable[str],
        rounds: int,
        value: int,
        *,
        split: Sequence[int] = _posap.DEFAULT_SPLIT,
        accept_deadline: int | None = None,
        accept_window: int = 3600,
        sort_clients: bool = True,
    ) -> TxResult:
        """``createTask`` with budget ``value``; ``.task_id`` on the result is the new id.

        Clients are checksummed and sorted ascending by address (the contract requires it;
        pass ``sort_clients=False`` to send them as given). The deadline defaults to the
        latest block's time + ``accept_window``.
        """
        cl = [to_checksum_address(c) for c in clients]
        if sort_clients:
            cl = sorted(cl, key=lambda a: int(a, 16))
        if accept_deadline is None:
            accept_deadline = self.latest_timestamp() + accept_window
        return self._transact("createTask", to_checksum_address(server), cl, rounds, *split, accept_deadline, value=value)

    def accept_task(self, task_id: int) -> TxResult:
        """``acceptTask`` (as the server)."""
        return self._transact("acceptTask", task_id)

    def refund_unaccepted(self, task_id: int) -> TxResult:
        """``refundUnaccepted`` (anyone, after the acceptance deadline)."""
        return self._transact("refundUnaccepted", task_id)

    def refund_stalled(self, task_id: int) -> TxResult:
        """``refundStalled`` (anyone, once the current round is unpublished past the timeout)."""
        return self._transact("refundStalled", task_id)

    def register_update(
        self, task_id: int, round: int, update_hash: bytes, locator: str, data_cost: int,
        proof: Sequence[bytes] | None = None,
    ) -> TxResult:
        """``registerUpdate`` as the client; the listing proof is built from events if omitted."""
        if proof is None:
            proof = self.client_proof(task_id, self.account.address) if self.account else []
        return self._transact("registerUpdate", task_id, round, bytes(update_hash), locator, data_cost, [bytes(p) for p in proof])

    def publish_shapley_task(
        self, task_id: int, round: int, spec_hash: bytes, spec_locator: str, commit_deadline: int,
        reveal_deadline: int, aggregation: int = 0,
    ) -> TxResult:
        """``publishShapleyTask`` (as the server). aggregation: 0 FedAvg by n_k, 1 uniform."""
        return self._transact("publishShapleyTask", task_id, round, bytes(spec_hash), spec_locator, aggregation,
                              commit_deadline, reveal_deadline)

    def commit(self, task_id: int, round: int, commitment: bytes, bond: int | None = None) -> TxResult:
        """``commit`` with ``bond`` wei (default: the contract's minimum bond)."""
        return self._transact("commit", task_id, round, bytes(commitment), value=self.min_bond() if bond is None else bond)

    def commit_vector(
        self, task_id: int, round: int, values: Sequence[int], iterations: int, salt: bytes | None = None,
        bond: int | None = None,
    ) -> tuple[TxResult, bytes]:
        """Hash (values, iterations, salt) as :mod:`fedcoin.commitment` does and commit.

        Returns the result and the salt (fresh random when not given): keep it for the reveal.
        """
        salt = salt or _commitment.new_salt()
        h = _commitment.commitment_hash(self.chain_id, self.address, task_id, round, self.account.address,
                                        values, iterations, salt)
        return self.commit(task_id, round, h, bond), salt

    def reveal(self, task_id: int, round: int, values: Sequence[int], iterations: int, salt: bytes) -> TxResult:
        """``reveal`` (between the commit and reveal deadlines)."""
        return self._transact("reveal", task_id, round, [int(v) for v in values], iterations, bytes(salt))

    def finalize(
        self, task_id: int, round: int, clients: Sequence[str] | None = None,
        reveals: Sequence[_posap.Reveal] | None = None,
    ) -> TxResult:
        """``finalize``; the client list and the attempt's reveals come from events if omitted."""
        if clients is None:
            clients = self.registered_clients(task_id, round)
        if reveals is None:
            reveals = self.reveals(task_id, round)
        return self._transact("finalize", task_id, round, list(clients), [r.as_abi() for r in reveals])

    def claim(self, task_id: int, round: int, amount: int | None = None, proof: Sequence[bytes] | None = None) -> TxResult:
        """``claim`` the caller's payout; amount and proof come from events if omitted."""
        if amount is None or proof is None:
            amount, proof = self.payout_proof(task_id, round, self.account.address)
        return self._transact("claim", task_id, round, amount, [bytes(p) for p in proof])

    def withdraw(self) -> TxResult:
        """``withdraw`` the caller's whole credit."""
        return self._transact("withdraw")

    # ---- views

    def get_task(self, task_id: int) -> TaskInfo:
        return _struct(TaskInfo, self._call("getTask", task_id))

    def get_round(self, task_id: int, round: int) -> RoundInfo:
        return _struct(RoundInfo, self._call("getRound", task_id, round))

    def get_commitment(self, task_id: int, round: int, attempt: int, miner: str) -> CommitmentInfo:
        return _struct(CommitmentInfo, self._call("getCommitment", task_id, round, attempt, to_checksum_address(miner)))

    def get_block(self, height: int) -> BlockRecord:
        return _struct(BlockRecord, self._call("getBlock", height))

    def is_registered(self, task_id: int, round: int, client: str) -> bool:
        return self._call("isRegistered", task_id, round, to_checksum_address(client))

    def is_claimed(self, task_id: int, round: int, client: str) -> bool:
        return self._call("isClaimed", task_id, round, to_checksum_address(client))

    def credits(self, account: str) -> int:
        return self._call("credits", to_checksum_address(account))

    def liabilities(self) -> int:
        return self._call("liabilities")

    def totals(self) -> dict[str, int]:
        """The four sums whose total the balance must equal."""
        return {k: self._call(k) for k in ("totalEscrow", "totalUnclaimed", "totalCredits", "totalBonds")}

    def balance(self) -> int:
        """The contract's ether balance (wei)."""
        return self._rpc(lambda: self.w3.eth.get_balance(self.address), "eth_getBalance")

    def round_prices(self, task_id: int, round: int) -> tuple[int, int, int]:
        return tuple(self._call("roundPrices", task_id, round))  # type: ignore[return-value]

    def difficulty(self) -> int:
        return self._call("difficulty")

    def task_count(self) -> int:
        return self._call("taskCount")

    def block_count(self) -> int:
        return self._call("blockCount")

    def last_record_hash(self) -> bytes:
        return bytes(self._call("lastRecordHash"))

    def min_bond(self) -> int:
        return self._call("minBond")

    def max_iterations(self) -> int:
        return self._call("maxIterations")

    def distance_p(self) -> int:
        return self._call("distanceP")

    def target_block_time(self) -> int:
        return self._call("targetBlockTime")

    def publish_timeout(self) -> int:
        return self._call("publishTimeout")

    def params(self) -> DeployParams:
        """The deployed contract's constructor parameters (initial difficulty: the current D)."""
        return DeployParams(self.min_bond(), self.difficulty(), self.distance_p(), self.max_iterations(),
                            self.target_block_time(), self.publish_timeout())

    def commit_cap(self, k: int) -> int:
        return self._call("commitCap", k)

    def commitment_hash(self, task_id: int, round: int, miner: str, values: Sequence[int], iterations: int, salt: bytes) -> bytes:
        """The contract's own ``commitmentHash`` (an eth_call)."""
        return bytes(self._call("commitmentHash", task_id, round, to_checksum_address(miner), [int(v) for v in values],
                                iterations, bytes(salt)))

    def vector_hash(self, values: Sequence[int]) -> bytes:
        return bytes(self._call("vectorHash", [int(v) for v in values]))

    def reveal_link(self, prev: bytes, miner: str, seq: int, iterations: int, vhash: bytes) -> bytes:
        return bytes(self._call("revealLink", bytes(prev), to_checksum_address(miner), seq, iterations, bytes(vhash)))

    def client_leaf(self, client: str) -> bytes:
        return bytes(self._call("clientLeaf", to_checksum_address(client)))

    def payout_leaf(self, task_id: int, round: int, client: str, amount: int) -> bytes:
        return bytes(self._call("payoutLeaf", task_id, round, to_checksum_address(client), amount))

    def next_difficulty(self, d: int, elapsed: int, target: int) -> int:
        return self._call("nextDifficulty", d, elapsed, target)

    def latest_timestamp(self) -> int:
        """Timestamp of the latest block (deadlines are compared with block time)."""
        return int(self._rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")["timestamp"])


def _canonical_type(inp: dict) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in inp["components"])
        return f"({inner}){t[5:]}"
    return t


def selector(abi_item: dict) -> bytes:
    """The 4-byte selector of a function ABI entry."""
    return function_abi_to_4byte_selector(abi_item)
