"""The FLChain binding: deploy, every write, the views and the events, on web3.py.

FLChain (``contracts/FLChain.sol``) sits beside a FedCoin deployment and reads it; this binding
shares FedCoin's signing, sending and decoding (:class:`fedcoin.chain.binding.ContractBinding`)
and adds helpers that gather a call's evidence from FedCoin's events (a round's registrations,
its centre and block height, its spec bytes) so that callers pass only ids.

Typical use::

    flc = FLChain.deploy(w3, deployer, fedcoin=fc.address, auth=auth.address)
    flc.as_account(trainer).register(data_hash, "local:0x…", value=flc.min_deposit())
    flc.as_account(requester).require_trainers(task_id, flc.min_deposit())
    flc.as_account(trainer).join(task_id)
    ...
    flc.as_account(detector).report_invalid_update(fc, store, task_id, round, index)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Callable, Sequence

from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from fedcoin.chain.artifact import code_matches
from fedcoin.chain.binding import ContractBinding, FedCoin
from fedcoin.chain.errors import ChainError
from fedcoin.chain.rpc import connect
from fedcoin.chain.types import TxResult
from fedcoin.flchain import rules
from fedcoin.protocol import merkle as _merkle

ETH = 10**18


class TrainerStatus(IntEnum):
    NONE = 0
    QUALIFIED = 1
    UNQUALIFIED = 2
    SUSPENDED = 3


class ModelStatus(IntEnum):
    UNAVAILABLE = 0
    ON_SALE = 1
    PROBLEMATIC = 2


class ReportKind(IntEnum):
    INVALID_UPDATE = 0
    UNQUALIFIED = 1
    AGGREGATE = 2


class ReportState(IntEnum):
    NONE = 0
    PENDING = 1
    UPHELD = 2
    REJECTED = 3


@dataclass(frozen=True)
class FLChainParams:
    """FLChain's constructor parameters besides the FedCoin and auth addresses.

    Defaults: d = 1 ETH, f = 0.01 ETH, f_CI = 0.001 ETH, r = 30 % and cp = 20 % of a confiscated
    deposit (the rest, 50 %, to the requester the offender cheated). The contract requires
    d · r > f so that honest reporting pays.
    """

    min_deposit: int = ETH
    report_fee: int = ETH // 100
    intention_fee: int = ETH // 1000
    reward_bps: int = 3_000
    compensation_bps: int = 2_000

    def as_args(self) -> list[int]:
        return [self.min_deposit, self.report_fee, self.intention_fee, self.reward_bps, self.compensation_bps]


@dataclass(frozen=True)
class Trainer:
    deposit: int
    frozen: int
    status: TrainerStatus
    available: bool
    version: int
    epoch: int
    height: int
    prev_height: int
    rounds: int
    positive: int
    upheld: int
    models: int
    eval_count: int
    eval_sum: int
    data_hash: bytes


@dataclass(frozen=True)
class Join:
    amount: int
    joined_at: int
    epoch: int
    released: bool


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    state: ReportState
    reporter: str
    accused: str
    task_id: int
    round: int
    fee: int


@dataclass(frozen=True)
class Model:
    task_id: int
    status: ModelStatus
    lister: str
    price: int
    dust: int
    prev_model: int
    height: int
    sales: int
    eval_count: int
    eval_sum: int
    trainers_hash: bytes
    split_root: bytes
    model_hash: bytes


class TrainerGateError(ValueError):
    """An FLChain named for the trainer check is unusable (no code, not FLChain, serves another FedCoin)."""


def _checked_flchain(get_code: Callable[[str], bytes], address: str, where: str, *, verify: bool = True,
                     error: type[ValueError] = ValueError) -> str:
    """``address`` checksummed, after checking that it holds code and, with ``verify``, the shipped
    FLChain's code (as :func:`fedcoin.chain.binding.open_fedcoin` does for FedCoin): no command
    sends value to, and no miner takes exclusions from, any other contract. Raises ``error``
    naming what is wrong."""
    try:
        address = to_checksum_address(address)
    except (ValueError, TypeError):
        raise error(f"{address!r} is not an address") from None
    code = get_code(address)
    if not code:
        raise error(f"no contract code at {address}{where} (wrong FLChain address or chain?)")
    if verify and not code_matches("FLChain", bytes(code)):
        raise error(f"the contract at {address}{where} is not this version of FLChain")
    return address


def open_flchain(rpc_url: str, address: str | None = None, account: LocalAccount | None = None, *,
                 verify: bool = True) -> "FLChain":
    """The FLChain behind ``rpc_url``: at ``address``, else the one recorded for the chain
    (``fedcoin deploy --flchain`` records it), refusing an address with no code or, with
    ``verify``, whose code is not the shipped FLChain.

    Raises:
        RPCUnavailable: nothing answers at ``rpc_url``.
        LookupError: no ``address`` given and none recorded for the chain.
        ValueError: not an address, no code, or not FLChain's code.
    """
    from fedcoin.chain.deployment import deployed_address

    w3 = connect(rpc_url)
    address = _checked_flchain(w3.eth.get_code, address or deployed_address(w3.eth.chain_id, "FLChain"),
                               f" on {rpc_url}", verify=verify)
    return FLChain(w3, address, account)


def flchain_for(fc: FedCoin, address: str) -> "FLChain":
    """The FLChain at ``address`` on ``fc``'s chain (read-only), checked to be the shipped FLChain
    serving ``fc``, so that no other contract decides which updates a server or miner excludes.

    Raises:
        TrainerGateError: not an address, no code, not FLChain's code, or another FedCoin's FLChain.
    """
    address = _checked_flchain(lambda a: fc.tx.rpc(lambda: fc.w3.eth.get_code(a), "eth_getCode"), address, "",
                               error=TrainerGateError)
    flc = FLChain(fc.w3, address)
    serves = to_checksum_address(flc._call("fedcoin"))
    if serves != to_checksum_address(fc.address):
        raise TrainerGateError(f"the FLChain at {address} serves FedCoin {serves}, not {fc.address}")
    return flc


def resolve_flchain(fc: FedCoin, address: str | None = None, *, off: bool = False,
                    log: Callable[[str], None] | None = None) -> "FLChain | None":
    """The FLChain a server or miner checks trainers against (None: no check).

    ``off``: none. ``address``: that one, strictly (:func:`flchain_for` errors propagate).
    Otherwise the FLChain recorded for the chain when one is recorded and serves ``fc``; a
    recorded one that does not (a stale record, another FedCoin's) is skipped with a ``log`` line.

    Raises:
        TrainerGateError: ``address`` is given and unusable.
    """
    if off:
        return None
    if address:
        return flchain_for(fc, address)
    from fedcoin.chain.deployment import deployed_address

    try:
        recorded = deployed_address(fc.chain_id, "FLChain")
    except LookupError:
        return None
    try:
        return flchain_for(fc, recorded)
    except TrainerGateError as e:
        if log is not None:
            log(f"the recorded FLChain is not used for the trainer check: {e}")
        return None


class FLChain(ContractBinding):
    """An FLChain contract (see the module docstring)."""

    ARTIFACT = "FLChain"

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, *, fedcoin: str, auth: str, jury: str | None = None,
               params: FLChainParams | None = None, **kwargs) -> "FLChain":
        """Deploy an FLChain reading the FedCoin at ``fedcoin``, with ``auth`` as the authority
        and the AggregateJury at ``jury`` (None: deploy a new one for the same FedCoin first)."""
        p = params or FLChainParams()
        if jury is None:
            jury = AggregateJury.deploy(w3, account, fedcoin=fedcoin, **kwargs).address
        return cls._deploy(w3, account, [to_checksum_address(fedcoin), to_checksum_address(jury),
                                         to_checksum_address(auth), *p.as_args()], **kwargs)

    def jury(self, account: LocalAccount | None = None) -> "AggregateJury":
        """The AggregateJury whose verdicts decide Aggregate reports, acting as ``account``."""
        return AggregateJury(self.w3, self._call("jury"), account or self.account)

    def fedcoin(self, account: LocalAccount | None = None) -> FedCoin:
        """The FedCoin this FLChain reads, acting as ``account`` (default: this binding's)."""
        return FedCoin(self.w3, self._call("fedcoin"), account or self.account)

    # ---- parameters

    def min_deposit(self) -> int:
        return self._call("minDeposit")

    def report_fee(self) -> int:
        return self._call("reportFee")

    def intention_fee(self) -> int:
        return self._call("intentionFee")

    def reward_bps(self) -> int:
        return self._call("rewardBps")

    def compensation_bps(self) -> int:
        return self._call("compensationBps")

    def auth(self) -> str:
        return self._call("auth")

    # ---- registry

    def register(self, data_hash: bytes, data_locator: str, value: int | None = None) -> TxResult:
        """``register`` with a deposit of ``value`` (default: the minimum)."""
        value = self.min_deposit() if value is None else value
        return self._transact("register", bytes(data_hash), data_locator, value=value)

    def update_record(self, data_hash: bytes, data_locator: str) -> TxResult:
        return self._transact("updateRecord", bytes(data_hash), data_locator)

    def set_available(self, available: bool) -> TxResult:
        return self._transact("setAvailable", bool(available))

    def add_deposit(self, value: int) -> TxResult:
        return self._transact("addDeposit", value=value)

    def withdraw_deposit(self, amount: int) -> TxResult:
        """Free deposit → credit; then :meth:`withdraw`."""
        return self._transact("withdrawDeposit", amount)

    def require_trainers(self, task_id: int, deposit: int, request_id: int | None = None) -> TxResult:
        """``requireTrainers``; ``request_id``: the federation request the task's clients were
        allocated from (None: none)."""
        return self._transact("requireTrainers", task_id, deposit, 0 if request_id is None else int(request_id) + 1)

    def join(self, task_id: int) -> TxResult:
        return self._transact("join", task_id)

    def release(self, task_id: int) -> TxResult:
        return self._transact("release", task_id)

    # ---- reports

    def report_invalid_update(self, fc: FedCoin, spec_bytes: bytes | None, task_id: int, round: int,
                              index: int, *, value: int | None = None) -> TxResult:
        """``reportInvalidUpdate`` of registration ``index`` of a finalized round, with the
        round's registrations from ``fc``'s events and, when the spec excludes ``index``, the
        offset of its exclusion in ``spec_bytes`` (the round's canonical spec)."""
        regs = fc.registrations(task_id, round)
        clients = [e.args["client"] for e in regs]
        costs = [int(e.args["dataCost"]) for e in regs]
        spec = bytes(spec_bytes or b"")
        try:
            at = rules.exclusion_offset(spec, index)
        except ValueError:
            at = 0
        fee = self.report_fee() if value is None else value
        return self._transact("reportInvalidUpdate", task_id, round, index, clients, costs, spec, at, value=fee)

    def report_aggregate(self, fc: FedCoin, task_id: int, round: int, *, value: int | None = None) -> TxResult:
        """``reportAggregate``: round ``round``'s global model is not the aggregate of round
        ``round - 1``'s included updates (decided by the AggregateJury's verdict)."""
        regs = fc.registrations(task_id, round)
        fee = self.report_fee() if value is None else value
        return self._transact("reportAggregate", task_id, round, [e.args["client"] for e in regs],
                              [int(e.args["dataCost"]) for e in regs], value=fee)

    def report_unqualified(self, trainer: str, *, value: int | None = None) -> TxResult:
        fee = self.report_fee() if value is None else value
        return self._transact("reportUnqualified", to_checksum_address(trainer), value=fee)

    def judge_unqualified(self, report_id: int, upheld: bool) -> TxResult:
        return self._transact("judgeUnqualified", report_id, bool(upheld))

    # ---- reliability

    def record_round(self, fc: FedCoin, task_id: int, round: int) -> TxResult:
        """``recordRound`` with the registrations, the block height and the centre from ``fc``."""
        fin = fc.round_finalized(task_id, round)
        if fin is None:
            raise ChainError(f"round {round} of task {task_id} is not finalized")
        regs = fc.registrations(task_id, round)
        return self._transact("recordRound", task_id, round, int(fin.args["height"]),
                              [e.args["client"] for e in regs], [int(e.args["dataCost"]) for e in regs],
                              [int(c) for c in fin.args["centre"]])

    def reliability(self, trainer: str) -> int:
        return self._call("reliability", to_checksum_address(trainer))

    # ---- marketplace

    def task_trainers(self, task_id: int) -> list[str]:
        """Trainers with a positive recorded contribution to the task, ascending (``listModel``'s list)."""
        joined = {e.args["trainer"] for e in self.events("Joined", taskId=task_id)}
        return sorted((t for t in joined if self.contribution(task_id, t) > 0), key=lambda a: int(a, 16))

    def list_model(self, task_id: int, price: int, model_hash: bytes, locator: str, *,
                   prev_model: int | None = None, trainers: Sequence[str] | None = None) -> TxResult:
        """``listModel``; ``prev_model`` is the superseded model's id (None: none)."""
        trainers = self.task_trainers(task_id) if trainers is None else list(trainers)
        prev = 0 if prev_model is None else int(prev_model) + 1
        return self._transact("listModel", task_id, price, prev, bytes(model_hash), locator, trainers)

    def delist(self, model_id: int) -> TxResult:
        return self._transact("delist", model_id)

    def buy(self, model_id: int, value: int | None = None) -> TxResult:
        value = self.get_model(model_id).price if value is None else value
        return self._transact("buy", model_id, value=value)

    def listing(self, model_id: int):
        """The model's ModelListed event (trainers, per-sale amounts, dust, locator)."""
        evs = self.events("ModelListed", modelId=model_id)
        if not evs:
            raise ChainError(f"no model {model_id}")
        return evs[-1]

    def evaluate(self, model_id: int, score: int) -> TxResult:
        trainers = list(self.listing(model_id).args["trainers"])
        return self._transact("evaluate", model_id, int(score), trainers)

    def sale_proof(self, model_id: int, trainer: str) -> tuple[int, list[bytes]]:
        """(per-sale amount, proof) of ``trainer``'s leaf in the model's split root."""
        ev = self.listing(model_id)
        trainers = list(ev.args["trainers"])
        trainer = to_checksum_address(trainer)
        if trainer not in trainers:
            raise ChainError(f"{trainer} is not a trainer of model {model_id}")
        i = trainers.index(trainer)
        amounts = [int(a) for a in ev.args["amounts"]]
        return amounts[i], _merkle.payout_tree(model_id, 0, trainers, amounts).proof(i)

    def claim_sales(self, model_id: int) -> TxResult:
        amount, proof = self.sale_proof(model_id, self.account.address)
        return self._transact("claimSales", model_id, amount, [bytes(p) for p in proof])

    # ---- federation

    def publish_request(self, desc_hash: bytes, locator: str, seats: int, deadline: int) -> TxResult:
        return self._transact("publishRequest", bytes(desc_hash), locator, seats, deadline)

    def post_intention(self, request_id: int, expected_price: int, expected_income: int, cost: int) -> TxResult:
        return self._transact("postIntention", request_id, expected_price, expected_income, cost,
                              value=self.intention_fee())

    # ---- views

    def get_trainer(self, trainer: str) -> Trainer:
        t = list(self._call("getTrainer", to_checksum_address(trainer)))
        t[2] = TrainerStatus(t[2])
        return Trainer(*t)

    def get_join(self, task_id: int, trainer: str) -> Join:
        return Join(*self._call("getJoin", task_id, to_checksum_address(trainer)))

    def joined_at(self, task_id: int, trainer: str) -> int:
        return self._call("joinedAt", task_id, to_checksum_address(trainer))

    def task_request(self, task_id: int) -> int | None:
        """The federation request id the task's clients were allocated from (None: none)."""
        r = self._call("taskRequest", task_id)
        return None if r == 0 else r - 1

    def required_deposit(self, task_id: int) -> int:
        return self._call("requiredDeposit", task_id)

    def get_report(self, report_id: int) -> Report:
        r = list(self._call("getReport", report_id))
        r[0], r[1] = ReportKind(r[0]), ReportState(r[1])
        return Report(*r)

    def was_reported(self, kind: int, task_id: int, round: int, accused: str) -> bool:
        """Whether this offence (kind, task, round, accused) stands reported: the contract takes one
        report per offence (its key is private; the ReportFiled events say the same), except that a
        rejected Unqualified report bars nothing."""
        return any(int(e.args["kind"]) == int(kind) and int(e.args["taskId"]) == task_id and int(e.args["round"]) == round
                   and not (int(kind) == ReportKind.UNQUALIFIED
                            and self.get_report(int(e.args["reportId"])).state == ReportState.REJECTED)
                   for e in self.events("ReportFiled", accused=to_checksum_address(accused)))

    def report_count(self) -> int:
        return len(self.events("ReportFiled"))

    def get_model(self, model_id: int) -> Model:
        m = list(self._call("getModel", model_id))
        m[1] = ModelStatus(m[1])
        return Model(*m)

    def model_status(self, model_id: int) -> ModelStatus:
        return ModelStatus(self._call("modelStatus", model_id))

    def model_count(self) -> int:
        return len(self.events("ModelListed"))

    def get_request(self, request_id: int) -> dict:
        """A federation request, from its RequestPublished event (the contract keeps no getter)."""
        evs = self.events("RequestPublished", requestId=request_id)
        if not evs:
            raise ChainError(f"no federation request {request_id}")
        a = evs[-1].args
        return {"requester": a["requester"], "seats": a["seats"], "deadline": a["deadline"],
                "desc_hash": a["descHash"], "locator": a["locator"]}

    def contribution(self, task_id: int, trainer: str) -> int:
        return self._call("contribution", task_id, to_checksum_address(trainer))

    def is_problematic(self, task_id: int) -> bool:
        return self._call("problematic", task_id)

    def is_recorded(self, task_id: int, round: int) -> bool:
        return self._call("recorded", task_id, round)

    def claimed_sales(self, model_id: int, trainer: str) -> int:
        return self._call("claimedSales", model_id, to_checksum_address(trainer))


class AggregateJury(ContractBinding):
    """The AggregateJury: miners attest whether a round's global model is the aggregate of the
    previous round's included updates; the revealed stake's majority is the verdict."""

    ARTIFACT = "AggregateJury"

    @classmethod
    def deploy(cls, w3: Web3, account: LocalAccount, *, fedcoin: str, **kwargs) -> "AggregateJury":
        return cls._deploy(w3, account, [to_checksum_address(fedcoin)], **kwargs)

    def attest(self, task_id: int, round: int, wrong: bool) -> TxResult:
        return self._transact("attest", task_id, round, bool(wrong))

    def verdict(self, task_id: int, round: int) -> tuple[bool, int, int]:
        """(wrong, stake attesting wrong, revealed stake) of a finalized round."""
        return tuple(self._call("verdict", task_id, round))  # type: ignore[return-value]

    def attestation(self, task_id: int, round: int, attempt: int, miner: str) -> int:
        """0 none, 1 right, 2 wrong."""
        return self._call("attestation", task_id, round, attempt, to_checksum_address(miner))


def data_hash(description: bytes) -> bytes:
    """keccak256 of a data resource description (the bytes at the record's locator)."""
    return keccak(description)
