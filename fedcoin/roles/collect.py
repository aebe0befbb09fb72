"""Getting the money out: ``fedcoin claim``, ``fedcoin withdraw``, ``fedcoin refund`` and
``fedcoin status --task N``.

Who collects what, and how (pull payments only; nothing is ever pushed to anyone):

=========== ====================================================== ==============================
party       what it is owed                                        command
=========== ====================================================== ==============================
client      its payout of every finalized round it registered in   ``fedcoin claim --task N``
            (a Merkle proof rebuilt from the round's events)
            or to another address it signs for (``claimTo``)       ``fedcoin claim --to ADDR``
            a relayer paying the gas of a signed ``claimTo``       ``fedcoin claim --for C ...``
server      ComPrice of every settled round (the pull ledger)      ``fedcoin withdraw``
miner       SapPrice and returned bonds (the pull ledger)          ``fedcoin withdraw``
requester   refunds (dust, abandoned rounds, refunded tasks)       ``fedcoin withdraw``
requester   the escrow of a task never accepted or stalled         ``fedcoin refund --task N``
            (credited to the requester's ledger, then withdrawn)
=========== ====================================================== ==============================

Each command says what it will collect before it sends anything and what it collected after
(``--dry-run``: only the first). The pull ledger is per account, across tasks: ``withdraw``
takes the account's whole credit. Keys: :mod:`fedcoin.chain.keys` (never on the command line).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence, TextIO

from eth_utils import to_checksum_address

from fedcoin.chain.keys import KeyLoadError, account_from_args, add_key_arguments
from fedcoin.chain.types import RoundStatus, TaskStatus

DEFAULT_RPC = "http://127.0.0.1:8545"


class CollectError(RuntimeError):
    """Nothing can be collected the way that was asked (the message says why)."""


def _eth(wei: int) -> str:
    return f"{wei / 1e18:.6f} ETH ({wei} wei)"


@dataclass(frozen=True)
class Payout:
    """One client payout: ``amount`` wei of ``round`` of ``task_id``; ``claimed`` already."""

    task_id: int
    round: int
    amount: int
    claimed: bool


def client_payouts(fc, client: str, task_id: int | None = None, round: int | None = None) -> list[Payout]:
    """Every finalized-round payout of ``client`` (zero amounts left out), from events.

    Args:
        task_id: one task, or None for every task the client registered in.
        round: one round, or None for all.
    """
    regs = fc.update_registered_events(task_id, round, client=client)
    seen = sorted({(e.args["taskId"], e.args["round"]) for e in regs})
    out = []
    for t, r in seen:
        if fc.get_round(t, r).status != RoundStatus.FINALIZED:
            continue
        amount, _ = fc.payout_proof(t, r, client)
        if amount > 0:
            out.append(Payout(t, r, amount, fc.is_claimed(t, r, client)))
    return out


def claim(fc, task_id: int | None = None, round: int | None = None, *, dry_run: bool = False,
          out: TextIO = sys.stdout) -> int:
    """Claim the caller's unclaimed payouts; returns the wei collected (0 on a dry run)."""
    me = fc.account.address
    pays = client_payouts(fc, me, task_id, round)
    todo = [p for p in pays if not p.claimed]
    where = f"task {task_id}" if task_id is not None else "all tasks"
    if round is not None:
        where += f" round {round}"
    if not todo:
        done = sum(p.amount for p in pays)
        print(f"{me}: nothing to claim in {where}" + (f" (already claimed {_eth(done)})" if done else ""), file=out)
        return 0
    print(f"{me}: will claim {_eth(sum(p.amount for p in todo))} in {len(todo)} payout(s): "
          + ", ".join(f"task {p.task_id} round {p.round} {p.amount} wei" for p in todo), file=out, flush=True)
    if dry_run:
        return 0
    before = fc.w3.eth.get_balance(me)
    got = fees = 0
    for p in todo:
        res = fc.claim(p.task_id, p.round)
        got += res.event("Claimed").args["amount"]
        fees += res.fee
        print(f"  claimed task {p.task_id} round {p.round}: {p.amount} wei (tx {res.tx_hash})", file=out, flush=True)
    after = fc.w3.eth.get_balance(me)
    print(f"{me}: collected {_eth(got)}; balance {before / 1e18:.6f} -> {after / 1e18:.6f} ETH "
          f"(gas {fees} wei)", file=out)
    return got


