"""``fedcoin request``: deposit a budget V for a new FedCoin task, follow it, print where every wei went.

Create a task (the requester's key comes from :mod:`fedcoin.chain.keys` — a keystore file or
``$FEDCOIN_PRIVATE_KEY`` — never from the command line)::

    fedcoin request --rpc http://127.0.0.1:8545 --server 0xSERVER --clients 0xA,0xB,0xC \\
        --value 1.5ether --rounds 2 --split 7000,1000,2000 --follow

``--clients`` takes a comma list or ``@FILE`` (addresses separated by commas or newlines,
``#`` comments). ``--value`` takes wei (``1500000000000000000``) or a unit (``1.5ether``,
``20gwei``). ``--contract`` defaults to the deployment recorded for the chain
(:mod:`fedcoin.chain.deployment`). ``--follow`` polls until the task is Completed or Refunded,
printing a progress line whenever something changes, then prints the accounting
(:mod:`fedcoin.roles.accounting`). ``fedcoin request --status --task N`` prints it for an existing task.

Every input is checked before anything is sent, so a rejected request moves no funds and
costs no gas: malformed or zero addresses, duplicate clients, the requester or the server
listed as a client, a split not summing to 10000, R outside 1..1000, V ≤ 0, a key that does
not load, an unreachable RPC (the message names the URL), no contract at the address, or a
balance below V. Exit codes: 0 done; 1 the contract reverted, the follow timed out, or the
accounting does not balance; 2 bad input or environment (nothing was sent).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from eth_utils import is_checksum_address, is_checksum_formatted_address, is_hex_address, to_checksum_address

from fedcoin.chain.keys import KeyLoadError, account_from_args, add_key_arguments
from fedcoin.chain.types import RoundStatus, TaskConfig, TaskStatus
from fedcoin.protocol.posap import BPS, DEFAULT_SPLIT, MAX_DATA_COST_CAP, PAYMENT_RULES

ZERO_ADDRESS = "0x" + "00" * 20
MAX_CLIENTS = 1024  # FedCoin.MAX_CLIENTS
MAX_ROUNDS = 1000  # FedCoin.MAX_ROUNDS
UNITS = {"wei": 0, "kwei": 3, "mwei": 6, "gwei": 9, "szabo": 12, "finney": 15, "ether": 18, "eth": 18}
_VALUE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")

#: Environment variables read by ``scripts/request.py`` (brownie passes no arguments to main).
ENV_VARS = {
    "FEDCOIN_SERVER": "--server", "FEDCOIN_CLIENTS": "--clients", "FEDCOIN_V_WEI": "--value",
    "FEDCOIN_ROUNDS": "--rounds", "FEDCOIN_SPLIT": "--split", "FEDCOIN_ACCEPT_WINDOW": "--accept-window",
    "FEDCOIN_CONTRACT": "--contract", "FEDCOIN_POLL": "--poll", "FEDCOIN_TIMEOUT": "--timeout",
    "FEDCOIN_TASK": "--task", "FEDCOIN_PAYMENT": "--payment", "FEDCOIN_MAX_DATA_COST": "--max-data-cost",
}


class RequestError(ValueError):
    """A request parameter is invalid (nothing was sent)."""


@dataclass(frozen=True)
class RequestSpec:
    """A validated task request.

    Attributes:
        server: the FL server (checksummed). clients: listed clients (checksummed, ascending).
        value: V in wei. rounds: R. split: (train, com, sap) basis points summing to 10000.
        accept_window: seconds the server has to accept.
        task: the task's consensus parameters and windows (D, p, relative, registration / commit /
            reveal / claim windows; :class:`fedcoin.chain.types.TaskConfig` defaults).
    """

    server: str
    clients: tuple[str, ...]
    value: int
    rounds: int
    split: tuple[int, int, int] = DEFAULT_SPLIT
    accept_window: int = 3600
    task: TaskConfig = TaskConfig()


# ----------------------------------------------------------------------------- parsing


def parse_value(text: str) -> int:
    """Wei from ``"1000"``, ``"1.5ether"``, ``"20 gwei"`` (an exact whole number of wei, > 0)."""
    m = _VALUE_RE.match(str(text))
    if not m:
        raise RequestError(f"--value {text!r}: expected wei or a number with a unit ({', '.join(UNITS)}), e.g. 1.5ether")
    num, unit = m.group(1), (m.group(2).lower() or "wei")
    if unit not in UNITS:
        raise RequestError(f"--value {text!r}: unknown unit {unit!r} (use one of {', '.join(UNITS)})")
    try:
        wei = Decimal(num) * (Decimal(10) ** UNITS[unit])
    except InvalidOperation:
        raise RequestError(f"--value {text!r} is not a number") from None
    if wei != wei.to_integral_value():
        raise RequestError(f"--value {text!r} is not a whole number of wei")
    if wei <= 0:
        raise RequestError(f"--value {text!r}: the budget V must be positive")
    return int(wei)


def parse_split(text: str | Sequence[int]) -> tuple[int, int, int]:
    """``"7000,1000,2000"`` → (7000, 1000, 2000); three non-negative ints summing to 10000."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    try:
        split = tuple(int(p) for p in parts)
    except ValueError:
        raise RequestError(f"--split {text!r}: expected three integers TRAIN,COM,SAP in basis points") from None
    if len(split) != 3 or any(s < 0 for s in split):
        raise RequestError(f"--split {text!r}: expected three non-negative integers TRAIN,COM,SAP")
    if sum(split) != BPS:
        raise RequestError(f"--split {text!r}: the shares sum to {sum(split)}, they must sum to {BPS}")
    return split  # type: ignore[return-value]


