"""The FedCoin binding: deploy, every function, every event, every view, on web3.py.

The ABI and bytecode come from the artifact shipped in ``fedcoin/artifacts/FedCoin.json``
(:mod:`fedcoin.chain.artifact`), so no compiler is needed at run time. Write methods return a
:class:`~fedcoin.chain.types.TxResult` or raise :class:`~fedcoin.chain.errors.ContractRevert`;
view methods return plain Python values and the dataclasses of :mod:`fedcoin.chain.types`.

Typical use::

    w3 = connect("http://127.0.0.1:8545")
    fc = FedCoin.deploy(w3, account)                  # or FedCoin(w3, address, account)
    task_id = fc.create_task(server, clients, rounds=1, value=10**18).task_id   # TaskConfig defaults
    fc.as_account(server_account).accept_task(task_id)
    ...
    fc.finalize(task_id, 0)        # clients, reveals (with bonds) and the centre from events

Read vectors from events (:meth:`FedCoin.reveals`, :meth:`FedCoin.registrations`,
:meth:`FedCoin.round_finalized`): they never reach contract storage.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import Web3RPCError

from fedcoin.chain.abi import canonical_type, normalize
from fedcoin.chain.artifact import code_matches, load_artifact
from fedcoin.chain.deployment import DeployParams
from fedcoin.chain.errors import ChainError, ErrorDecoder
from fedcoin.chain.rpc import DEFAULT_PRIORITY_FEE, Transactor, connect
from fedcoin.chain.types import (
    BlockRecord,
    CommitmentInfo,
    Event,
    RoundInfo,
    TaskConfig,
    TaskInfo,
    TxResult,
    decode_words,
    struct,
)
from fedcoin.protocol import commitment as _commitment
from fedcoin.protocol import merkle as _merkle
from fedcoin.protocol import posap as _posap


def open_fedcoin(rpc_url: str, address: str | None = None, account: LocalAccount | None = None, *,
                 verify: bool = True) -> "FedCoin":
    """The FedCoin contract behind ``rpc_url``: at ``address``, else the deployment recorded for
    the node's chain (:func:`fedcoin.chain.deployment.deployed_address`). Every CLI opens it here,
    so no command sends a transaction (or value) to an address that does not hold this FedCoin:
    with ``verify`` the code at the address must be the shipped artifact's runtime code
    (immutables masked, :func:`fedcoin.chain.artifact.code_matches`).

    Raises:
        RPCUnavailable: nothing answers at ``rpc_url``.
        LookupError: no ``address`` given and none recorded for the chain.
        ValueError: ``address`` is not an address, there is no code at it, or the code is not FedCoin's.
    """
    from fedcoin.chain.deployment import deployed_address

    w3 = connect(rpc_url)
    address = address or deployed_address(w3.eth.chain_id)
    try:
        address = to_checksum_address(address)
    except (ValueError, TypeError):
        raise ValueError(f"{address!r} is not an address") from None
    code = w3.eth.get_code(address)
    if not code:
        raise ValueError(f"no contract code at {address} on {rpc_url} (wrong contract address or chain?)")
    if verify and not code_matches("FedCoin", bytes(code)):
        raise ValueError(
            f"the contract at {address} on {rpc_url} is not this version of FedCoin (its code differs from the "
            f"shipped artifact): nothing was sent. Deploy one with `fedcoin deploy` / `brownie run deploy` or "
            f"pass --contract with the address of one")
    return FedCoin(w3, address, account)


class ContractBinding:
    """A shipped contract (artifact ``ARTIFACT``) at ``address`` on ``w3``, acting as ``account``
    (None: read-only): the signing, sending, event decoding and ledger views FedCoin and FLChain
    share. Write methods return :class:`TxResult` (or raise :class:`ContractRevert`); event
    readers return lists of :class:`Event` in chain order. ``gas_multiplier`` pads estimated gas;
    fees are EIP-1559 with ``maxFeePerGas = 2·baseFee + priority``.
    """

    ARTIFACT = ""

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
        self.w3 = w3
        self.abi = load_artifact(self.ARTIFACT)["abi"]
        self.address = to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=self.abi)
        self.account = account
        self.errors = ErrorDecoder(self.abi)
        #: Signs and sends as ``account``; ``fc.tx.fixed_gas`` skips gas estimation.
        self.tx = Transactor(w3, account, self.errors, decode_logs=self._decode_logs, priority_fee=priority_fee,
                             gas_multiplier=gas_multiplier, receipt_timeout=receipt_timeout, retries=retries)
        self._client_cache: dict[tuple, Any] = {}

    # ---- construction

    @classmethod
    def _deploy(cls, w3: Web3, account: LocalAccount, args: Sequence[Any], **kwargs):
        art = load_artifact(cls.ARTIFACT)
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        data = factory.constructor(*args)._build_transaction({"from": account.address})["data"]
        res = Transactor(w3, account, ErrorDecoder(art["abi"]), **kwargs).send({"data": data}, "constructor", to=None)
        inst = cls(w3, res.receipt["contractAddress"], account, **kwargs)
        inst.deploy_result = res  # type: ignore[attr-defined]
        return inst

    def as_account(self, account: LocalAccount | None):
        """The same contract, acting as another account (shares caches, not the account)."""
        t = self.tx
        other = type(self)(self.w3, self.address, account, priority_fee=t.priority_fee,
                           gas_multiplier=t.gas_multiplier, receipt_timeout=t.receipt_timeout, retries=t.retries)
        other.tx._chain_id = t._chain_id
        other._client_cache = self._client_cache
        return other

    @property
    def chain_id(self) -> int:
        return self.tx.chain_id

    @property
    def fixed_gas(self) -> int | None:
        """When set, transactions use this gas limit and skip eth_estimateGas."""
        return self.tx.fixed_gas

    @fixed_gas.setter
    def fixed_gas(self, gas: int | None) -> None:
        self.tx.fixed_gas = gas

    # ---- events from receipts

    def _call(self, name: str, *args) -> Any:
        return self.tx.call(self.contract.functions[name](*args), name)

    def _transact(self, name: str, *args, value: int = 0) -> TxResult:
        data = self.contract.functions[name](*args)._encode_transaction_data()
        return self.tx.send({"data": data, "value": value}, name, to=self.address)

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
                    sig = f"{item['name']}({','.join(canonical_type(i) for i in item['inputs'])})"
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
            name=d["event"], args={k: normalize(v) for k, v in d["args"].items()},
            block_number=int(d["blockNumber"]), log_index=int(d["logIndex"]),
            tx_hash="0x" + bytes(d["transactionHash"]).hex(),
        )

    # ---- events

    def events(self, name: str, *, from_block: int | str = 0, to_block: int | str = "latest", **indexed) -> list[Event]:
        """Logs of event ``name``, decoded, in chain order; ``indexed`` filters indexed args
        (e.g. ``taskId=1, round=0``)."""
        ev = self.contract.events[name]
        topic_args = {k: v for k, v in indexed.items() if v is not None}
        logs = self.tx.rpc(
            lambda: ev().get_logs(from_block=from_block, to_block=to_block, argument_filters=topic_args or None),
            f"eth_getLogs {name}",
        )
        out = [
            Event(name=name, args={k: normalize(v) for k, v in lg["args"].items()}, block_number=int(lg["blockNumber"]),
                  log_index=int(lg["logIndex"]), tx_hash="0x" + bytes(lg["transactionHash"]).hex())
            for lg in logs
        ]
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out

    # ---- the ledger (FedCoinLedger: the same four buckets in both contracts)

    def withdraw(self) -> TxResult:
        """``withdraw`` the caller's whole credit."""
        return self._transact("withdraw")

    def credits(self, account: str) -> int:
        return self._call("credits", to_checksum_address(account))

    def liabilities(self) -> int:
        return self._call("liabilities")

    def totals(self) -> dict[str, int]:
        """The four sums whose total the balance must equal."""
        return {k: self._call(k) for k in ("totalEscrow", "totalUnclaimed", "totalCredits", "totalBonds")}

    def balance(self) -> int:
        """The contract's ether balance (wei)."""
        return self.tx.rpc(lambda: self.w3.eth.get_balance(self.address), "eth_getBalance")


