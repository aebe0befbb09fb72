"""``fedcoin flchain <verb>``: every FLChain action (trainers, requesters, servers, buyers, auth) and its queries.

Each verb takes ``--rpc`` and ``--flchain ADDRESS`` (default: the FLChain recorded for the chain by
``fedcoin deploy --flchain`` or ``fedcoin flchain deploy``); verbs that send a transaction take
the signing key the way every ``fedcoin`` command does (``--keystore PATH`` with the password in
``$FEDCOIN_KEYSTORE_PASSWORD``, or ``$FEDCOIN_PRIVATE_KEY``; never on the command line, see
:mod:`fedcoin.chain.keys`) and ``--dry-run`` (say what would be sent, send nothing).

Nothing is sent on bad input: amounts, addresses and ids are parsed first, then the contract's
views are read and every condition under which the contract would revert is checked here, with
the reason printed, before a transaction is signed (a malformed address, a zero or negative
amount, an unknown task, model, report or request, a model not on sale, a task that requires no
trainers, a spec whose keccak is not the round's specHash, a balance too small, ...). Amounts
are ether unless a unit is given (``1.5``, ``1.5ether``, ``20gwei``, ``1000wei``).

Exit codes: 0 done (or nothing to do); 1 the contract refused a transaction, or the chain or the
store failed; 2 bad input or a precondition that does not hold (nothing was sent).

Verbs (docs/flchain.md, "Commands", has examples)::

    register --data FILE [--deposit ETH]    update --data FILE    deposit ETH    withdraw-deposit ETH
    available yes|no                        require TASK --deposit ETH          join TASK    release TASK
    request --desc FILE --seats N --deadline SECONDS     intention REQUEST --price --income --cost
    federation [REQUEST ...]                report update TASK ROUND INDEX      report unqualified TRAINER
    judge REPORT upheld|rejected            record TASK ROUND
    list TASK --price ETH --model-locator LOC            buy MODEL    evaluate MODEL SCORE
    claim-sales MODEL    delist MODEL       withdraw
    show trainer ADDR | model ID | report ID | request ID
    query for-sale MODEL | judgement TRAINER-OR-MODEL | problematic MODEL | models [--status S]
    index    deploy
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sqlite3
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable

from eth_utils import keccak

from fedcoin.chain.keys import KeyLoadError, account_from_args, add_key_arguments

PROG = "fedcoin flchain"
DEFAULT_RPC = "http://127.0.0.1:8545"
UINT128 = 2**128 - 1
UINT32 = 2**32 - 1
BPS = 10_000
MAX_SCORE = 5
UNITS = {"wei": 0, "kwei": 3, "mwei": 6, "gwei": 9, "szabo": 12, "finney": 15, "ether": 18, "eth": 18}
_AMOUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


class FLCliError(ValueError):
    """Bad input, or a condition under which the contract would refuse: nothing was sent."""


# ----------------------------------------------------------------------------- parsing


def parse_amount(text: str, what: str, *, allow_zero: bool = False, maximum: int | None = None) -> int:
    """Wei from ``"1.5"`` (ether), ``"1.5ether"``, ``"20gwei"``, ``"7wei"``: a whole number of wei,
    > 0 (>= 0 with ``allow_zero``), at most ``maximum``."""
    s = str(text).strip()
    if s.startswith("-"):
        raise FLCliError(f"{what} {text!r}: must be {'0 or more' if allow_zero else 'positive'}")
    m = _AMOUNT_RE.match(s)
    if not m:
        raise FLCliError(f"{what} {text!r} is not an amount (ether, or a number with a unit: "
                         f"{', '.join(UNITS)}; e.g. 1.5 or 20gwei)")
    unit = m.group(2).lower() or "ether"
    if unit not in UNITS:
        raise FLCliError(f"{what} {text!r}: unknown unit {unit!r} (use one of {', '.join(UNITS)})")
    try:
        wei = Decimal(m.group(1)) * (Decimal(10) ** UNITS[unit])
    except InvalidOperation:
        raise FLCliError(f"{what} {text!r} is not a number") from None
    if wei != wei.to_integral_value():
        raise FLCliError(f"{what} {text!r} is not a whole number of wei")
    wei = int(wei)
    if wei == 0 and not allow_zero:
        raise FLCliError(f"{what} {text!r}: must be positive")
    if maximum is not None and wei > maximum:
        raise FLCliError(f"{what} {text!r}: at most {maximum} wei")
    return wei


def parse_int(text: str, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        v = int(str(text).strip(), 10)
    except ValueError:
        raise FLCliError(f"{what} {text!r} is not an integer") from None
    if v < minimum or (maximum is not None and v > maximum):
        hi = f" and {maximum}" if maximum is not None else " or more"
        raise FLCliError(f"{what} {v}: must be {minimum}{hi}" if maximum is None else
                         f"{what} {v}: must be between {minimum}{hi}")
    return v


def parse_address(text: str, what: str) -> str:
    """A checksummed non-zero address (:func:`fedcoin.roles.request.parse_address`)."""
    from fedcoin.roles.request import RequestError
    from fedcoin.roles.request import parse_address as _parse

    try:
        return _parse(text, what)
    except RequestError as e:
        raise FLCliError(str(e)) from None


def read_json_file(path: str, what: str) -> bytes:
    """The bytes of a JSON document (an object) at ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise FLCliError(f"{what} {path}: cannot read it: {e.strerror}") from None
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FLCliError(f"{what} {path} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise FLCliError(f"{what} {path}: expected a JSON object, got {type(doc).__name__}")
    return data


def _eth(wei: int) -> str:
    return f"{wei / 1e18:.6f} ETH ({wei} wei)"


# ----------------------------------------------------------------------------- deployment


def add_flchain_param_arguments(parser: argparse.ArgumentParser) -> None:
    """``--auth`` and one flag per :class:`~fedcoin.flchain.binding.FLChainParams` field."""
    from fedcoin.flchain.binding import FLChainParams

    parser.add_argument("--auth", default=None, metavar="ADDRESS",
                        help="the authority that judges 'unqualified' reports (default: the deployer)")
    for f in dataclasses.fields(FLChainParams):
        unit = "basis points" if f.name.endswith("_bps") else "wei, or an amount with a unit"
        parser.add_argument("--" + f.name.replace("_", "-"), default=None,
                            help=f"FLChain constructor parameter, {unit} (default {f.default})")


def flchain_params_from_args(args: argparse.Namespace):
    """FLChainParams defaults with the flags given replaced, checked as the constructor checks them."""
    from fedcoin.flchain.binding import FLChainParams

    over = {}
    for f in dataclasses.fields(FLChainParams):
        v = getattr(args, f.name, None)
        if v is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name.endswith("_bps"):
            over[f.name] = parse_int(v, flag, minimum=0, maximum=BPS)
        else:
            s = str(v).strip()  # a bare number is wei here (the constructor's unit), as for FedCoin's flags
            over[f.name] = parse_amount(s + ("wei" if re.fullmatch(r"[0-9.]+", s) else ""), flag,
                                        allow_zero=f.name != "min_deposit", maximum=UINT128)
    p = dataclasses.replace(FLChainParams(), **over)
    if p.reward_bps + p.compensation_bps > BPS:
        raise FLCliError(f"--reward-bps {p.reward_bps} + --compensation-bps {p.compensation_bps} exceed {BPS}")
    if p.min_deposit * p.reward_bps // BPS <= p.report_fee:
        raise FLCliError(f"the reward on a minimum deposit ({p.min_deposit} * {p.reward_bps} / {BPS} wei) must exceed "
                         f"the report fee {p.report_fee} wei, or honest reporting does not pay")
    return p


def deploy_flchain(w3, account, fedcoin_address: str, auth: str, params, *, out=None):
    """Deploy FLChain reading the FedCoin at ``fedcoin_address`` and record it (name ``FLChain``);
    returns (binding, record path)."""
    from fedcoin.chain.deployment import record_deployment
    from fedcoin.flchain.binding import FLChain

    flc = FLChain.deploy(w3, account, fedcoin=fedcoin_address, auth=auth, params=params)
    res = flc.deploy_result
    path = record_deployment(flc.chain_id, flc.address, tx_hash=res.tx_hash, block=int(res.receipt["blockNumber"]),
                             deployer=account.address, params=params, name="FLChain")
    print(f"FLChain deployed at {flc.address} beside FedCoin {fedcoin_address} on chain {flc.chain_id} "
          f"(auth {auth}, gas {res.gas_used}); recorded in {path}", file=out or sys.stdout)
    return flc, path


# ----------------------------------------------------------------------------- session


@dataclass
class Session:
    """One verb's connection: the FLChain, the FedCoin it reads, and the parsed arguments."""

    flc: Any
    fc: Any
    args: argparse.Namespace

    @property
    def me(self) -> str:
        return self.flc.account.address

    def say(self, text: str) -> None:
        print(text, flush=True)


def _open(args: argparse.Namespace, *, keys: bool = True) -> Session:
    from fedcoin.flchain.binding import open_flchain

    account = account_from_args(args) if keys else None
    flc = open_flchain(args.rpc, args.flchain, account)
    return Session(flc, flc.fedcoin(), args)


def _send(s: Session, what: str, fn: Callable[[], Any], *, value: int = 0):
    """Say what will be sent, check the balance covers ``value``, then send (unless --dry-run)."""
    if value:
        bal = s.flc.w3.eth.get_balance(s.me)
        if bal < value:
            raise FLCliError(f"{s.me} holds {_eth(bal)}, less than the {_eth(value)} this sends")
    s.say(f"{s.me}: will {what}" + (f", sending {_eth(value)}" if value else ""))
    if getattr(s.args, "dry_run", False):
        s.say("dry run: nothing was sent")
        return None
    res = fn()
    s.say(f"  done: tx {res.tx_hash} (gas {res.gas_used})")
    return res


def _task(s: Session, task_id: int):
    n = s.fc.task_count()
    if not 1 <= task_id <= n:
        raise FLCliError(f"FedCoin task {task_id} does not exist (taskCount is {n})")
    return s.fc.get_task(task_id)


def _registered(s: Session, who: str):
    from fedcoin.flchain.binding import TrainerStatus

    tr = s.flc.get_trainer(who)
    if tr.status == TrainerStatus.NONE:
        raise FLCliError(f"{who} is not a registered trainer (fedcoin flchain register --data FILE)")
    return tr


def _model(s: Session, model_id: int):
    n = s.flc.model_count()
    if model_id >= n:
        raise FLCliError(f"model {model_id} does not exist (modelCount is {n})")
    return s.flc.get_model(model_id)


def _request(s: Session, request_id: int) -> dict:
    from fedcoin.chain import ChainError

    try:
        return s.flc.get_request(request_id)
    except ChainError:  # no RequestPublished event with that id
        raise FLCliError(f"request {request_id} does not exist") from None


def _finalized_round(s: Session, task_id: int, round: int):
    from fedcoin.chain.types import RoundStatus

    t = _task(s, task_id)
    if not 0 <= round < t.rounds:
        raise FLCliError(f"task {task_id} has rounds 0..{t.rounds - 1}, not {round}")
    r = s.fc.get_round(task_id, round)
    if r.status != RoundStatus.FINALIZED:
        raise FLCliError(f"round {round} of task {task_id} is {r.status.name.lower()}, not finalized")
    return t, r


def _plain(v: Any) -> Any:
    if isinstance(v, IntEnum):
        return v.name.lower()
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _store(args):
    from fedcoin.content.store import open_store

    return open_store(getattr(args, "store", None) or "local")


# ----------------------------------------------------------------------------- registry


def cmd_register(args) -> int:
    from fedcoin.flchain.binding import TrainerStatus

    data = read_json_file(args.data, "--data")
    deposit = None if args.deposit is None else parse_amount(args.deposit, "--deposit", maximum=UINT128)
    s = _open(args)
    least = s.flc.min_deposit()
    deposit = least if deposit is None else deposit
    if deposit < least:
        raise FLCliError(f"--deposit {_eth(deposit)} is below FLChain's minimum deposit {_eth(least)}")
    tr = s.flc.get_trainer(s.me)
    if tr.status != TrainerStatus.NONE:
        raise FLCliError(f"{s.me} is already registered ({tr.status.name.lower()}, version {tr.version}); "
                         "use `fedcoin flchain update --data FILE` to publish a new record")
    h, locator = _store(args).put_checked(data)
    _send(s, f"register as a trainer with data description {locator} (keccak 0x{h.hex()})",
          lambda: s.flc.register(h, locator, value=deposit), value=deposit)
    return 0


def cmd_update(args) -> int:
    data = read_json_file(args.data, "--data")
    s = _open(args)
    tr = _registered(s, s.me)
    h = keccak(data)
    if h == tr.data_hash:
        raise FLCliError(f"{args.data} is the description already on record (keccak 0x{h.hex()}): nothing to update")
    h, locator = _store(args).put_checked(data)
    _send(s, f"publish version {tr.version + 1} of its record: {locator} (keccak 0x{h.hex()})",
          lambda: s.flc.update_record(h, locator))
    return 0


def cmd_deposit(args) -> int:
    from fedcoin.flchain.binding import TrainerStatus

    amount = parse_amount(args.amount, "deposit", maximum=UINT128)
    s = _open(args)
    tr = _registered(s, s.me)
    if tr.status == TrainerStatus.SUSPENDED:
        raise FLCliError(f"{s.me} is suspended (a report against it was upheld): it cannot add to its deposit")
    if tr.deposit + amount > UINT128:
        raise FLCliError("the deposit would exceed 2^128 - 1 wei")
    _send(s, f"add {_eth(amount)} to its deposit ({_eth(tr.deposit)} now, {_eth(tr.frozen)} of it frozen)",
          lambda: s.flc.add_deposit(amount), value=amount)
    return 0


def cmd_withdraw_deposit(args) -> int:
    amount = parse_amount(args.amount, "withdraw-deposit", maximum=UINT128)
    s = _open(args)
    tr = _registered(s, s.me)
    free = tr.deposit - tr.frozen
    if amount > free:
        raise FLCliError(f"{s.me} has {_eth(free)} free (deposit {_eth(tr.deposit)}, frozen {_eth(tr.frozen)}): "
                         f"cannot withdraw {_eth(amount)}")
    left, least = tr.deposit - amount, s.flc.min_deposit()
    if left and left < least:
        raise FLCliError(f"{_eth(left)} would stay, below the minimum deposit {_eth(least)}: withdraw all "
                         f"{_eth(free)} of the free deposit or at most {_eth(max(0, tr.deposit - least))}")
    res = _send(s, f"move {_eth(amount)} of its free deposit to its credit", lambda: s.flc.withdraw_deposit(amount))
    if res is not None and not args.keep_credit:
        credit = s.flc.credits(s.me)
        w = s.flc.withdraw()
        s.say(f"  withdrew its FLChain credit {_eth(credit)} (tx {w.tx_hash})")
    return 0


def cmd_available(args) -> int:
    want = {"yes": True, "no": False}[args.answer]
    s = _open(args)
    tr = _registered(s, s.me)
    if tr.available == want:
        s.say(f"{s.me} is already {'available' if want else 'unavailable'}: nothing to send")
        return 0
    _send(s, f"say it is {'available for' if want else 'not taking'} new work", lambda: s.flc.set_available(want))
    return 0


def cmd_withdraw(args) -> int:
    s = _open(args)
    credit = s.flc.credits(s.me)
    if credit == 0:
        s.say(f"{s.me}: no FLChain credit to withdraw")
        return 0
    _send(s, f"withdraw its FLChain credit {_eth(credit)}", s.flc.withdraw)
    return 0


# ----------------------------------------------------------------------------- tasks


def cmd_require(args) -> int:
    from fedcoin.chain.types import TaskStatus

    task_id = parse_int(args.task, "TASK", minimum=1)
    deposit = parse_amount(args.deposit, "--deposit", maximum=UINT128)
    s = _open(args)
    t = _task(s, task_id)
    if t.requester != s.me:
        raise FLCliError(f"task {task_id}'s requester is {t.requester}, not {s.me}")
    if t.status != TaskStatus.CREATED:
        raise FLCliError(f"task {task_id} is {t.status.name.lower()}: trainers can be required only before the "
                         "server accepts it")
    have = s.flc.required_deposit(task_id)
    if have:
        raise FLCliError(f"task {task_id} already requires a deposit of {_eth(have)}")
    least = s.flc.min_deposit()
    if deposit < least:
        raise FLCliError(f"--deposit {_eth(deposit)} is below FLChain's minimum deposit {_eth(least)}")
    request = None
    if args.request is not None:
        request = parse_int(args.request, "--request")
        q = _request(s, request)
        if q["requester"] != s.me:
            raise FLCliError(f"request {request}'s requester is {q['requester']}, not {s.me}")
        # the contract compares with the block's time; the pending block's is the earliest it can be
        now = int(s.fc.w3.eth.get_block("pending")["timestamp"])
        if now < q["deadline"]:
            raise FLCliError(f"request {request} takes intentions until {q['deadline']} ({q['deadline'] - now} s after "
                             "the pending block): its allocation is not final yet")
    named = f", allocated from request {request}" if request is not None else ""
    _send(s, f"require task {task_id}'s clients to be trainers freezing {_eth(deposit)} each{named}",
          lambda: s.flc.require_trainers(task_id, deposit, request))
    return 0


def cmd_join(args) -> int:
    from fedcoin.chain.types import TaskStatus
    from fedcoin.flchain.binding import TrainerStatus

    task_id = parse_int(args.task, "TASK", minimum=1)
    s = _open(args)
    t = _task(s, task_id)
    need = s.flc.required_deposit(task_id)
    if need == 0:
        raise FLCliError(f"task {task_id} requires no trainers (its requester never ran `fedcoin flchain require`): "
                         "there is nothing to join")
    if t.status not in (TaskStatus.CREATED, TaskStatus.ACCEPTED):
        raise FLCliError(f"task {task_id} is {t.status.name.lower()}: it can no longer be joined")
    tr = _registered(s, s.me)
    if tr.status != TrainerStatus.QUALIFIED:
        raise FLCliError(f"{s.me} is {tr.status.name.lower()}: only a qualified trainer joins a task")
    if s.flc.joined_at(task_id, s.me):
        raise FLCliError(f"{s.me} already joined task {task_id}")
    if s.me != t.server and not s.flc.joined_at(task_id, t.server):
        raise FLCliError(f"task {task_id}'s server {t.server} has not joined it yet: the server's deposit is at "
                         "stake first (it answers for a wrong global model), then the trainers'")
    free = tr.deposit - tr.frozen
    if free < need:
        raise FLCliError(f"task {task_id} freezes {_eth(need)} but {s.me} has only {_eth(free)} free "
                         f"(fedcoin flchain deposit {(need - free) / 1e18:.18g})")
    _send(s, f"join task {task_id}, freezing {_eth(need)} of its free {_eth(free)}", lambda: s.flc.join(task_id))
    return 0


def cmd_release(args) -> int:
    from fedcoin.chain.types import TaskStatus

    task_id = parse_int(args.task, "TASK", minimum=1)
    s = _open(args)
    t = _task(s, task_id)
    if t.status not in (TaskStatus.COMPLETED, TaskStatus.REFUNDED):
        raise FLCliError(f"task {task_id} is {t.status.name.lower()}: a deposit is released once it completed or "
                         "was refunded")
    j = s.flc.get_join(task_id, s.me)
    tr = s.flc.get_trainer(s.me)
    if j.joined_at == 0:
        raise FLCliError(f"{s.me} never joined task {task_id}")
    if j.released:
        raise FLCliError(f"{s.me}'s deposit for task {task_id} was already released")
    if j.epoch != tr.epoch:
        raise FLCliError(f"{s.me}'s deposit was confiscated since it joined task {task_id}: nothing to release")
    _send(s, f"release the {_eth(j.amount)} frozen for task {task_id}", lambda: s.flc.release(task_id))
    return 0


# ----------------------------------------------------------------------------- federation


def cmd_request(args) -> int:
    try:
        desc = Path(args.desc).read_bytes()
    except OSError as e:
        raise FLCliError(f"--desc {args.desc}: cannot read it: {e.strerror}") from None
    if not desc:
        raise FLCliError(f"--desc {args.desc} is empty")
    seats = parse_int(args.seats, "--seats", minimum=1, maximum=UINT32)
    seconds = parse_int(args.deadline, "--deadline", minimum=1, maximum=365 * 86400)
    s = _open(args)
    deadline = s.fc.next_block_time() + seconds
    h, locator = _store(args).put_checked(desc)
    res = _send(s, f"publish a request for {seats} trainer(s), intentions until {deadline} ({seconds} s from now), "
                   f"description {locator}", lambda: s.flc.publish_request(h, locator, seats, deadline))
    if res is not None:
        rid = res.event("RequestPublished").args["requestId"]
        s.say(f"request {rid} published")
    return 0


def cmd_intention(args) -> int:
    from fedcoin.flchain.binding import TrainerStatus

    request_id = parse_int(args.request, "REQUEST")
    price = parse_amount(args.price, "--price", allow_zero=True, maximum=2**256 - 1)
    income = parse_amount(args.income, "--income", allow_zero=True, maximum=2**256 - 1)
    cost = parse_amount(args.cost, "--cost", allow_zero=True, maximum=2**256 - 1)
    s = _open(args)
    q = _request(s, request_id)
    now = s.fc.next_block_time()
    if now >= q["deadline"]:
        raise FLCliError(f"request {request_id} took intentions until {q['deadline']}; it is {now} now")
    tr = _registered(s, s.me)
    if tr.status != TrainerStatus.QUALIFIED or not tr.available:
        raise FLCliError(f"{s.me} is {tr.status.name.lower()}{'' if tr.available else ' and unavailable'}: only a "
                         "qualified, available trainer posts an intention")
    fee = s.flc.intention_fee()
    _send(s, f"post its intention for request {request_id}: price {price}, income {income}, cost {cost} wei "
             f"(fee {_eth(fee)} to auth)", lambda: s.flc.post_intention(request_id, price, income, cost), value=fee)
    return 0


def federation(flc, request_ids: list[int] | None = None, *, alone: bool = False) -> dict:
    """The Algorithm 1 allocation from the chain: every request's seats, the intentions posted
    (the last per trainer and request counts), and each trainer's reliability now; trainers no
    longer qualified or available are left out. The allocation is joint over every published
    request (a trainer joins one federation), unless ``alone``: then only over ``request_ids``.

    Returns {request id: {"seats", "deadline", "requester", "intentions", "trainers": [{address,
    reliability, profit}]}} for ``request_ids`` (default: every request)."""
    from fedcoin.flchain import federation as fed
    from fedcoin.flchain.binding import TrainerStatus

    published = {int(e.args["requestId"]): e.args for e in flc.events("RequestPublished")}
    want = sorted(published) if not request_ids else list(request_ids)
    for r in want:
        if r not in published:
            raise FLCliError(f"request {r} does not exist ({len(published)} published)")
    pool = want if alone else sorted(published)
    caps = {r: int(published[r]["seats"]) for r in pool}
    intentions = [fed.Intention(int(e.args["requestId"]), e.args["trainer"], int(e.args["expectedPrice"]),
                                int(e.args["expectedIncome"]), int(e.args["cost"]))
                  for e in flc.events("IntentionPosted")]
    rely = {}
    for t in sorted({i.trainer for i in intentions}):
        tr = flc.get_trainer(t)
        if tr.status == TrainerStatus.QUALIFIED and tr.available:
            rely[t] = flc.reliability(t)
    alloc = fed.allocate(caps, rely, intentions)
    latest = {(i.model, i.trainer): i for i in intentions}
    out = {}
    for r in want:
        placed = alloc.get(r, []) if r in caps else []
        out[r] = {
            "seats": int(published[r]["seats"]), "deadline": int(published[r]["deadline"]),
            "requester": published[r]["requester"],
            "intentions": sum(1 for (m, _t) in latest if m == r),
            "trainers": [{"address": t, "reliability": rely[t], "profit": fed.profit(latest[(r, t)], rely[t])}
                         for t in placed],
        }
    return out


def cmd_federation(args) -> int:
    ids = [parse_int(x, "REQUEST") for x in args.request]
    s = _open(args, keys=False)
    result = federation(s.flc, ids, alone=args.alone)
    if args.json:
        print(json.dumps({str(k): v for k, v in result.items()}, indent=1))
        return 0
    now = s.fc.next_block_time()
    if not result:
        print(f"no request published on FLChain {s.flc.address} (fedcoin flchain request --desc FILE …)")
    for r, v in result.items():
        state = "closed" if now >= v["deadline"] else f"open until {v['deadline']} (provisional)"
        print(f"request {r}: {len(v['trainers'])} of {v['seats']} seat(s) filled from {v['intentions']} "
              f"intention(s); intentions {state}")
        for i, t in enumerate(v["trainers"], 1):
            print(f"  {i}. {t['address']}  reliability {t['reliability']} ppm  profit {t['profit']}")
    return 0


# ----------------------------------------------------------------------------- reports


def cmd_report_update(args) -> int:
    from fedcoin.content.store import ContentNotFoundError, content_hash
    from fedcoin.flchain import rules
    from fedcoin.flchain.binding import ReportKind

    task_id = parse_int(args.task, "TASK", minimum=1)
    round = parse_int(args.round, "ROUND")
    index = parse_int(args.index, "INDEX")
    s = _open(args)
    _, r = _finalized_round(s, task_id, round)
    regs = s.fc.registrations(task_id, round)
    if index >= len(regs):
        raise FLCliError(f"round {round} of task {task_id} has {len(regs)} registrations (0..{len(regs) - 1}), "
                         f"not {index}")
    accused = regs[index].args["client"]
    if s.flc.joined_at(task_id, accused) == 0:
        raise FLCliError(f"registration {index} is {accused}, who never joined task {task_id} through FLChain: "
                         "there is no deposit to report")
    if s.flc.was_reported(ReportKind.INVALID_UPDATE, task_id, round, accused):
        raise FLCliError(f"{accused}'s update in round {round} of task {task_id} was already reported")
    spec = b""
    if s.fc.is_excluded(task_id, round, index):
        pubs = s.fc.published_events(task_id, round)
        if not pubs:
            raise FLCliError(f"no ShapleyTaskPublished event for round {round} of task {task_id}")
        locator = pubs[-1].args["specLocator"]
        try:
            spec = _store(args).get_unverified(locator)
        except ContentNotFoundError as e:
            raise FLCliError(f"cannot fetch the round's spec: {e}") from None
        got = content_hash(spec)
        if got != bytes(r.spec_hash):
            raise FLCliError(f"the spec at {locator} hashes to 0x{got.hex()}, but the round's on-chain specHash is "
                             f"0x{bytes(r.spec_hash).hex()}: it is not the round's spec")
        try:
            reason = rules.exclusion_reason(spec, index)
        except ValueError:
            raise FLCliError(f"the round's spec records no reason for excluding registration {index}: the "
                             "contract would refuse the evidence") from None
        if reason == "unavailable":
            raise FLCliError(f"registration {index} was excluded as 'unavailable', the server's word that miners "
                             "cannot check: such a report is refused")
        if reason == "unregistered-trainer":
            raise FLCliError(f"registration {index} was excluded because its client had not joined the task when it "
                             "registered: no deposit of this task stood behind it, so such a report is refused")
        what = f"report {accused}'s update (registration {index}, excluded: {reason}) in round {round} of task {task_id}"
    else:
        if not args.even_if_included:
            raise FLCliError(f"the round's consensus included registration {index} ({accused}): the report would be "
                             "rejected and its fee paid to the accused (pass --even-if-included to send it anyway)")
        what = f"report {accused}'s included update {index} in round {round} of task {task_id} (it will be rejected)"
    fee = s.flc.report_fee()
    res = _send(s, what, lambda: s.flc.report_invalid_update(s.fc, spec, task_id, round, index), value=fee)
    _say_decided(s, res)
    return 0


def _say_decided(s: Session, res) -> None:
    """One line on how a report sent in ``res`` was decided (nothing when nothing was sent)."""
    if res is not None:
        d = res.event("ReportDecided").args
        s.say(f"  report {d['reportId']}: {'upheld' if d['upheld'] else 'rejected'}"
              + (f", {d['confiscated']} wei confiscated, reward {d['reward']} wei" if d["upheld"] else ""))


def cmd_report_aggregate(args) -> int:
    from fedcoin.flchain.binding import ReportKind

    task_id = parse_int(args.task, "TASK", minimum=1)
    round = parse_int(args.round, "ROUND", minimum=1)
    s = _open(args)
    _finalized_round(s, task_id, round)
    server = s.fc.get_task(task_id).server
    if s.flc.joined_at(task_id, server) == 0:
        raise FLCliError(f"task {task_id}'s server {server} never joined it through FLChain: there is no deposit "
                         "to report")
    if s.flc.was_reported(ReportKind.AGGREGATE, task_id, round, server):
        raise FLCliError(f"round {round}'s global model of task {task_id} was already reported")
    wrong, wrong_stake, revealed = s.flc.jury().verdict(task_id, round)
    if not wrong and not args.even_if_right:
        raise FLCliError(f"the miners' verdict is that round {round}'s global model is the aggregate ({wrong_stake} of "
                         f"{revealed} revealed wei attest 'wrong'): the report would be rejected and its fee paid to "
                         "the server (pass --even-if-right to send it anyway)")
    fee = s.flc.report_fee()
    res = _send(s, f"report server {server}: round {round}'s global model of task {task_id} is not the aggregate "
                   f"({wrong_stake} of {revealed} revealed wei attest 'wrong')",
                lambda: s.flc.report_aggregate(s.fc, task_id, round), value=fee)
    _say_decided(s, res)
    return 0


def cmd_report_unqualified(args) -> int:
    from fedcoin.flchain.binding import ReportKind, TrainerStatus

    trainer = parse_address(args.trainer, "TRAINER")
    s = _open(args)
    tr = _registered(s, trainer)
    if tr.status != TrainerStatus.QUALIFIED:
        raise FLCliError(f"{trainer} is {tr.status.name.lower()}, not qualified: there is nothing to report")
    if s.flc.was_reported(ReportKind.UNQUALIFIED, 0, 0, trainer):
        raise FLCliError(f"{trainer} was already reported as unqualified")
    fee = s.flc.report_fee()
    res = _send(s, f"report {trainer} as unqualified (fee {_eth(fee)} to auth {s.flc.auth()})",
                lambda: s.flc.report_unqualified(trainer), value=fee)
    if res is not None:
        s.say(f"  report {res.event('ReportFiled').args['reportId']} is pending auth's judgement")
    return 0


def cmd_judge(args) -> int:
    from fedcoin.flchain.binding import ReportState

    report_id = parse_int(args.report, "REPORT")
    upheld = args.verdict == "upheld"
    s = _open(args)
    auth = s.flc.auth()
    if auth != s.me:
        raise FLCliError(f"only auth {auth} judges reports, not {s.me}")
    n = s.flc.report_count()
    if report_id >= n:
        raise FLCliError(f"report {report_id} does not exist (reportCount is {n})")
    rep = s.flc.get_report(report_id)
    if rep.state != ReportState.PENDING:
        raise FLCliError(f"report {report_id} is {rep.state.name.lower()}, not pending")
    _send(s, f"judge report {report_id} against {rep.accused}: {args.verdict}",
          lambda: s.flc.judge_unqualified(report_id, upheld))
    return 0


# ----------------------------------------------------------------------------- reliability, marketplace


def cmd_record(args) -> int:
    task_id = parse_int(args.task, "TASK", minimum=1)
    round = parse_int(args.round, "ROUND")
    s = _open(args)
    _finalized_round(s, task_id, round)
    if s.flc.is_recorded(task_id, round):
        raise FLCliError(f"round {round} of task {task_id} is already recorded")
    if s.fc.round_finalized(task_id, round) is None:
        raise FLCliError(f"no RoundFinalized event for round {round} of task {task_id}")
    _send(s, f"record round {round} of task {task_id} into its trainers' reliability",
          lambda: s.flc.record_round(s.fc, task_id, round))
    return 0


def cmd_list(args) -> int:
    from fedcoin.chain.types import RoundStatus, TaskStatus
    from fedcoin.content.store import ContentNotFoundError, parse_hash

    task_id = parse_int(args.task, "TASK", minimum=1)
    price = parse_amount(args.price, "--price", maximum=UINT128)
    locator = str(args.model_locator).strip()
    if not locator:
        raise FLCliError("--model-locator is empty")
    model_hash = None
    if args.model_hash is not None:
        try:
            model_hash = parse_hash(args.model_hash)
        except ValueError as e:
            raise FLCliError(f"--model-hash: {e}") from None
    prev = None if args.supersedes is None else parse_int(args.supersedes, "--supersedes")
    s = _open(args)
    t = _task(s, task_id)
    if t.server != s.me:
        raise FLCliError(f"task {task_id}'s server is {t.server}, not {s.me}: only it lists the task's model")
    if t.status != TaskStatus.COMPLETED:
        raise FLCliError(f"task {task_id} is {t.status.name.lower()}: a model is listed once its task completed")
    for rnd in range(t.rounds):
        if s.fc.get_round(task_id, rnd).status == RoundStatus.FINALIZED and not s.flc.is_recorded(task_id, rnd):
            raise FLCliError(f"round {rnd} of task {task_id} is not recorded yet: fedcoin flchain record {task_id} {rnd}")
    trainers = s.flc.task_trainers(task_id)
    if not trainers:
        raise FLCliError(f"no trainer has a recorded positive contribution to task {task_id}: nobody to pay")
    if sum(s.flc.contribution(task_id, x) for x in trainers) != s.flc._call("taskContribution", task_id):
        raise FLCliError(f"the Joined events do not account for task {task_id}'s whole contribution (node pruned logs?)")
    if prev is not None:
        pm = _model(s, prev)
        if pm.lister != s.me:
            raise FLCliError(f"model {prev} was listed by {pm.lister}, not {s.me}: it cannot be superseded by it")
    if model_hash is None:
        try:
            model_hash = keccak(_store(args).get_unverified(locator))
        except (ContentNotFoundError, ValueError) as e:
            raise FLCliError(f"cannot hash the model at {locator} ({e}); pass --model-hash") from None
    res = _send(s, f"list task {task_id}'s model {locator} at {_eth(price)} per licence, split among "
                   f"{len(trainers)} trainer(s)",
                lambda: s.flc.list_model(task_id, price, model_hash, locator, prev_model=prev, trainers=trainers))
    if res is not None:
        ev = res.event("ModelListed").args
        s.say(f"  model {ev['modelId']} listed; per sale: " +
              ", ".join(f"{a} {w} wei" for a, w in zip(ev["trainers"], ev["amounts"])) + f", dust {ev['dust']} wei")
    return 0


def cmd_buy(args) -> int:
    from fedcoin.flchain.binding import ModelStatus

    model_id = parse_int(args.model, "MODEL")
    s = _open(args)
    m = _model(s, model_id)
    st = s.flc.model_status(model_id)
    if st != ModelStatus.ON_SALE:
        why = ("a report against its task was upheld" if st == ModelStatus.PROBLEMATIC else "its lister delisted it")
        raise FLCliError(f"model {model_id} is not for sale: it is {st.name.lower()} ({why})")
    if s.flc._call("bought", model_id, s.me):
        raise FLCliError(f"{s.me} already bought model {model_id}")
    _send(s, f"buy a licence to model {model_id} (task {m.task_id})", lambda: s.flc.buy(model_id, m.price),
          value=m.price)
    return 0


def cmd_evaluate(args) -> int:
    model_id = parse_int(args.model, "MODEL")
    score = parse_int(args.score, "SCORE", minimum=1, maximum=MAX_SCORE)
    s = _open(args)
    _model(s, model_id)
    if not s.flc._call("bought", model_id, s.me):
        raise FLCliError(f"{s.me} did not buy model {model_id}: only a buyer evaluates it")
    if s.flc.events("Evaluated", modelId=model_id, buyer=s.me):
        raise FLCliError(f"{s.me} already evaluated model {model_id}")
    _send(s, f"score model {model_id} {score}/{MAX_SCORE}", lambda: s.flc.evaluate(model_id, score))
    return 0


def cmd_claim_sales(args) -> int:
    model_id = parse_int(args.model, "MODEL")
    s = _open(args)
    m = _model(s, model_id)
    trainers = list(s.flc.listing(model_id).args["trainers"])
    if s.me not in trainers:
        raise FLCliError(f"{s.me} is not a trainer of model {model_id}")
    amount, _ = s.flc.sale_proof(model_id, s.me)
    owed = amount * m.sales - s.flc.claimed_sales(model_id, s.me)
    if owed == 0:
        s.say(f"{s.me}: nothing to claim from model {model_id} ({m.sales} sale(s), {amount} wei each, all claimed)")
        return 0
    _send(s, f"claim {_eth(owed)} from {m.sales} sale(s) of model {model_id}", lambda: s.flc.claim_sales(model_id))
    return 0


def cmd_delist(args) -> int:
    from fedcoin.flchain.binding import ModelStatus

    model_id = parse_int(args.model, "MODEL")
    s = _open(args)
    m = _model(s, model_id)
    if m.lister != s.me:
        raise FLCliError(f"model {model_id} was listed by {m.lister}, not {s.me}")
    if m.status == ModelStatus.UNAVAILABLE:
        raise FLCliError(f"model {model_id} is already unavailable")
    _send(s, f"take model {model_id} off sale", lambda: s.flc.delist(model_id))
    return 0


# ----------------------------------------------------------------------------- show


def cmd_show(args) -> int:
    s = _open(args, keys=False)
    what = args.what
    if what == "trainer":
        who = parse_address(args.id, "ADDR")
        tr = s.flc.get_trainer(who)
        rec = _plain(tr)
        rec.update(address=who, free=tr.deposit - tr.frozen, reliability_ppm=s.flc.reliability(who),
                   credit=s.flc.credits(who))
        evs = s.flc.events("TrainerRecord", trainer=who)
        rec["data_locator"] = evs[-1].args["dataLocator"] if evs else None
    elif what == "model":
        mid = parse_int(args.id, "ID")
        m = _model(s, mid)
        ev = s.flc.listing(mid).args
        rec = _plain(m)
        rec.update(model_id=mid, status=s.flc.model_status(mid).name.lower(), listed_status=m.status.name.lower(),
                   locator=ev["locator"], trainers=list(ev["trainers"]), amounts=[int(a) for a in ev["amounts"]])
    elif what == "report":
        rid = parse_int(args.id, "ID")
        n = s.flc.report_count()
        if rid >= n:
            raise FLCliError(f"report {rid} does not exist (reportCount is {n})")
        rec = dict(_plain(s.flc.get_report(rid)), report_id=rid)
    else:
        rid = parse_int(args.id, "ID")
        rec = dict(_plain(_request(s, rid)), request_id=rid)
    if args.json:
        print(json.dumps(rec, indent=1))
    else:
        width = max(len(k) for k in rec)
        print(f"{what} {args.id} on FLChain {s.flc.address}:")
        for k, v in rec.items():
            print(f"  {k:<{width}}  {v}")
    return 0


# ----------------------------------------------------------------------------- index and queries


def _index(args, s: Session):
    from fedcoin.roles.flchain_index import FLChainIndex

    return FLChainIndex.for_flchain(s.flc, args.db, batch=getattr(args, "batch", 2000),
                                    from_block=getattr(args, "from_block", 0))


def cmd_index(args) -> int:
    if args.batch < 1:
        raise FLCliError("--batch must be at least 1")
    s = _open(args, keys=False)
    with _index(args, s) as idx:
        rep = idx.sync()
        n_models = idx.db.execute("SELECT COUNT(*) FROM flc_models").fetchone()[0]
        n_reports = idx.db.execute("SELECT COUNT(*) FROM flc_reports").fetchone()[0]
        print(f"index {idx.path} of FLChain {s.flc.address}: {rep}; {idx.events.count()} events, {n_models} model(s), "
              f"{n_reports} report(s)")
    return 0


def cmd_query(args) -> int:
    from fedcoin.flchain.binding import ModelStatus
    from fedcoin.roles.flchain_index import UnknownModel

    q = args.query
    target: Any = None
    if q == "judgement":
        text = str(args.id).strip()
        target = parse_address(text, "TRAINER") if text.lower().startswith("0x") else parse_int(text, "MODEL")
    elif q in ("for-sale", "problematic"):
        target = parse_int(args.id, "MODEL")
    status = None
    if q == "models" and args.status is not None:
        status = {"on-sale": ModelStatus.ON_SALE, "problematic": ModelStatus.PROBLEMATIC,
                  "unavailable": ModelStatus.UNAVAILABLE}[args.status]
    s = _open(args, keys=False)
    with _index(args, s) as idx:
        if not args.no_sync:
            idx.sync()
        try:
            if q == "for-sale":
                ans, rec = idx.is_for_sale(target), _plain(idx.model(target))
            elif q == "problematic":
                ans, rec = idx.is_problematic(target), _plain(idx.model(target))
            elif q == "judgement":
                pending = idx.pending_reports(target)
                ans, rec = bool(pending), {"pending_reports": pending}
            else:
                rows = [_plain(m) for m in idx.models(status)]
                if args.json:
                    print(json.dumps({"block": idx.head, "models": rows}, indent=1))
                else:
                    for m in rows:
                        print(f"model {m['model_id']}: task {m['task_id']}, {m['status']}, price {m['price']} wei, "
                              f"lister {m['lister']}")
                    print(f"{len(rows)} model(s) (index at block {idx.head})")
                return 0
        except UnknownModel as e:
            raise FLCliError(str(e)) from None
        head = idx.head
    if args.json:
        print(json.dumps({"query": q, "id": args.id, "answer": ans, "block": head, **rec}, indent=1))
    else:
        label = {"for-sale": "for sale", "problematic": "problematic", "judgement": "under judgement"}[q]
        extra = f" (pending reports {', '.join(map(str, rec['pending_reports']))})" if q == "judgement" and ans else ""
        print(f"{'model ' if isinstance(target, int) else ''}{target}: {'' if ans else 'not '}{label}{extra} "
              f"(index at block {head})")
    return 0


def cmd_deploy(args) -> int:
    from fedcoin.chain import connect
    from fedcoin.chain.binding import open_fedcoin

    params = flchain_params_from_args(args)
    auth = None if args.auth is None else parse_address(args.auth, "--auth")
    account = account_from_args(args)
    fc = open_fedcoin(args.rpc, args.fedcoin)
    if args.dry_run:
        print(f"would deploy FLChain beside FedCoin {fc.address} with {params}; nothing was sent")
        return 0
    deploy_flchain(connect(args.rpc), account, fc.address, auth or account.address, params)
    return 0


# ----------------------------------------------------------------------------- argparse


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one worth showing (not None, not a False flag)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _common(p: argparse.ArgumentParser, *, keys: bool = True) -> None:
    p.formatter_class = _HelpFormatter
    p.add_argument("--rpc", default=DEFAULT_RPC, help="JSON-RPC URL")
    p.add_argument("--flchain", default=None, metavar="ADDRESS", help="FLChain address (default: the recorded one)")
    if keys:
        add_key_arguments(p)
        p.add_argument("--dry-run", action="store_true", help="check and say what would be sent; send nothing")


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="local", help="content store: local | local:DIR | ipfs:http://127.0.0.1:5001")