def parse_address(text: str, what: str) -> str:
    """A checksummed, non-zero address; the message names ``what`` and why it was refused."""
    a = str(text).strip()
    if not is_hex_address(a):
        raise RequestError(f"{what} {a!r} is not an address (expected 0x followed by 40 hex digits)")
    if is_checksum_formatted_address(a) and not is_checksum_address(a):  # mixed case, wrong EIP-55 checksum
        raise RequestError(f"{what} {a!r} has a bad EIP-55 checksum (mistyped?); "
                           "pass it checksummed or all lower case")
    if int(a, 16) == 0:
        raise RequestError(f"{what} is the zero address")
    return to_checksum_address(a)


def parse_clients(text: str) -> list[str]:
    """A comma list of addresses, or ``@FILE`` with addresses separated by commas/newlines."""
    raw = str(text)
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        except OSError as e:
            raise RequestError(f"--clients {text!r}: cannot read {path}: {e.strerror}") from None
    items = [x.strip() for x in re.split(r"[,\s]+", raw) if x.strip()]
    if not items:
        raise RequestError(f"--clients {text!r}: no client address given")
    return [parse_address(x, "client") for x in items]


def suggest_windows(n_clients: int, *, val_rows: int = 1000, hidden: int = 200) -> tuple[int, int, int]:
    """(registration, commit, reveal) windows in seconds, sized so that a miner on a loaded
    two-core machine commits in time.

    The commit window covers what a miner does after publication: fetch, verify and decode the
    K updates and compile (about 30 s + 0.5 s per client measured on the loaded 2-core machine
    for MNIST and an MLP), then sample to ½·D — about 20·K permutations at 4.6e-10 s per
    client × validation row × hidden unit (9.1 ms per permutation at K = 100, 1,000 rows, H = 200
    on a quiet machine), doubled for load — plus 15 s for the commit transaction. The reveal
    window is one transaction per miner: 60 s. The registration window is the clients' local
    training and upload: 300 s. Each is at least the contract's 20 s floor.
    """
    k = max(1, int(n_clients))
    per_perm = 4.6e-10 * k * val_rows * hidden * 2.0
    commit = 30 + 0.5 * k + per_perm * 20 * k + 15
    return 300, max(60, int(math.ceil(commit / 5.0) * 5)), 60


