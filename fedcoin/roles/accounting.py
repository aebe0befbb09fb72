"""Where every wei of a task's budget V went, from the contract's views cross-checked with events.

The budget V of a task ends in exactly one of five places (``contracts/FedCoin.sol``):

========== ===============================================================================
clients    TrainPrice allocated to clients through each finalized round's payout root
           (``RoundFinalized.amounts``), split into *claimed* (``Claimed`` events) and
           *unclaimed* (``getTask().unclaimed``, still claimable with a Merkle proof).
server     ComPrice credited to the server (``Credited`` reason ComPrice): every settled
           round, finalized *or* abandoned.
miners     SapPrice credited to the winning miners (``Credited`` reason SapPrice) **minus**
           the forfeited bonds that the contract pays out in the same credit.
refunded   credited to the requester's pull ledger (``Credited`` reason Refund): rounding
           dust and TrainPrice without a positive S̄ entry, Train+SapPrice of abandoned
           rounds, the escrow of refunded tasks — **minus** the forfeited bonds an abandoned
           round refunds in the same credit. "Refunded" means *withdrawable by the
           requester*: the pull ledger is per account, not per task, so whether the requester
           already called ``withdraw`` is not tracked here.
escrowed   ``getTask().escrow``: budget of rounds not settled yet (0 once the task is
           Completed or Refunded).
========== ===============================================================================

``unaccounted = V − (clients + server + miners + refunded + escrowed)`` must be 0. V and
escrowed come from views, the three parties from events, so the identity is a real check.

Miner bonds are not part of V and are reported separately: forfeited bonds go to the round's
winner (finalized round) or to the requester (abandoned round); bonds still held
(``getTask().bonds``) belong to attempts not finalized yet.

Cross-checks (each disagreement lands in :attr:`Accounting.mismatches`; none is expected):
server == Σ ComPrice of settled rounds (``roundPrices`` view); miners == Σ SapPrice of
finalized rounds; clients − claimed == ``unclaimed`` view; escrowed == V − Σ allocated prices
− refunded-at-task-end; forfeited bonds from ``Committed``/``Revealed`` events == what the
``Credited``/``RoundAbandoned`` events paid beyond the prices.

The last line the demo prints is :func:`format_line`::

    V=<wei> clients=<wei> server=<wei> miners=<wei> refunded=<wei> unaccounted=0

with ``escrowed=<wei>`` inserted before ``unaccounted`` only while escrowed > 0 (an unfinished
task); for a finished task escrowed is always 0 and is omitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from fedcoin.protocol import fixedpoint
from fedcoin.chain import ChainError, CreditReason, FedCoin, RoundStatus, TaskStatus


@dataclass(frozen=True)
class Accounting:
    """Where a task's budget went (all amounts in wei).

    Attributes:
        task_id: the task.
        status: task status name (``Created``, ``Accepted``, ``Completed``, ``Refunded``).
        rounds: R; finalized / abandoned: how many rounds settled each way.
        V: the deposited budget (``getTask().budget``).
        clients: TrainPrice allocated to clients by payout roots (= claimed + unclaimed).
        clients_claimed, clients_unclaimed: of which claimed / still claimable.
        server: ComPrice credited to the server.
        miners: SapPrice credited to winning miners (forfeited bonds excluded).
        refunded: credited to the requester (forfeited bonds excluded).
        escrowed: budget of unsettled rounds (``getTask().escrow``).
        bonds_forfeited_to_miners: forfeited bonds paid to winners (not part of V).
        bonds_forfeited_to_requester: forfeited bonds refunded with abandoned rounds (not part of V).
        bonds_held: bonds the task still holds (``getTask().bonds``; not part of V).
        mismatches: view/event cross-checks that disagreed (empty when all agree).
    """

    task_id: int
    status: str
    rounds: int
    finalized: int
    abandoned: int
    V: int
    clients: int
    clients_claimed: int
    clients_unclaimed: int
    server: int
    miners: int
    refunded: int
    escrowed: int
    bonds_forfeited_to_miners: int = 0
    bonds_forfeited_to_requester: int = 0
    bonds_held: int = 0
    mismatches: tuple[str, ...] = ()

    @property
    def unaccounted(self) -> int:
        """``V − (clients + server + miners + refunded + escrowed)``; 0 when every wei is named."""
        return self.V - (self.clients + self.server + self.miners + self.refunded + self.escrowed)

    @property
    def finished(self) -> bool:
        """The task is Completed or Refunded (nothing more will move)."""
        return self.status in ("Completed", "Refunded")

    @property
    def ok(self) -> bool:
        """unaccounted == 0 and every cross-check agreed."""
        return self.unaccounted == 0 and not self.mismatches


@dataclass(frozen=True)
class PayoutRow:
    """One client's result in one finalized round.

    Attributes:
        round: the round; client: its address; index: position in the round's vectors.
        mean: S̄_k as float; mean_fp: S̄_k fixed point (18 decimals); amount: wei allocated;
        claimed: whether it was claimed (``Claimed`` event).
    """

    round: int
    client: str
    index: int
    mean: float
    mean_fp: int
    amount: int
    claimed: bool


def _forfeited_bonds(fc: FedCoin, task_id: int, rnd: int, status: int, attempt: int, upto: int) -> int:
    """Bonds of commitments never revealed in the round's ended attempts (from events)."""
    revealed = {(e.args["attempt"], e.args["miner"]) for e in fc.revealed_events(task_id, rnd, to_block=upto)}
    ended = lambda a: a < attempt or status in (RoundStatus.FINALIZED, RoundStatus.ABANDONED)  # noqa: E731
    return sum(e.args["bond"] for e in fc.committed_events(task_id, rnd, to_block=upto)
               if ended(e.args["attempt"]) and (e.args["attempt"], e.args["miner"]) not in revealed)