def claim_to(fc, to: str, task_id: int | None = None, round: int | None = None, *, sign_only: bool = False,
             dry_run: bool = False, out: TextIO = sys.stdout) -> list[tuple[int, int, str]]:
    """The caller (a client) sends its unclaimed payouts to ``to`` instead of its own address.

    It signs, per payout, that (task, round) goes to ``to`` (``CommitmentHash.claimToDigest``).
    With ``sign_only`` it only prints the signatures, for a relayer that pays the gas (a client
    with no ether: ``fedcoin claim --for CLIENT --to ADDR --signature SIG``); otherwise it submits
    ``claimTo`` itself. The payout is credited to ``to`` in the pull ledger (``fedcoin withdraw``).

    Returns: (task, round, signature hex) per payout signed (none on a dry run).
    """
    to = to_checksum_address(to)
    me = fc.account.address
    todo = [p for p in client_payouts(fc, me, task_id, round) if not p.claimed]
    if not todo:
        print(f"{me}: nothing to claim" + (f" in task {task_id}" if task_id is not None else ""), file=out)
        return []
    print(f"{me}: will {'sign' if sign_only else 'send'} {_eth(sum(p.amount for p in todo))} in {len(todo)} "
          f"payout(s) to {to}: " + ", ".join(f"task {p.task_id} round {p.round} {p.amount} wei" for p in todo),
          file=out, flush=True)
    if dry_run:
        return []
    signed = []
    for p in todo:
        sig = fc.sign_claim_to(p.task_id, p.round, to)
        signed.append((p.task_id, p.round, "0x" + sig.hex()))
        if sign_only:
            print(f"  task {p.task_id} round {p.round}: fedcoin claim --for {me} --to {to} --task {p.task_id} "
                  f"--round {p.round} --signature 0x{sig.hex()}", file=out, flush=True)
            continue
        res = fc.claim_to(p.task_id, p.round, me, to, sig)
        print(f"  task {p.task_id} round {p.round}: {p.amount} wei credited to {to} (tx {res.tx_hash})", file=out,
              flush=True)
    if not sign_only:
        print(f"{me}: {_eth(sum(p.amount for p in todo))} credited to {to}; it collects with `fedcoin withdraw`",
              file=out)
    return signed


def relay_claim(fc, client: str, to: str, task_id: int, round: int, signature: str, *, dry_run: bool = False,
                out: TextIO = sys.stdout) -> int:
    """Submit (as the caller, who pays the gas) ``client``'s signed ``claimTo``; returns the wei credited to ``to``."""
    client, to = to_checksum_address(client), to_checksum_address(to)
    try:
        sig = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise CollectError("--signature is not hex") from None
    if len(sig) != 65:
        raise CollectError(f"--signature must be 65 bytes (r, s, v), not {len(sig)}")
    from fedcoin.protocol.commitment import claim_to_signer

    signer = claim_to_signer(fc.chain_id, fc.address, task_id, round, client, to, sig)
    if signer != client:
        raise CollectError(f"the signature is not {client}'s for task {task_id} round {round} to {to} "
                           f"(it recovers {signer or 'no address'}); nothing sent")
    if fc.get_round(task_id, round).status != RoundStatus.FINALIZED:
        raise CollectError(f"task {task_id} round {round} is not finalized; nothing sent")
    if fc.is_claimed(task_id, round, client):
        raise CollectError(f"{client}'s payout of task {task_id} round {round} is already claimed; nothing sent")
    amount, _ = fc.payout_proof(task_id, round, client)
    print(f"{fc.account.address}: will relay {client}'s payout of task {task_id} round {round}, {_eth(amount)}, "
          f"to {to}", file=out, flush=True)
    if dry_run:
        return 0
    res = fc.claim_to(task_id, round, client, to, sig)
    print(f"  credited {amount} wei to {to} (tx {res.tx_hash}, gas {res.fee} wei paid by {fc.account.address})",
          file=out)
    return amount


def withdraw(fc, *, dry_run: bool = False, out: TextIO = sys.stdout) -> int:
    """Withdraw the caller's whole credit; returns the wei collected (0 on a dry run or none)."""
    me = fc.account.address
    credit = fc.credits(me)
    if credit == 0:
        print(f"{me}: no credit to withdraw", file=out)
        return 0
    print(f"{me}: will withdraw {_eth(credit)}", file=out, flush=True)
    if dry_run:
        return 0
    before = fc.w3.eth.get_balance(me)
    res = fc.withdraw()
    got = res.event("Withdrawn").args["amount"]
    after = fc.w3.eth.get_balance(me)
    print(f"{me}: collected {_eth(got)}; balance {before / 1e18:.6f} -> {after / 1e18:.6f} ETH "
          f"(gas {res.fee} wei; tx {res.tx_hash})", file=out)
    return got