def build_spec(
    *, server: str, clients: str | Sequence[str], value: str | int, rounds: int | str = 1,
    split: str | Sequence[int] = DEFAULT_SPLIT, accept_window: int | str = 3600, requester: str | None = None,
    difficulty: float | None = None, absolute: bool = False, p: int | None = None,
    registration_window: int | None = None, commit_window: int | None = None, reveal_window: int | None = None,
    claim_window: int | None = None, val_rows: int = 1000, hidden: int = 200,
    payment: str = "shapley", max_data_cost: int | str | None = None,
) -> RequestSpec:
    """Parse and validate a request (everything the contract would reject, and more).

    Raises:
        RequestError: with a message saying which input is wrong and why.
    """
    srv = parse_address(server, "--server")
    cl = parse_clients(clients) if isinstance(clients, str) else [parse_address(c, "client") for c in clients]
    seen: set[str] = set()
    for c in cl:
        if c in seen:
            raise RequestError(f"client {c} is listed twice")
        seen.add(c)
    if len(cl) > MAX_CLIENTS:
        raise RequestError(f"{len(cl)} clients: at most {MAX_CLIENTS} per task")
    if srv in seen:
        raise RequestError(f"the server {srv} is also listed as a client; a server may not be a client of its task")
    if requester is not None and to_checksum_address(requester) in seen:
        raise RequestError(f"the requester {to_checksum_address(requester)} is listed as a client; "
                           "a requester may not be a client of its own task")
    wei = value if isinstance(value, int) and not isinstance(value, bool) else parse_value(str(value))
    if wei <= 0:
        raise RequestError(f"--value {value}: the budget V must be positive")
    try:
        r = int(rounds)
        window = int(accept_window)
    except (TypeError, ValueError):
        raise RequestError(f"--rounds {rounds!r} / --accept-window {accept_window!r} must be integers") from None
    if not 1 <= r <= MAX_ROUNDS:
        raise RequestError(f"--rounds {r}: must be between 1 and {MAX_ROUNDS}")
    if window <= 0:
        raise RequestError(f"--accept-window {window}: must be a positive number of seconds")
    reg, com, rev = suggest_windows(len(cl), val_rows=val_rows, hidden=hidden)
    d = TaskConfig()
    windows = {"registration_window": registration_window or reg, "commit_window": commit_window or com,
               "reveal_window": reveal_window or rev, "claim_window": claim_window or d.claim_window}
    for name, w in windows.items():
        lo, hi = (86400, 365 * 86400) if name == "claim_window" else (20, 7 * 86400)
        if not lo <= int(w) <= hi:
            raise RequestError(f"--{name.replace('_', '-')} {w}: must be between {lo} and {hi} seconds")
    if p is not None and p not in (1, 2, 255):
        raise RequestError(f"--p {p}: must be 1, 2 or 255 (infinity)")
    if difficulty is None:
        dfix = d.difficulty if not absolute else 10**17
    else:
        if not difficulty > 0:
            raise RequestError(f"--difficulty {difficulty}: must be positive")
        dfix = int(round(float(difficulty) * 10**18))
        if not absolute and dfix > 5 * 10**17:
            raise RequestError(f"--difficulty {difficulty}: a relative D is at most 0.5 (half of ‖centre‖)")
    if payment not in PAYMENT_RULES:
        raise RequestError(f"--payment {payment!r}: expected one of {', '.join(PAYMENT_RULES)}")
    cap = d.max_data_cost
    if max_data_cost is not None:
        try:
            cap = int(max_data_cost)
        except (TypeError, ValueError):
            raise RequestError(f"--max-data-cost {max_data_cost!r}: must be an integer") from None
        if not 1 <= cap <= MAX_DATA_COST_CAP:
            raise RequestError(f"--max-data-cost {cap}: must be between 1 and {MAX_DATA_COST_CAP}")
    task = TaskConfig(difficulty=dfix, p=d.p if p is None else int(p), relative=not absolute,
                      payment=payment, max_data_cost=cap, **{k: int(v) for k, v in windows.items()})
    return RequestSpec(srv, tuple(sorted(cl, key=lambda a: int(a, 16))), wei, r, parse_split(split), window, task)