def task_accounting(fc: FedCoin, task_id: int, *, attempts: int = 10) -> Accounting:
    """Where every wei of task ``task_id``'s budget went (see the module docstring).

    Views and event queries are separate RPC calls; so that they all describe one state, the
    whole reading is repeated (up to ``attempts`` times) until no block was mined during it.

    Raises:
        ChainError: the task does not exist, or the chain never stood still long enough.
    """
    for _ in range(attempts):
        start = fc.tx.rpc(lambda: fc.w3.eth.block_number, "eth_blockNumber")
        acc = _read_accounting(fc, task_id, start)
        if fc.tx.rpc(lambda: fc.w3.eth.block_number, "eth_blockNumber") == start:
            return acc
    raise ChainError(f"task {task_id}: blocks kept arriving while reading the accounting ({attempts} tries)")


def _read_accounting(fc: FedCoin, task_id: int, upto: int) -> Accounting:
    """One reading: views at the latest block, events up to block ``upto``."""
    t = fc.get_task(task_id)
    if t.status == TaskStatus.NONE:
        raise ChainError(f"task {task_id} does not exist on {fc.address} (taskCount is {fc.task_count()})")
    mism: list[str] = []

    # ---- views: which rounds settled and at what prices
    rounds = [fc.get_round(task_id, r) for r in range(t.rounds)]
    prices = [fc.round_prices(task_id, r) for r in range(t.rounds)]
    fin = [r for r, ri in enumerate(rounds) if ri.status == RoundStatus.FINALIZED]
    ab = [r for r, ri in enumerate(rounds) if ri.status == RoundStatus.ABANDONED]
    forfeited = {r: _forfeited_bonds(fc, task_id, r, ri.status, ri.attempt, upto) for r, ri in enumerate(rounds)}
    forfeit_miners = sum(forfeited[r] for r in fin)
    forfeit_requester = sum(forfeited[r] for r in ab)

    # ---- events: what each party was credited / allocated
    credited = {CreditReason.BOND_RETURNED: 0, CreditReason.COM_PRICE: 0, CreditReason.SAP_PRICE: 0, CreditReason.REFUND: 0}
    for e in fc.credited_events(task_id=task_id, to_block=upto):
        credited[int(e.args["reason"])] += e.args["amount"]
    finalized_evs = fc.finalized_events(task_id, to_block=upto)
    clients = sum(sum(e.args["amounts"]) for e in finalized_evs)
    claimed = sum(e.args["amount"] for e in fc.claimed_events(task_id, to_block=upto))
    server = credited[CreditReason.COM_PRICE]
    miners = credited[CreditReason.SAP_PRICE] - forfeit_miners
    refunded = credited[CreditReason.REFUND] - forfeit_requester

    # ---- cross-checks
    def check(what: str, from_views: int, from_events: int) -> None:
        if from_views != from_events:
            mism.append(f"{what}: views say {from_views}, events say {from_events}")

    check("server (Σ ComPrice of settled rounds)", sum(prices[r][1] for r in fin + ab), server)
    check("miners (Σ SapPrice of finalized rounds)", sum(prices[r][2] for r in fin), miners)
    check("unclaimed client payouts", t.unclaimed, clients - claimed)
    check("finalized rounds", len(fin), len({e.args["round"] for e in finalized_evs}))
    abandoned_evs = fc.abandoned_events(task_id, to_block=upto)
    check("abandoned-round refunds (Train+SapPrice+forfeited bonds)",
          sum(prices[r][0] + prices[r][2] + forfeited[r] for r in ab), sum(e.args["refund"] for e in abandoned_evs))
    task_refund = sum(e.args["amount"] for e in fc.task_refunded_events(task_id, to_block=upto))
    settled = sum(sum(prices[r]) for r in fin + ab)
    check("escrow (V − settled round prices − refunded escrow)", t.escrow, t.budget - settled - task_refund)
    check("bonds held", t.bonds, sum(e.args["bond"] for e in fc.committed_events(task_id, to_block=upto))
          - credited[CreditReason.BOND_RETURNED] - forfeit_miners - forfeit_requester)

    return Accounting(
        task_id=task_id, status=t.status.name.capitalize(), rounds=t.rounds, finalized=len(fin), abandoned=len(ab),
        V=t.budget, clients=clients, clients_claimed=claimed, clients_unclaimed=clients - claimed,
        server=server, miners=miners, refunded=refunded, escrowed=t.escrow,
        bonds_forfeited_to_miners=forfeit_miners, bonds_forfeited_to_requester=forfeit_requester,
        bonds_held=t.bonds, mismatches=tuple(mism),
    )