class FedCoin(ContractBinding):
    """A FedCoin contract at ``address`` on ``w3``, acting as ``account`` (None: read-only).

    View methods return plain Python values and the dataclasses of :mod:`fedcoin.chain.types`.
    """

    ARTIFACT = "FedCoin"

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, params: DeployParams | None = None, **kwargs) -> "FedCoin":
        """Deploy a new FedCoin with ``params`` (defaults: :class:`DeployParams`)."""
        return cls._deploy(w3, account, (params or DeployParams()).as_args(), **kwargs)

    # ---- events

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

    def task_configured_events(self, task_id: int | None = None, **kw) -> list[Event]:
        return self.events("TaskConfigured", taskId=task_id, **kw)

    def published_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("ShapleyTaskPublished", taskId=task_id, round=round, **kw)

    def committed_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("Committed", taskId=task_id, round=round, **kw)

    def displaced_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("CommitDisplaced", taskId=task_id, round=round, **kw)

    def judged_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("Judged", taskId=task_id, round=round, **kw)

    def expired_events(self, task_id: int | None = None, round: int | None = None, **kw) -> list[Event]:
        return self.events("PayoutsExpired", taskId=task_id, round=round, **kw)

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

    def data_costs(self, task_id: int, round: int) -> list[int]:
        """The registered n_k in registration order (``finalize``'s ``dataCosts``)."""
        return [int(e.args["dataCost"]) for e in self.registrations(task_id, round)]

    def payment_rule(self, task_id: int) -> str:
        """The task's payment rule by name (``"shapley"``, ``"data-cost"``, ``"data-cost-gated"``)."""
        return _posap.PAYMENT_RULES[self.get_task(task_id).payment]

    def reveals(self, task_id: int, round: int, attempt: int | None = None) -> list[_posap.Reveal]:
        """Reveals of an attempt (default: the round's current attempt) in reveal order, each with
        its commitment's bond (from ``Committed``: the weight of the centre)."""
        if attempt is None:
            attempt = self.get_round(task_id, round).attempt
        bonds = {e.args["miner"]: e.args["bond"] for e in self.committed_events(task_id, round)
                 if e.args["attempt"] == attempt}
        return [
            _posap.Reveal(e.args["miner"], e.args["seq"], e.args["iterations"], tuple(e.args["values"]),
                          bonds.get(e.args["miner"], 0))
            for e in self.revealed_events(task_id, round)
            if e.args["attempt"] == attempt
        ]

    def centre(self, task_id: int, round: int, reveals: Sequence[_posap.Reveal] | None = None) -> list[int]:
        """The consensus centre ``finalize`` will verify: the stake-weighted lower median of the
        attempt's reveals (:func:`fedcoin.protocol.posap.weighted_lower_median`); [] with no reveal."""
        reveals = self.reveals(task_id, round) if reveals is None else reveals
        if not reveals:
            return []
        return _posap.weighted_lower_median([r.values for r in reveals], [r.bond for r in reveals])

    def excluded(self, task_id: int, round: int) -> list[int]:
        """Registration indices the server excluded from the round (its ShapleyTaskPublished)."""
        evs = self.published_events(task_id, round)
        return list(evs[-1].args["excluded"]) if evs else []

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
        config: TaskConfig | None = None,
        **overrides,
    ) -> TxResult:
        """``createTask`` with budget ``value``; ``.task_id`` on the result is the new id.

        Clients are checksummed and sorted ascending by address (the contract requires it;
        pass ``sort_clients=False`` to send them as given). The deadline defaults to the
        latest block's time + ``accept_window``. D, p, the windows and the claim window come
        from ``config`` (default :class:`TaskConfig`), single fields overridden by keyword
        (e.g. ``difficulty=10**17, relative=False, commit_window=60``).
        """
        cl = [to_checksum_address(c) for c in clients]
        if sort_clients:
            cl = sorted(cl, key=lambda a: int(a, 16))
        if accept_deadline is None:
            accept_deadline = self.latest_timestamp() + accept_window
        import dataclasses

        cfg = dataclasses.replace(config or TaskConfig(), **overrides)
        arg = (to_checksum_address(server), cl, rounds, *split, accept_deadline, cfg.difficulty, cfg.p, cfg.relative,
               cfg.registration_window, cfg.commit_window, cfg.reveal_window, cfg.claim_window,
               _posap.payment_code(cfg.payment), int(cfg.max_data_cost))
        return self._transact("createTask", arg, value=value)

    def accept_task(self, task_id: int) -> TxResult:
        """``acceptTask`` (as the server)."""
        return self._transact("acceptTask", task_id)

    def refund_unaccepted(self, task_id: int) -> TxResult:
        """``refundUnaccepted`` (anyone, after the acceptance deadline)."""
        return self._transact("refundUnaccepted", task_id)

    def refund_stalled(self, task_id: int) -> TxResult:
        """``refundStalled`` (anyone, once the current round has not settled by :meth:`stalled_after`
        and holds no bond in its current attempt)."""
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
        self, task_id: int, round: int, spec_hash: bytes, spec_locator: str, aggregation: int = 0,
        excluded: Sequence[int] = (),
    ) -> TxResult:
        """``publishShapleyTask`` (as the server). aggregation: 0 FedAvg by n_k, 1 uniform;
        ``excluded``: registration indices left out of the game (ascending; the spec says why).
        The deadlines follow from the task's commit and reveal windows."""
        return self._transact("publishShapleyTask", task_id, round, bytes(spec_hash), spec_locator, int(aggregation),
                              sorted(int(i) for i in excluded))

    def commit(self, task_id: int, round: int, commitment: bytes, bond: int | None = None) -> TxResult:
        """``commit`` with ``bond`` wei (default: the contract's minimum bond)."""
        return self._transact("commit", task_id, round, bytes(commitment), value=self.min_bond() if bond is None else bond)

    def commit_vector(
        self, task_id: int, round: int, values: Sequence[int], iterations: int, salt: bytes | None = None,
        bond: int | None = None,
    ) -> tuple[TxResult, bytes]:
        """Hash (values, iterations, salt) as :mod:`fedcoin.protocol.commitment` does and commit.

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
        reveals: Sequence[_posap.Reveal] | None = None, centre: Sequence[int] | None = None,
        data_costs: Sequence[int] | None = None,
    ) -> TxResult:
        """``finalize``; the client list, their data costs, the attempt's reveals (with bonds) and
        the centre (their stake-weighted lower median) come from events when omitted."""
        if clients is None or data_costs is None:
            regs = self.registrations(task_id, round)  # one event query for both lists
            clients = [e.args["client"] for e in regs] if clients is None else clients
            data_costs = [int(e.args["dataCost"]) for e in regs] if data_costs is None else data_costs
        if reveals is None:
            reveals = self.reveals(task_id, round)
        if centre is None:
            centre = self.centre(task_id, round, reveals) if reveals else []
        return self._transact("finalize", task_id, round, list(clients), [int(n) for n in data_costs],
                              [r.as_abi() for r in reveals], [int(c) for c in centre])

    def claim(self, task_id: int, round: int, amount: int | None = None, proof: Sequence[bytes] | None = None) -> TxResult:
        """``claim`` the caller's payout; amount and proof come from events if omitted."""
        if amount is None or proof is None:
            amount, proof = self.payout_proof(task_id, round, self.account.address)
        return self._transact("claim", task_id, round, amount, [bytes(p) for p in proof])

    def claim_to(self, task_id: int, round: int, client: str, to: str, signature: bytes, amount: int | None = None,
                 proof: Sequence[bytes] | None = None) -> TxResult:
        """``claimTo``: submit (as anyone) ``client``'s payout to ``to`` with the client's
        ``signature`` (:func:`fedcoin.protocol.commitment.sign_claim_to`); amount and proof come
        from events if omitted. The payout is credited to ``to`` in the pull ledger."""
        if amount is None or proof is None:
            amount, proof = self.payout_proof(task_id, round, client)
        return self._transact("claimTo", task_id, round, to_checksum_address(client), amount,
                              [bytes(p) for p in proof], to_checksum_address(to), bytes(signature))

    def sign_claim_to(self, task_id: int, round: int, to: str) -> bytes:
        """As the client (this binding's account), sign that its payout of (task, round) goes to ``to``."""
        return _commitment.sign_claim_to(self.account, self.chain_id, self.address, task_id, round,
                                         to_checksum_address(to))

    def reclaim_expired(self, task_id: int, round: int) -> TxResult:
        """``reclaimExpired`` (anyone, after the round's claim window): unclaimed payouts to the requester."""
        return self._transact("reclaimExpired", task_id, round)

    # ---- views

    def get_task(self, task_id: int) -> TaskInfo:
        """``getTask``: the task's storage words decoded with the artifact's storage layout."""
        return decode_words(TaskInfo, self._call("getTask", task_id), self._layout(), "Task")

    def get_round(self, task_id: int, round: int) -> RoundInfo:
        """``getRound``: the round's storage words decoded with the artifact's storage layout."""
        return decode_words(RoundInfo, self._call("getRound", task_id, round), self._layout(), "Round")

    def _layout(self) -> dict:
        return load_artifact("FedCoin").get("storageLayout", {})

    def get_commitment(self, task_id: int, round: int, attempt: int, miner: str) -> CommitmentInfo:
        return struct(CommitmentInfo, self._call("getCommitment", task_id, round, attempt, to_checksum_address(miner)))

    def get_block(self, height: int) -> BlockRecord:
        return struct(BlockRecord, self._call("getBlock", height))

    def is_registered(self, task_id: int, round: int, client: str) -> bool:
        return self._call("isRegistered", task_id, round, to_checksum_address(client))

    def is_claimed(self, task_id: int, round: int, client: str) -> bool:
        return self._call("isClaimed", task_id, round, to_checksum_address(client))

    def is_excluded(self, task_id: int, round: int, index: int) -> bool:
        return self._call("isExcluded", task_id, round, index)

    def committers(self, task_id: int, round: int, attempt: int) -> list[str]:
        """The attempt's live committers (a displaced one is replaced in its slot)."""
        return list(self._call("getCommitters", task_id, round, attempt))

    def stalled_after(self, task_id: int) -> int:
        """When the task's current round counts as stalled (``refundStalled`` / abandon instead of re-open)."""
        return self._call("stalledAfter", task_id)

    def round_prices(self, task_id: int, round: int) -> tuple[int, int, int]:
        return tuple(self._call("roundPrices", task_id, round))  # type: ignore[return-value]

    def difficulty(self, task_id: int) -> int:
        """The task's D for its next publication (per task; rounds record theirs)."""
        return self.get_task(task_id).difficulty

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

    def target_block_time(self) -> int:
        return self._call("targetBlockTime")

    def judge_address(self) -> str:
        """The stateless PoSapJudge this FedCoin created (centre check, distances, payout root)."""
        return self._call("judge")

    def params(self) -> DeployParams:
        """The deployed contract's constructor parameters."""
        return DeployParams(self.min_bond(), self.max_iterations(), self.target_block_time())

    def commit_cap(self, k: int) -> int:
        return self._call("commitCap", k)

    def next_block_time(self) -> int:
        """The timestamp the next block will carry, as far as it can be told now.

        Deadlines are judged by the block a transaction lands in, not by the latest block: on
        a chain that mines only on demand (Anvil) the latest block can be minutes old while the
        next one will carry the current time. This is ``max(latest block time, pending block
        time, wall clock)``; a caller that acts on it still sends its transaction through
        ``eth_estimateGas`` against the pending block, so a node whose clock lags gets a
        decoded revert (e.g. ``FedCoinRevealWindowOpen``) instead of a wasted transaction.
        """
        latest = self.latest_timestamp()
        try:
            pending = int(self.tx.rpc(lambda: self.w3.eth.get_block("pending"), "eth_getBlockByNumber")["timestamp"])
        except (ChainError, Web3RPCError, ValueError, KeyError, TypeError):
            pending = latest  # a node that serves no pending block
        return max(latest, pending, int(time.time()))

    def latest_timestamp(self) -> int:
        """Timestamp of the latest block (deadlines are compared with block time)."""
        return int(self.tx.rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")["timestamp"])