def refund_kind(fc, task_id: int) -> tuple[str | None, str]:
    """Which refund ``task_id`` allows now: (``"unaccepted"`` | ``"stalled"`` | None, why)."""
    t = fc.get_task(task_id)
    now = fc.next_block_time()
    if t.status == TaskStatus.CREATED:
        if now > t.accept_deadline:
            return "unaccepted", f"not accepted by its acceptance deadline {t.accept_deadline}"
        return None, (f"still waiting for its server to accept (deadline {t.accept_deadline}, "
                      f"{t.accept_deadline - now}s left)")
    if t.status == TaskStatus.ACCEPTED:
        r = fc.get_round(task_id, t.current_round)
        stalled_after = fc.stalled_after(task_id)  # the escrow bound of the current round
        if now > stalled_after and r.bonds_held == 0:
            return "stalled", (f"round {t.current_round} ({r.status.name.lower()}) has not settled since "
                               f"{t.round_started_at} (bound {stalled_after})")
        if now > stalled_after:
            return None, f"round {t.current_round} is past its bound with bonds at stake: finalize it"
        return None, (f"round {t.current_round} is {r.status.name.lower()}: the task is running (stalled after "
                      f"{stalled_after}, {stalled_after - now}s left)")
    return None, f"the task is {t.status.name.lower()}"


def refund(fc, task_id: int, *, dry_run: bool = False, out: TextIO = sys.stdout) -> int:
    """Refund an unaccepted or stalled task to its requester's ledger; returns the wei credited.

    Anyone may send it; the escrow is always credited to the task's requester, who collects
    it with :func:`withdraw` (done here too when the caller is the requester).
    """
    kind, why = refund_kind(fc, task_id)
    t = fc.get_task(task_id)
    if kind is None:
        raise CollectError(f"task {task_id} cannot be refunded now: {why}")
    print(f"task {task_id}: {why}; will credit its escrow {_eth(t.escrow)} to the requester {t.requester}",
          file=out, flush=True)
    if dry_run:
        return 0
    res = fc.refund_unaccepted(task_id) if kind == "unaccepted" else fc.refund_stalled(task_id)
    credited = sum(e.args["amount"] for e in res.events if e.name == "Credited" and e.args["account"] == t.requester)
    print(f"task {task_id}: refunded, {_eth(credited)} credited to {t.requester} (tx {res.tx_hash})", file=out)
    if fc.account.address == t.requester:
        withdraw(fc, out=out)
    else:
        print("the requester collects it with: fedcoin withdraw", file=out)
    return credited


@dataclass(frozen=True)
class Owed:
    """What one party of a task can collect now, and the command that collects it."""

    role: str
    address: str
    amount: int
    what: str
    command: str


def owed(fc, task_id: int) -> list[Owed]:
    """Per party of ``task_id``: what it is owed now and the command that collects it.

    Credits are per account across tasks, so a server's or miner's line shows its whole credit.
    """
    t = fc.get_task(task_id)
    rows: list[Owed] = []
    kind, why = refund_kind(fc, task_id)
    req_credit = fc.credits(t.requester)
    rows.append(Owed("requester", t.requester, req_credit, "credit (refunds, all tasks)",
                     "fedcoin withdraw" if req_credit else "-"))
    if kind is not None:
        rows.append(Owed("requester", t.requester, t.escrow, f"escrow ({why})", f"fedcoin refund --task {task_id}"))
    srv = fc.credits(t.server)
    rows.append(Owed("server", t.server, srv, "credit (ComPrice, all tasks)", "fedcoin withdraw" if srv else "-"))
    for m in sorted({e.args["miner"] for e in fc.committed_events(task_id)}):
        c = fc.credits(m)
        rows.append(Owed("miner", m, c, "credit (SapPrice, bonds, all tasks)", "fedcoin withdraw" if c else "-"))
    for client in fc.task_clients(task_id):
        pays = client_payouts(fc, client, task_id)
        todo = [p for p in pays if not p.claimed]
        got = sum(p.amount for p in pays if p.claimed)
        what = (f"unclaimed in round(s) {','.join(str(p.round) for p in todo)}" if todo else "nothing unclaimed") + (
            f"; claimed {got} wei" if got else "")
        rows.append(Owed("client", client, sum(p.amount for p in todo), what,
                         f"fedcoin claim --task {task_id}" if todo else "-"))
    return rows


def format_owed(rows: Sequence[Owed]) -> str:
    lines = [f"{'role':<9}  {'address':<42}  {'owed (wei)':>22}  {'command':<26}  what"]
    for r in rows:
        lines.append(f"{r.role:<9}  {r.address:<42}  {r.amount:>22}  {r.command:<26}  {r.what}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ CLI


def _common(parser: argparse.ArgumentParser, *, keys: bool = True) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--rpc", default=DEFAULT_RPC, help="JSON-RPC URL")
    parser.add_argument("--contract", default=None, help="FedCoin address (default: the recorded deployment)")
    if keys:
        add_key_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="only say what would be collected")