# ----------------------------------------------------------------------------- chain side


def create_request(fc, spec: RequestSpec):
    """Send ``createTask`` for ``spec`` as ``fc.account``; returns the :class:`fedcoin.chain.TxResult`."""
    return fc.create_task(spec.server, list(spec.clients), spec.rounds, spec.value, split=spec.split,
                          accept_window=spec.accept_window, config=spec.task)


def progress_line(fc, task_id: int) -> str:
    """One line saying where the task stands (status, round, attempt, commits, escrow)."""
    t = fc.get_task(task_id)
    line = f"task {task_id}: {t.status.name.capitalize()}"
    if t.status == TaskStatus.ACCEPTED:
        r = fc.get_round(task_id, t.current_round)
        line += f", round {t.current_round + 1}/{t.rounds} {r.status.name.capitalize()}"
        if r.status == RoundStatus.OPEN:
            line += f" ({r.registered} of {t.client_count} updates registered)"
        else:
            line += (f" attempt {r.attempt}, {r.commit_count} commits, {r.reveal_count} reveals, "
                     f"reveal deadline {r.reveal_deadline}")
    line += f", blocks {fc.block_count()}, escrow {t.escrow} wei"
    return line


def follow(fc, task_id: int, *, poll: float = 2.0, timeout: float | None = None, out: TextIO | None = None) -> bool:
    """Poll until the task is Completed or Refunded; print a progress line on every change.

    When the current round's reveal deadline is due by the next block's time and nobody has
    finalized it (e.g. nobody committed), and ``fc`` can sign, the requester finalizes it
    itself (anyone may), so a round never waits forever on an on-demand chain. A node outage
    is waited out.

    Returns True when the task finished, False on timeout.
    """
    from fedcoin.chain import ContractRevert, RPCUnavailable

    out = out or sys.stdout
    deadline = None if not timeout else time.monotonic() + timeout
    last = None
    while True:
        try:
            line = progress_line(fc, task_id)
            if line != last:
                print(line, file=out, flush=True)
                last = line
            t = fc.get_task(task_id)
            if t.status in (TaskStatus.COMPLETED, TaskStatus.REFUNDED):
                return True
            if t.status == TaskStatus.ACCEPTED and fc.account is not None:
                r = fc.get_round(task_id, t.current_round)
                if r.status == RoundStatus.PUBLISHED and fc.next_block_time() > r.reveal_deadline:
                    try:
                        fc.finalize(task_id, t.current_round)
                        print(f"task {task_id}: finalized round {t.current_round} (its reveal deadline had passed)",
                              file=out, flush=True)
                    except ContractRevert:
                        pass  # someone else finalized first, or the node's clock is not there yet
        except RPCUnavailable as e:
            if last != "outage":
                print(f"task {task_id}: node unreachable ({e}); retrying", file=out, flush=True)
                last = "outage"
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def print_status(fc, task_id: int, out: TextIO | None = None) -> bool:
    """Print the payout table (if any round finalized) and the accounting; True if it balances."""
    from fedcoin.roles.accounting import format_payout_table, format_report, payout_table, task_accounting

    out = out or sys.stdout
    rows = payout_table(fc, task_id)
    if rows:
        print(format_payout_table(rows), file=out)
    acc = task_accounting(fc, task_id)
    print(format_report(acc), file=out, flush=True)
    return acc.ok