def _leaf(sub, name: str, help_: str, handler, *, keys: bool = True, cmd: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    _common(p, keys=keys)
    p.set_defaults(handler=handler, cmd=cmd or name)
    return p


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = _leaf(sub, "register", "register as a trainer: data description in the content store, deposit", cmd_register)
    p.add_argument("--data", required=True, metavar="FILE", help="the JSON data resource description")
    p.add_argument("--deposit", default=None, metavar="ETH", help="deposit (default: FLChain's minimum)")
    _store_arg(p)
    p = _leaf(sub, "update", "publish a new version of the trainer's record (a new data description)", cmd_update)
    p.add_argument("--data", required=True, metavar="FILE", help="the JSON data resource description")
    _store_arg(p)
    p = _leaf(sub, "deposit", "add to the trainer's deposit", cmd_deposit)
    p.add_argument("amount", metavar="ETH")
    p = _leaf(sub, "withdraw-deposit", "take free deposit back (then withdraw the credit)", cmd_withdraw_deposit)
    p.add_argument("amount", metavar="ETH")
    p.add_argument("--keep-credit", action="store_true", help="leave it in the FLChain credit (no withdraw)")
    p = _leaf(sub, "available", "say whether the trainer takes new work", cmd_available)
    p.add_argument("answer", choices=("yes", "no"))
    _leaf(sub, "withdraw", "withdraw the account's FLChain credit (rewards, compensation, fees, dust)", cmd_withdraw)

    p = _leaf(sub, "require", "(requester) require a task's clients to be trainers with a frozen deposit", cmd_require)
    p.add_argument("task", metavar="TASK")
    p.add_argument("--deposit", required=True, metavar="ETH", help="deposit each trainer freezes")
    p.add_argument("--request", metavar="REQUEST",
                   help="the federation request whose Algorithm 1 allocation the task's clients are (closed to "
                        "intentions; `fedcoin audit` recomputes it)")
    p = _leaf(sub, "join", "(trainer) freeze the task's required deposit to take part", cmd_join)
    p.add_argument("task", metavar="TASK")
    p = _leaf(sub, "release", "(trainer) unfreeze the deposit of a completed or refunded task", cmd_release)
    p.add_argument("task", metavar="TASK")

    p = _leaf(sub, "request", "(requester) publish a model request for collaboration intentions", cmd_request)
    p.add_argument("--desc", required=True, metavar="FILE", help="the model description (stored, hash on chain)")
    p.add_argument("--seats", required=True, metavar="N", help="trainers the federation takes")
    p.add_argument("--deadline", required=True, metavar="SECONDS", help="intentions close this many seconds from now")
    _store_arg(p)
    p = _leaf(sub, "intention", "(trainer) post a collaboration intention for a request", cmd_intention)
    p.add_argument("request", metavar="REQUEST")
    p.add_argument("--price", required=True, metavar="ETH", help="expected price EPRICE")
    p.add_argument("--income", required=True, metavar="ETH", help="expected income EINC")
    p.add_argument("--cost", required=True, metavar="ETH", help="cost estimate COST")
    p = _leaf(sub, "federation", "the Algorithm 1 allocation recomputed from the chain's intentions", cmd_federation,
              keys=False)
    p.add_argument("request", nargs="*", metavar="REQUEST", help="requests to print (default: all)")
    p.add_argument("--alone", action="store_true", help="allocate over these requests only (default: all requests)")
    p.add_argument("--json", action="store_true")

    rp = sub.add_parser("report", help="report misbehaviour (an invalid update, a wrong global model, an "
                                       "unqualified trainer)")
    rsub = rp.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = _leaf(rsub, "update", "report registration INDEX of a finalized round as invalid (the spec is the evidence)",
              cmd_report_update, cmd="report update")
    p.add_argument("task", metavar="TASK")
    p.add_argument("round", metavar="ROUND")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("--even-if-included", action="store_true",
                   help="send even though the round included the update (the report is then rejected)")
    _store_arg(p)
    p = _leaf(rsub, "aggregate", "report that round ROUND's global model is not the aggregate of round ROUND-1 "
              "(the miners' stake in the AggregateJury decides)", cmd_report_aggregate, cmd="report aggregate")
    p.add_argument("task", metavar="TASK")
    p.add_argument("round", metavar="ROUND")
    p.add_argument("--even-if-right", action="store_true",
                   help="send even though the miners' verdict is 'right' (the report is then rejected)")
    p = _leaf(rsub, "unqualified", "report a trainer as unqualified (auth judges it)", cmd_report_unqualified,
              cmd="report unqualified")
    p.add_argument("trainer", metavar="TRAINER")
    p = _leaf(sub, "judge", "(auth) decide a pending 'unqualified' report", cmd_judge)
    p.add_argument("report", metavar="REPORT")
    p.add_argument("verdict", choices=("upheld", "rejected"))

    p = _leaf(sub, "record", "record a finalized round's Shapley values into the trainers' reliability", cmd_record)
    p.add_argument("task", metavar="TASK")
    p.add_argument("round", metavar="ROUND")
    p = _leaf(sub, "list", "(server) list a completed task's model for sale", cmd_list)
    p.add_argument("task", metavar="TASK")
    p.add_argument("--price", required=True, metavar="ETH", help="price of one licence")
    p.add_argument("--model-locator", required=True, metavar="LOC", help="where the model is (content store)")
    p.add_argument("--model-hash", default=None, metavar="HEX", help="keccak of the model (default: read it from the store)")
    p.add_argument("--supersedes", default=None, metavar="MODEL", help="an earlier model of the lister this replaces")
    _store_arg(p)
    p = _leaf(sub, "buy", "buy a licence to a model on sale", cmd_buy)
    p.add_argument("model", metavar="MODEL")
    p = _leaf(sub, "evaluate", "(buyer) score a bought model 1..5", cmd_evaluate)
    p.add_argument("model", metavar="MODEL")
    p.add_argument("score", metavar="SCORE")
    p = _leaf(sub, "claim-sales", "(trainer) claim its share of a model's sales", cmd_claim_sales)
    p.add_argument("model", metavar="MODEL")
    p = _leaf(sub, "delist", "(lister) take a model off sale", cmd_delist)
    p.add_argument("model", metavar="MODEL")

    sp = sub.add_parser("show", help="print a trainer, model, report or request from the contract's views")
    ssub = sp.add_subparsers(dest="what", metavar="WHAT", required=True)
    for what, metavar in (("trainer", "ADDR"), ("model", "ID"), ("report", "ID"), ("request", "ID")):
        p = _leaf(ssub, what, f"print {what} {metavar}", cmd_show, keys=False, cmd=f"show {what}")
        p.add_argument("id", metavar=metavar)
        p.add_argument("--json", action="store_true")

    qp = sub.add_parser("query", help="answer from the SQLite index: for sale, under judgement, problematic")
    qsub = qp.add_subparsers(dest="query", metavar="QUERY", required=True)
    for q, metavar, help_ in (("for-sale", "MODEL", "is the model for sale?"),
                              ("judgement", "TRAINER-OR-MODEL", "is a report against the trainer (or a trainer of the "
                                                                "model) pending?"),
                              ("problematic", "MODEL", "is the model problematic?"),
                              ("models", None, "list models, by effective status")):
        p = _leaf(qsub, q, help_, cmd_query, keys=False, cmd=f"query {q}")
        if metavar:
            p.add_argument("id", metavar=metavar)
        else:
            p.add_argument("--status", choices=("on-sale", "problematic", "unavailable"), default=None)
        p.add_argument("--db", type=Path, default=None, help="SQLite file (default $FEDCOIN_HOME/index/<chain>-<address>.sqlite)")
        p.add_argument("--no-sync", action="store_true", help="answer from the file as it is (no RPC reads of logs)")
        p.add_argument("--json", action="store_true")

    p = _leaf(sub, "index", "index FLChain's events into SQLite (incremental, reorg-safe)", cmd_index, keys=False)
    p.add_argument("--db", type=Path, default=None, help="SQLite file (default $FEDCOIN_HOME/index/<chain>-<address>.sqlite)")
    p.add_argument("--batch", type=int, default=2000, help="blocks per batch")
    p.add_argument("--from-block", type=int, default=0, help="first block to index")

    p = sub.add_parser("deploy", help="deploy FLChain beside an existing FedCoin and record it",
                       description="deploy FLChain beside an existing FedCoin and record it",
                       formatter_class=_HelpFormatter)
    p.add_argument("--rpc", default=DEFAULT_RPC, help="JSON-RPC URL")
    p.add_argument("--fedcoin", default=None, metavar="ADDRESS", help="FedCoin address (default: the recorded one)")
    add_key_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="check the parameters; send nothing")
    add_flchain_param_arguments(p)
    p.set_defaults(handler=cmd_deploy, cmd="deploy")


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, ContractRevert, RPCUnavailable
    from fedcoin.content.store import StoreError
    from fedcoin.roles.index import IndexFileError

    name = f"{PROG} {getattr(args, 'cmd', args.verb)}"
    try:
        return int(args.handler(args) or 0)
    except ContractRevert as e:
        print(f"{name}: the contract refused it: {e}", file=sys.stderr)
        return 1
    except (FLCliError, KeyLoadError, LookupError, ValueError, RPCUnavailable) as e:
        print(f"{name}: {e}" + ("" if "nothing was sent" in str(e) else "; nothing was sent"), file=sys.stderr)
        return 2
    except (ChainError, StoreError, IndexFileError, sqlite3.Error) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