def configure_claim(parser: argparse.ArgumentParser) -> None:
    parser.description = "claim a client's payouts (every finalized round it registered in, or one)"
    _common(parser)
    parser.add_argument("--task", type=int, default=None, help="one task (default: every task)")
    parser.add_argument("--round", type=int, default=None, help="one round (default: all)")
    g = parser.add_argument_group("sending a payout elsewhere (claimTo)")
    g.add_argument("--to", default=None, metavar="ADDRESS",
                   help="credit the payouts to ADDRESS (it withdraws them) instead of paying this key's address")
    g.add_argument("--sign-only", action="store_true",
                   help="with --to: print the signatures for a relayer instead of sending (a client without gas)")
    g.add_argument("--for", dest="client", default=None, metavar="CLIENT",
                   help="relay CLIENT's signed claim (with --to, --task, --round, --signature); this key pays gas")
    g.add_argument("--signature", default=None, help="the client's claimTo signature (from --sign-only)")


def configure_withdraw(parser: argparse.ArgumentParser) -> None:
    parser.description = "withdraw the account's credit (server ComPrice, miner SapPrice and bonds, requester refunds)"
    _common(parser)


def configure_refund(parser: argparse.ArgumentParser) -> None:
    parser.description = "refund a task that was never accepted or whose round stalled unpublished"
    _common(parser)
    parser.add_argument("--task", type=int, required=True, help="the task")


def configure_status(parser: argparse.ArgumentParser) -> None:
    parser.description = "per party of a task: what it is owed now and the command that collects it"
    _common(parser, keys=False)
    parser.add_argument("--task", type=int, required=True, help="the task")


def _open(args, with_key: bool = True):
    from fedcoin.chain import open_fedcoin

    account = account_from_args(args) if with_key else None
    fc = open_fedcoin(args.rpc, args.contract, account)
    task = getattr(args, "task", None)
    if task is not None and not 1 <= task <= fc.task_count():
        raise CollectError(f"task {task} does not exist on {fc.address} (taskCount is {fc.task_count()})")
    return fc


def _run(name: str, body) -> int:
    from fedcoin.chain import ChainError, ContractRevert

    try:
        body()
        return 0
    except ContractRevert as e:
        print(f"fedcoin {name}: the contract refused it: {e}", file=sys.stderr)
        return 1
    except (KeyLoadError, LookupError, ValueError) as e:
        print(f"fedcoin {name}: {e}", file=sys.stderr)
        return 2
    except (CollectError, ChainError) as e:
        print(f"fedcoin {name}: {e}", file=sys.stderr)
        return 1


def run_claim(args) -> int:
    def body():
        if args.client is not None:
            missing = [f for f, v in (("--to", args.to), ("--task", args.task), ("--round", args.round),
                                      ("--signature", args.signature)) if v is None]
            if missing:
                raise CollectError(f"--for needs {', '.join(missing)}")
            relay_claim(_open(args), args.client, args.to, args.task, args.round, args.signature, dry_run=args.dry_run)
        elif args.to is not None:
            claim_to(_open(args), args.to, args.task, args.round, sign_only=args.sign_only, dry_run=args.dry_run)
        elif args.sign_only or args.signature:
            raise CollectError("--sign-only needs --to; --signature needs --for")
        else:
            claim(_open(args), args.task, args.round, dry_run=args.dry_run)

    return _run("claim", body)


def run_withdraw(args) -> int:
    return _run("withdraw", lambda: withdraw(_open(args), dry_run=args.dry_run))


def run_refund(args) -> int:
    return _run("refund", lambda: refund(_open(args), args.task, dry_run=args.dry_run))


def run_status(args) -> int:
    def body():
        from fedcoin.roles.accounting import format_line, task_accounting

        fc = _open(args, with_key=False)
        t = fc.get_task(args.task)
        print(f"task {args.task} on {fc.address}: {t.status.name.lower()}, round {t.current_round} of {t.rounds}, "
              f"escrow {t.escrow} wei, unclaimed {t.unclaimed} wei")
        print(format_owed(owed(fc, args.task)))
        print(format_line(task_accounting(fc, args.task)))

    return _run("status", body)


class _Sub:
    """A (configure, run) pair the ``fedcoin`` dispatcher treats as a subcommand module."""

    def __init__(self, configure, run):
        self.configure, self.run = configure, run


claim_cmd = _Sub(configure_claim, run_claim)
withdraw_cmd = _Sub(configure_withdraw, run_withdraw)
refund_cmd = _Sub(configure_refund, run_refund)
status_cmd = _Sub(configure_status, run_status)