# ----------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment)")
    parser.add_argument("--server", help="the FL server's address")
    parser.add_argument("--clients", help="comma-separated client addresses, or @FILE")
    parser.add_argument("--value", help="budget V: wei, or with a unit (1.5ether, 20gwei)")
    parser.add_argument("--rounds", default="1", help="number of rounds R (default %(default)s)")
    parser.add_argument("--split", default=",".join(map(str, DEFAULT_SPLIT)),
                        help="TrainPrice,ComPrice,SapPrice in basis points summing to 10000 (default %(default)s)")
    parser.add_argument("--accept-window", default="3600", help="seconds the server has to accept (default %(default)s)")
    g = parser.add_argument_group("the task's consensus and windows (chosen once, at creation)")
    g.add_argument("--difficulty", type=float, default=None,
                   help="D: relative (default 0.2 = a miner qualifies within 20%% of ‖centre‖_p) or, with --absolute, "
                        "in Shapley units (default 0.1)")
    g.add_argument("--absolute", action="store_true", help="D in absolute units instead of relative to ‖centre‖_p")
    g.add_argument("--p", type=int, choices=(1, 2, 255), default=None, help="the distance's p (255 = infinity; default 2)")
    g.add_argument("--registration-window", type=int, default=None,
                   help="seconds clients have to register each round (default 300)")
    g.add_argument("--commit-window", type=int, default=None,
                   help="seconds from publication to the commit deadline (default: sized from the number of clients, "
                        "see suggest_windows: 60 s for 20 clients, 130 s for 100)")
    g.add_argument("--reveal-window", type=int, default=None, help="seconds from the commit to the reveal deadline (default 60)")
    g.add_argument("--payment", default="shapley", choices=PAYMENT_RULES,
                   help="how each round's TrainPrice is split among its clients: by the consensus Shapley value "
                        "(shapley), by the registered data cost n_k of every accepted update (data-cost, "
                        "Record-and-Reward), or by n_k among the updates with a positive Shapley value "
                        "(data-cost-gated); see docs/rr.md (default %(default)s)")
    g.add_argument("--max-data-cost", default=None,
                   help="the largest n_k a client may register (a cap on data-cost inflation; default: no cap)")
    g.add_argument("--claim-window", type=int, default=None,
                   help="seconds after a round settles during which clients may claim (default 30 days)")
    parser.add_argument("--follow", action="store_true", help="wait until the task completes or is refunded, then print the accounting")
    parser.add_argument("--status", action="store_true", help="print the accounting of an existing task (with --task)")
    parser.add_argument("--task", type=int, default=None, help="task id for --status")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls with --follow (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=0, help="give up following after this many seconds (0: never)")
    add_key_arguments(parser)


def _fail(msg: str, code: int = 2) -> int:
    print(f"fedcoin request: {msg}", file=sys.stderr)
    return code