def format_line(acc: Accounting) -> str:
    """The demo's last line: ``V=… clients=… server=… miners=… refunded=… unaccounted=0``.

    ``escrowed=…`` appears before ``unaccounted`` only when escrowed > 0 (unfinished task).
    """
    parts = [f"V={acc.V}", f"clients={acc.clients}", f"server={acc.server}", f"miners={acc.miners}",
             f"refunded={acc.refunded}"]
    if acc.escrowed:
        parts.append(f"escrowed={acc.escrowed}")
    parts.append(f"unaccounted={acc.unaccounted}")
    return " ".join(parts)


def _eth(wei: int) -> str:
    return f"{wei / 10**18:.6f} ETH"


def format_report(acc: Accounting) -> str:
    """A few human-readable lines about the task, ending with :func:`format_line`."""
    lines = [
        f"task {acc.task_id}: {acc.status}, {acc.finalized} of {acc.rounds} round(s) finalized"
        + (f", {acc.abandoned} abandoned" if acc.abandoned else ""),
        f"  budget V          {acc.V:>28} wei  ({_eth(acc.V)})",
        f"  clients           {acc.clients:>28} wei  (claimed {acc.clients_claimed}, unclaimed {acc.clients_unclaimed})",
        f"  server (ComPrice) {acc.server:>28} wei",
        f"  miners (SapPrice) {acc.miners:>28} wei",
        f"  refunded          {acc.refunded:>28} wei  (credited to the requester, withdrawable)",
        f"  escrowed          {acc.escrowed:>28} wei  (rounds not settled yet)",
    ]
    if acc.bonds_forfeited_to_miners or acc.bonds_forfeited_to_requester or acc.bonds_held:
        lines.append(f"  bonds (not in V): forfeited to winners {acc.bonds_forfeited_to_miners}, "
                     f"to the requester {acc.bonds_forfeited_to_requester}, still held {acc.bonds_held}")
    for m in acc.mismatches:
        lines.append(f"  MISMATCH {m}")
    lines.append(format_line(acc))
    return "\n".join(lines)


def payout_table(fc: FedCoin, task_id: int, round: int | None = None) -> list[PayoutRow]:
    """Per-client S̄_k and amount for each finalized round (or only ``round``), from events.

    Rows are in round order, then registration (= vector) order.
    """
    rows: list[PayoutRow] = []
    claimed = {(e.args["round"], e.args["client"]) for e in fc.claimed_events(task_id)}
    for ev in fc.finalized_events(task_id, round):
        rnd = ev.args["round"]
        clients = fc.registered_clients(task_id, rnd)
        mean, amounts = list(ev.args["mean"]), list(ev.args["amounts"])
        if not (len(clients) == len(mean) == len(amounts)):
            raise ChainError(f"task {task_id} round {rnd}: {len(clients)} registrations but "
                             f"{len(mean)} mean entries and {len(amounts)} amounts")
        for i, (c, m, a) in enumerate(zip(clients, mean, amounts)):
            rows.append(PayoutRow(rnd, c, i, fixedpoint.decode(m), m, a, (rnd, c) in claimed))
    return rows


def format_payout_table(rows: Sequence[PayoutRow], labels: Mapping[str, str] | None = None) -> str:
    """A fixed-width table: round, client, optional label (e.g. the client's type), S̄, amount, claimed."""
    labels = labels or {}
    head = f"{'round':>5}  {'client':42}  " + (f"{'type':6}  " if labels else "") + f"{'S̄':>12}  {'amount (wei)':>24}  claimed"
    out = [head]
    for r in rows:
        lab = f"{labels.get(r.client, ''):6}  " if labels else ""
        out.append(f"{r.round:>5}  {r.client:42}  {lab}{r.mean:>12.6f}  {r.amount:>24}  {'yes' if r.claimed else 'no'}")
    return "\n".join(out)

