"""Where every wei of a task's budget V went, from the contract's views cross-checked with events.

The budget V of a task ends in exactly one of five places (``contracts/FedCoin.sol``):

========== ===============================================================================
clients    TrainPrice allocated to clients through each finalized round's payout root
           (``RoundFinalized.amounts``) minus what expired unclaimed, split into *claimed*
           (``Claimed`` events: ``claim`` sends, ``claimTo`` credits the named address) and
           *unclaimed* (``getTask().unclaimed``, still claimable with a Merkle proof until the
           round's claim window closes).
server     ComPrice credited to the server (``Credited`` reason ComPrice): only rounds that
           settled with a consensus (an abandoned round refunds its ComPrice).
miners     SapPrice credited to the qualifying miners (``Credited`` reason SapPrice).
refunded   credited to the requester's pull ledger (``Credited`` reasons Refund and Expired):
           rounding dust of TrainPrice and SapPrice, TrainPrice without a positive centre
           entry, the whole price of abandoned rounds, the escrow of refunded tasks, payouts
           unclaimed past the claim window. "Refunded" means *withdrawable by the requester*:
           whether it already called ``withdraw`` is not tracked here.
escrowed   ``getTask().escrow``: budget of rounds not settled yet (0 once the task is
           Completed or Refunded).
========== ===============================================================================

``unaccounted = V − (clients + server + miners + refunded + escrowed)`` must be 0. V and
escrowed come from views, the three parties from events, so the identity is a real check.

Miner bonds are not part of V and are reported separately: returned (``Credited`` reason
BondReturned: within SLASH_MULTIPLE·D of the centre, no consensus, or displaced), forfeited to the
requester (reason Forfeited: slashed reveals and commitments never revealed — never to a miner),
and still held (``getTask().bonds``: attempts not finalized yet).

Cross-checks (each disagreement lands in :attr:`Accounting.mismatches`; none is expected):
server == Σ ComPrice of finalized rounds (``roundPrices`` view); miners == Σ ``Judged.reward``;
clients − claimed == ``unclaimed`` view; abandoned refunds == Σ price of abandoned rounds;
escrowed == V − Σ settled round prices − refunded-at-task-end; bonds held == Σ committed −
returned − forfeited.

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
        clients: TrainPrice allocated to clients by payout roots, less what expired (= claimed + unclaimed).
        clients_claimed, clients_unclaimed: of which claimed / still claimable.
        server: ComPrice credited to the server.
        miners: SapPrice credited to qualifying miners.
        refunded: credited to the requester (Refund and Expired; forfeited bonds excluded).
        escrowed: budget of unsettled rounds (``getTask().escrow``).
        clients_expired: payouts that expired unclaimed (included in ``refunded``).
        bonds_returned: bonds credited back to miners (not part of V).
        bonds_forfeited: slashed and unrevealed bonds, credited to the requester (not part of V).
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
    clients_expired: int = 0
    bonds_returned: int = 0
    bonds_forfeited: int = 0
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
        centre: c_k (the consensus centre) as float; centre_fp: c_k fixed point (18 decimals);
        amount: wei allocated; claimed: whether it was claimed (``Claimed`` event).
        n_k: the registered data cost; check: ``"ok"`` or why the server excluded the update
            (the spec's reason, e.g. ``csves-th``, when a store was given; else ``"excluded"``).
    """

    round: int
    client: str
    index: int
    centre: float
    centre_fp: int
    amount: int
    claimed: bool
    n_k: int = 0
    check: str = "ok"


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

    # ---- events: what each party was credited / allocated
    credited = {reason: 0 for reason in CreditReason}
    for e in fc.credited_events(task_id=task_id, to_block=upto):
        credited[CreditReason(int(e.args["reason"]))] += e.args["amount"]
    finalized_evs = fc.finalized_events(task_id, to_block=upto)
    expired = sum(e.args["amount"] for e in fc.expired_events(task_id, to_block=upto))
    clients = sum(sum(e.args["amounts"]) for e in finalized_evs) - expired
    claimed = sum(e.args["amount"] for e in fc.claimed_events(task_id, to_block=upto))
    server = credited[CreditReason.COM_PRICE]
    miners = credited[CreditReason.SAP_PRICE]
    refunded = credited[CreditReason.REFUND] + credited[CreditReason.EXPIRED]

    # ---- cross-checks
    def check(what: str, from_views: int, from_events: int) -> None:
        if from_views != from_events:
            mism.append(f"{what}: views say {from_views}, events say {from_events}")

    check("server (Σ ComPrice of finalized rounds)", sum(prices[r][1] for r in fin), server)
    check("miners (Σ Judged rewards)", sum(e.args["reward"] for e in fc.judged_events(task_id, to_block=upto)), miners)
    check("expired payouts (PayoutsExpired vs Expired credits)", expired, credited[CreditReason.EXPIRED])
    check("unclaimed client payouts", t.unclaimed, clients - claimed)
    check("finalized rounds", len(fin), len({e.args["round"] for e in finalized_evs}))
    abandoned_evs = fc.abandoned_events(task_id, to_block=upto)
    check("abandoned-round refunds (Train+Com+SapPrice)", sum(sum(prices[r]) for r in ab),
          sum(e.args["refund"] for e in abandoned_evs))
    task_refund = sum(e.args["amount"] for e in fc.task_refunded_events(task_id, to_block=upto))
    settled = sum(sum(prices[r]) for r in fin + ab)
    check("escrow (V − settled round prices − refunded escrow)", t.escrow, t.budget - settled - task_refund)
    committed = sum(e.args["bond"] for e in fc.committed_events(task_id, to_block=upto))
    check("bonds held", t.bonds, committed - credited[CreditReason.BOND_RETURNED] - credited[CreditReason.FORFEITED])

    return Accounting(
        task_id=task_id, status=t.status.name.capitalize(), rounds=t.rounds, finalized=len(fin), abandoned=len(ab),
        V=t.budget, clients=clients, clients_claimed=claimed, clients_unclaimed=clients - claimed,
        server=server, miners=miners, refunded=refunded, escrowed=t.escrow, clients_expired=expired,
        bonds_returned=credited[CreditReason.BOND_RETURNED], bonds_forfeited=credited[CreditReason.FORFEITED],
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
    if acc.clients_expired:
        lines.append(f"  of the refund, {acc.clients_expired} wei are client payouts that expired unclaimed")
    if acc.bonds_returned or acc.bonds_forfeited or acc.bonds_held:
        lines.append(f"  bonds (not in V): returned {acc.bonds_returned}, forfeited to the requester "
                     f"{acc.bonds_forfeited}, still held {acc.bonds_held}")
    for m in acc.mismatches:
        lines.append(f"  MISMATCH {m}")
    lines.append(format_line(acc))
    return "\n".join(lines)


def payout_table(fc: FedCoin, task_id: int, round: int | None = None, store=None) -> list[PayoutRow]:
    """Per-client n_k, check verdict, centre value c_k and amount for each finalized round (or
    only ``round``), from events; with ``store`` the exclusion reasons come from each round's spec.

    Rows are in round order, then registration (= vector) order.
    """
    rows: list[PayoutRow] = []
    claimed = {(e.args["round"], e.args["client"]) for e in fc.claimed_events(task_id)}
    for ev in fc.finalized_events(task_id, round):
        rnd = ev.args["round"]
        regs = fc.registrations(task_id, rnd)
        clients = [e.args["client"] for e in regs]
        centre, amounts = list(ev.args["centre"]), list(ev.args["amounts"])
        if not (len(clients) == len(centre) == len(amounts)):
            raise ChainError(f"task {task_id} round {rnd}: {len(clients)} registrations but "
                             f"{len(centre)} centre entries and {len(amounts)} amounts")
        pub = fc.published_events(task_id, rnd)
        checks = {int(i): "excluded" for i in pub[-1].args["excluded"]} if pub else {}
        if store is not None and checks:
            checks.update(_spec_reasons(fc, store, task_id, rnd, pub[-1]))
        for i, (c, m, a) in enumerate(zip(clients, centre, amounts)):
            rows.append(PayoutRow(rnd, c, i, fixedpoint.decode(m), m, a, (rnd, c) in claimed,
                                  int(regs[i].args["dataCost"]), checks.get(i, "ok")))
    return rows


def _spec_reasons(fc: FedCoin, store, task_id: int, rnd: int, published) -> dict[int, str]:
    """Exclusion reasons by registration index from the round's published spec ({} if unreadable)."""
    from fedcoin.content.spec import SpecError, parse
    from fedcoin.content.store import StoreError

    try:
        spec = parse(store.get(published.args["specLocator"], fc.get_round(task_id, rnd).spec_hash))
    except (SpecError, StoreError, OSError, ValueError):
        return {}
    return {e.index: e.reason for e in spec.excluded}


def format_payout_table(rows: Sequence[PayoutRow], labels: Mapping[str, str] | None = None) -> str:
    """A fixed-width table: round, client, optional label (e.g. the client's type), n_k, the
    server's check verdict (``ok`` or the exclusion reason, e.g. ``csves-th``), centre c_k,
    amount, claimed."""
    labels = labels or {}
    head = (f"{'round':>5}  {'client':42}  " + (f"{'type':6}  " if labels else "")
            + f"{'n_k':>8}  {'check':16}  {'centre':>12}  {'amount (wei)':>24}  claimed")
    out = [head]
    for r in rows:
        lab = f"{labels.get(r.client, ''):6}  " if labels else ""
        out.append(f"{r.round:>5}  {r.client:42}  {lab}{r.n_k:>8}  {r.check:16}  {r.centre:>12.6f}  {r.amount:>24}  "
                   f"{'yes' if r.claimed else 'no'}")
    return "\n".join(out)