def _contract(args: argparse.Namespace):
    """(FedCoin read-only, w3) for args.rpc/args.contract; raises RequestError/RPCUnavailable."""
    from fedcoin.chain import open_fedcoin

    address = parse_address(args.contract, "--contract") if args.contract else None
    try:
        fc = open_fedcoin(args.rpc, address)
    except (LookupError, ValueError) as e:
        raise RequestError(str(e)) from None
    return fc, fc.w3


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ContractRevert, RPCUnavailable

    if args.status:
        if args.task is None:
            return _fail("--status needs --task N")
        try:
            from fedcoin.roles.index import indexed

            fc = indexed(_contract(args)[0])  # events from the event index when one exists
            if not 1 <= args.task <= fc.task_count():
                return _fail(f"task {args.task} does not exist on {fc.address} (taskCount is {fc.task_count()})")
            return 0 if print_status(fc, args.task) else 1
        except (RequestError, RPCUnavailable) as e:
            return _fail(str(e))

    missing = [f"--{n}" for n in ("server", "clients", "value") if not getattr(args, n)]
    if missing:
        return _fail(f"missing {', '.join(missing)} (or use --status --task N)")
    try:
        account = account_from_args(args)
    except KeyLoadError as e:
        return _fail(str(e))
    try:
        spec = build_spec(server=args.server, clients=args.clients, value=args.value, rounds=args.rounds,
                          split=args.split, accept_window=args.accept_window, requester=account.address,
                          difficulty=args.difficulty, absolute=args.absolute, p=args.p,
                          registration_window=args.registration_window, commit_window=args.commit_window,
                          reveal_window=args.reveal_window, claim_window=args.claim_window,
                          payment=args.payment, max_data_cost=args.max_data_cost)
        fc_ro, w3 = _contract(args)
        balance = w3.eth.get_balance(account.address)
        if balance < spec.value:
            raise RequestError(f"the requester {account.address} holds {balance} wei, less than V={spec.value}")
    except (RequestError, RPCUnavailable) as e:
        return _fail(str(e))

    fc = fc_ro.as_account(account)
    try:
        res = create_request(fc, spec)
    except ContractRevert as e:
        return _fail(f"createTask reverted: {e}", 1)
    task_id = res.task_id
    s = spec.split
    print(f"task {task_id} created on {fc.address}: V={spec.value} wei, {spec.rounds} round(s), "
          f"split {s[0]}:{s[1]}:{s[2]}, server {spec.server}, {len(spec.clients)} client(s); "
          f"tx {res.tx_hash} (gas {res.gas_used})", flush=True)
    t = spec.task
    print(f"task {task_id}: D={t.difficulty / 1e18:g} {'relative to ‖centre‖' if t.relative else 'absolute'}, "
          f"p={'inf' if t.p == 255 else t.p}; registration window {t.registration_window} s, "
          f"commit window {t.commit_window} s, reveal window {t.reveal_window} s, claim window "
          f"{t.claim_window // 86400} days; payment {t.payment}"
          f"{'' if t.max_data_cost == MAX_DATA_COST_CAP else f', n_k capped at {t.max_data_cost}'}", flush=True)
    if not args.follow:
        return 0
    try:
        finished = follow(fc, task_id, poll=args.poll, timeout=args.timeout or None)
        balanced = print_status(fc, task_id)
    except RPCUnavailable as e:
        return _fail(f"lost the RPC while following task {task_id} (resume with --status --task {task_id}): {e}", 1)
    except KeyboardInterrupt:
        return _fail(f"stopped following task {task_id}; nothing is lost: the budget stays escrowed on {fc.address} "
                     f"and settles without this command. See where it stands with "
                     f"`fedcoin request --rpc {args.rpc} --status --task {task_id}`", 130)
    if not finished:
        return _fail(f"task {task_id} not finished after {args.timeout:g}s (still escrowed above)", 1)
    return 0 if balanced else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fedcoin request", description=__doc__.splitlines()[0])
    configure(p)
    return p


def argv_from_env(environ: Mapping[str, str], rpc: str) -> list[str]:
    """The ``fedcoin request`` arguments that the ``FEDCOIN_*`` variables stand for (:data:`ENV_VARS`).

    ``FEDCOIN_FOLLOW=1`` adds ``--follow``; ``FEDCOIN_STATUS=1`` (with ``FEDCOIN_TASK``) ``--status``.
    Keys still come from ``$FEDCOIN_PRIVATE_KEY`` / ``$FEDCOIN_KEYSTORE`` (:mod:`fedcoin.chain.keys`).
    """
    argv = ["--rpc", rpc]
    for var, flag in ENV_VARS.items():
        if environ.get(var):
            argv += [flag, environ[var]]
    for var, flag in (("FEDCOIN_FOLLOW", "--follow"), ("FEDCOIN_STATUS", "--status")):
        if environ.get(var, "").strip().lower() in ("1", "true", "yes"):
            argv.append(flag)
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
