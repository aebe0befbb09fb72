"""``fedcoin audit``: re-derive every PoSap block record from events and check the record chain.

For each block height 0 … ``blockCount − 1``, in order, the audit gathers (:func:`collect`)
the ``PoSapBlock`` event, the ``getBlock`` view, the round's registrations, the ``Revealed``
events of the winning attempt, ``RoundFinalized`` and the task's prices, then checks
(:func:`check_chain`, a pure function of those inputs), stopping at the **first** failure:

=================  =========================================================================
``event``          exactly one ``PoSapBlock`` event for the height, equal to ``getBlock``
``prev_hash``      the record's prevHash is the previous record's hash (zero at height 0)
``record_hash``    :func:`fedcoin.protocol.posap.record_hash` of the fields equals the stored hash
``payment``        the record's payment rule is the task's (``getTask().payment``, ``TaskConfigured``)
``difficulty``     D is the published D relaxed (doubled, capped) once per re-open
``clients``        registrations (``UpdateRegistered``, by index: client and n_k) hash to the
                   round's registration accumulator
``reveals``        the winning attempt's ``Revealed`` vectors hash to its reveal accumulator
                   (no reveal missing, added or altered); each reveal's bond (``Committed``)
                   equals its ``getCommitment`` view
``centre``         the stake-weighted lower median (:func:`fedcoin.protocol.posap.weighted_lower_median`,
                   weights = bonds) equals ``RoundFinalized.centre``
``centre_hash``    vectorHash(centre) equals the record's centreHash
``verdicts``       each reveal's distance, verdict and SapPrice share
                   (:func:`fedcoin.protocol.posap.settle`) equal its ``Judged`` event
``winner``         the representative (largest qualifying bond, ties: lowest seq) is the record's winner
``winner_hash``    vectorHash(winner's S) equals the record's winnerHash
``prices``         :func:`fedcoin.protocol.posap.round_prices` from the task's V, R and split equals
                   the ``roundPrices`` view
``amounts``        :func:`fedcoin.protocol.posap.client_payouts` under the task's payment rule (with
                   the registered n_k and the published exclusions) equals ``RoundFinalized.amounts``
``payouts_root``   the payout Merkle root (:mod:`fedcoin.protocol.merkle`) equals the record's (and the
                   event's) payoutsRoot
``published_difficulty`` / ``difficulty_adjustment``  the task's D history: its first D
                   (``TaskConfigured``), one adjustment per round settled by ≥ 2 qualifying
                   stakes (elapsed = latest qualifying commit − publication), none otherwise
=================  =========================================================================

and at the end ``head`` (``lastRecordHash`` is the last record's hash). It prints
``OK <n> blocks`` (exit 0) or ``BROKEN block <h> (task <t> round <r>): <check>: expected <x>,
found <y>`` (exit 1); ``expected`` is what the audit recomputed, ``found`` what the chain says.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

from fedcoin.protocol import posap
from fedcoin.protocol.commitment import registration_accumulator, reveal_accumulator, vector_hash
from fedcoin.protocol.merkle import ZERO_HASH


@dataclass(frozen=True)
class BlockEvidence:
    """Everything the checks need about one block height (as read from the chain).

    Attributes:
        height: the block height.
        record: the ``getBlock`` view (:class:`fedcoin.chain.BlockRecord`).
        events: ``PoSapBlock`` events for this height (args dicts; exactly one expected).
        finalized: ``RoundFinalized`` args for the record's round (None if absent).
        clients: registered clients in registration order.
        data_costs: their registered n_k; excluded: the published exclusion indices.
        payment: the task's payment rule code (``getTask().payment``); configured_payment: the
            one in ``TaskConfigured`` (None if absent).
        reveals: the winning attempt's reveals, reveal order, each with its bond (``Committed``).
        bonds: each reveal's bond from the ``getCommitment`` view.
        judged: the round's ``Judged`` events (args), reveal order.
        attempt: the winning attempt.
        registration_acc, reveal_acc: the round's rolling hashes (``getRound``).
        round_difficulty: ``getRound().difficulty``; published_difficulty: D in
            ``ShapleyTaskPublished``; p, relative: the round's distance and D mode.
        budget, rounds, split: the task's V, R and (train, com, sap) bps.
        prices: ``roundPrices`` view.
        commit_times: each reveal's commit time (views): the adjustment's elapsed is the latest
            qualifying one minus ``published_time``.
        published_at: (block number, log index) of the round's ``ShapleyTaskPublished``.
        published_time: the round's publication time (``getRound().publishedAt``).
    """

    height: int
    record: Any
    events: tuple[dict, ...]
    finalized: dict | None
    clients: tuple[str, ...]
    reveals: tuple[posap.Reveal, ...]
    attempt: int
    registration_acc: bytes
    reveal_acc: bytes
    round_difficulty: int
    published_difficulty: int | None
    p: int
    budget: int
    rounds: int
    split: tuple[int, int, int]
    prices: tuple[int, int, int]
    relative: bool = False
    bonds: tuple[int, ...] = ()
    judged: tuple[dict, ...] = ()
    commit_times: tuple[int, ...] = ()
    published_at: tuple[int, int] | None = None
    published_time: int = 0
    data_costs: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()
    payment: int = posap.SHAPLEY
    configured_payment: int | None = None


@dataclass(frozen=True)
class AuditInputs:
    """The whole record chain's evidence plus the contract's head and each task's difficulty history.

    Attributes:
        adjustments: every ``DifficultyAdjusted`` event in chain order as
            ``((block, log index), taskId, round, old, new, elapsed)``.
        first_difficulty: each task's first D (``TaskConfigured``), by task id.
        target_block_time: the contract's difficulty target (seconds).
    """

    blocks: tuple[BlockEvidence, ...]
    block_count: int
    last_record_hash: bytes
    adjustments: tuple[tuple[tuple[int, int], int, int, int, int, int], ...] = ()
    first_difficulty: dict = field(default_factory=dict)
    target_block_time: int = 1


@dataclass(frozen=True)
class AuditFailure:
    """The first broken link: which block, which check, what was expected and found."""

    height: int | None
    task_id: int | None
    round: int | None
    check: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        where = "chain" if self.height is None else f"block {self.height} (task {self.task_id} round {self.round})"
        return f"BROKEN {where}: {self.check}: expected {_show(self.expected)}, found {_show(self.found)}"


@dataclass(frozen=True)
class AuditResult:
    """``ok`` with ``blocks`` checked, or the first ``failure``."""

    blocks: int
    failure: AuditFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def __str__(self) -> str:
        return f"OK {self.blocks} blocks" if self.ok else str(self.failure)


def _show(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, (list, tuple)):
        items = [_show(x) for x in v]
        return "[" + ", ".join(items[:6]) + (f", … ({len(items)} items)" if len(items) > 6 else "") + "]"
    return str(v)


# ----------------------------------------------------------------------------- gathering


def collect(fc) -> AuditInputs:
    """Read every block's evidence from ``fc`` (:class:`fedcoin.chain.FedCoin`): views and events.

    Records are immutable once appended, so only the head needs care: ``blockCount`` and
    ``lastRecordHash`` are re-read until no block was appended between the two reads.
    """
    while True:
        count = fc.block_count()
        head = fc.last_record_hash()
        if fc.block_count() == count:
            break
    by_height: dict[int, list[dict]] = {}
    for e in fc.block_events():
        by_height.setdefault(int(e.args["height"]), []).append(dict(e.args))
    tasks: dict[int, Any] = {}
    configured: dict[int, dict | None] = {}  # each task's TaskConfigured args (its first D and its rule)
    blocks = []
    for h in range(count):
        rec = fc.get_block(h)
        tid, rnd = rec.task_id, rec.round
        if tid not in tasks:
            tasks[tid] = fc.get_task(tid)
            cfg_ev = fc.task_configured_events(tid)
            configured[tid] = dict(cfg_ev[0].args) if cfg_ev else None
        t = tasks[tid]
        ri = fc.get_round(tid, rnd)
        fin = fc.finalized_events(tid, rnd)
        pub = fc.published_events(tid, rnd)
        reveals = tuple(fc.reveals(tid, rnd, attempt=ri.attempt))
        views = [fc.get_commitment(tid, rnd, ri.attempt, r.miner) for r in reveals]
        regs = fc.registrations(tid, rnd)
        blocks.append(BlockEvidence(
            height=h, record=rec, events=tuple(by_height.get(h, ())),
            finalized=dict(fin[-1].args) if fin else None,
            clients=tuple(e.args["client"] for e in regs),
            reveals=reveals, attempt=ri.attempt,
            registration_acc=ri.registration_acc, reveal_acc=ri.reveal_acc,
            round_difficulty=ri.difficulty, published_difficulty=pub[-1].args["difficulty"] if pub else None,
            p=ri.p, relative=ri.relative, budget=t.budget, rounds=t.rounds, split=(t.train_bps, t.com_bps, t.sap_bps),
            prices=tuple(fc.round_prices(tid, rnd)), bonds=tuple(v.bond for v in views),
            judged=tuple(dict(e.args) for e in fc.judged_events(tid, rnd)),
            commit_times=tuple(v.committed_at for v in views),
            published_at=(pub[0].block_number, pub[0].log_index) if pub else None, published_time=ri.published_at,
            data_costs=tuple(int(e.args["dataCost"]) for e in regs),
            excluded=tuple(int(i) for i in pub[-1].args["excluded"]) if pub else (),
            payment=t.payment, configured_payment=int(configured[tid]["payment"]) if configured[tid] else None,
        ))
    adjustments = tuple(((e.block_number, e.log_index), e.args["taskId"], e.args["round"], e.args["oldDifficulty"],
                         e.args["newDifficulty"], e.args["elapsed"]) for e in fc.difficulty_events())
    first = {tid: cfg["difficulty"] if cfg else None for tid, cfg in configured.items()}
    return AuditInputs(tuple(blocks), count, head, adjustments, first, fc.target_block_time())


# ----------------------------------------------------------------------------- checking


class _Broken(Exception):
    def __init__(self, check: str, expected: Any, found: Any):
        super().__init__(check)
        self.check, self.expected, self.found = check, expected, found


def _expect(check: str, expected: Any, found: Any) -> None:
    if expected != found:
        raise _Broken(check, expected, found)


_RECORD_FIELDS = (("taskId", "task_id"), ("round", "round"), ("winner", "winner"), ("payment", "payment"),
                  ("centreHash", "centre_hash"),
                  ("winnerHash", "winner_hash"), ("prevHash", "prev_hash"), ("difficulty", "difficulty"),
                  ("payoutsRoot", "payouts_root"), ("recordHash", "record_hash"))


def check_block(b: BlockEvidence, prev_hash: bytes) -> posap.Settlement:
    """Run every check on one block; raise ``_Broken`` at the first failure. Returns the
    re-derived settlement (for the difficulty check)."""
    rec = b.record
    _expect("event", 1, len(b.events))
    ev = b.events[0]
    for ev_name, rec_name in _RECORD_FIELDS:
        _expect(f"event.{ev_name}", getattr(rec, rec_name), ev[ev_name])
    _expect("prev_hash", prev_hash, rec.prev_hash)
    _expect("record_hash", posap.record_hash(b.height, rec.task_id, rec.round, rec.winner, rec.centre_hash,
                                             rec.winner_hash, rec.prev_hash, rec.difficulty, rec.payouts_root,
                                             rec.payment),
            rec.record_hash)
    _expect("payment", b.payment, rec.payment)
    if b.configured_payment is not None:
        _expect("payment", b.configured_payment, rec.payment)
    d = b.published_difficulty
    if d is not None:
        for _ in range(b.attempt):
            d = posap.relaxed_difficulty(d, b.relative)
    _expect("difficulty", d, rec.difficulty)
    _expect("difficulty", b.round_difficulty, rec.difficulty)
    _expect("clients", b.registration_acc, registration_accumulator(zip(b.clients, b.data_costs, strict=True)))
    _expect("reveals", b.reveal_acc, reveal_accumulator((r.miner, r.seq, r.iterations, r.values) for r in b.reveals))
    _expect("reveals.bonds", list(b.bonds), [r.bond for r in b.reveals])
    if b.finalized is None:
        raise _Broken("finalized", "a RoundFinalized event", None)
    for r in b.reveals:
        _expect("reveals.length", len(b.clients), len(r.values))
    prices = posap.round_prices(b.budget, b.rounds, rec.round, b.split)
    _expect("prices", prices, tuple(b.prices))
    ref = posap.settle(task_id=rec.task_id, round=rec.round, clients=b.clients, reveals=b.reveals,
                       difficulty=rec.difficulty, p=b.p, relative=b.relative, budget=b.budget, rounds=b.rounds,
                       split=b.split, bonds=b.bonds, payment=b.payment, data_costs=b.data_costs,
                       excluded=b.excluded)
    _expect("centre", ref.centre, list(b.finalized["centre"]))
    _expect("centre_hash", vector_hash(ref.centre), rec.centre_hash)
    _expect("verdicts", [(r.miner, dist, code, reward) for r, dist, code, reward in
                         zip(b.reveals, ref.dists, ref.codes, ref.rewards or [0] * len(b.reveals))],
            [(j["miner"], j["distance"], int(j["verdict"]), j["reward"]) for j in b.judged])
    _expect("winner", ref.winner, rec.winner)
    _expect("winner_hash", ref.winner_hash, rec.winner_hash)
    _expect("event.RoundFinalized.winner", rec.winner, b.finalized["winner"])
    _expect("event.RoundFinalized.height", b.height, b.finalized["height"])
    _expect("amounts", ref.amounts, list(b.finalized["amounts"]))
    _expect("payouts_root", ref.payouts_root, rec.payouts_root)
    _expect("event.RoundFinalized.payoutsRoot", ref.payouts_root, b.finalized["payoutsRoot"])
    return ref


def check_difficulty(inputs: AuditInputs, n: int, ref: posap.Settlement) -> None:
    """Block ``n``'s difficulty history, per task: the D in force at publication is the task's
    first D (``TaskConfigured``) moved by that task's earlier adjustments only; a round settled
    by at least two qualifying stakes adjusts it once (elapsed = latest qualifying commit −
    publication, :func:`fedcoin.protocol.posap.next_difficulty`), any other round not at all."""
    b = inputs.blocks[n]
    tid, rnd = b.record.task_id, b.record.round
    mine = [a for a in inputs.adjustments if a[1] == tid]
    if b.published_at is not None and inputs.first_difficulty.get(tid) is not None:
        in_force = inputs.first_difficulty[tid]
        for pos, _t, _r, _old, new, _el in mine:
            if pos < b.published_at:
                in_force = new
        _expect("published_difficulty", in_force, b.published_difficulty)
    here = [a for a in mine if a[2] == rnd]
    if ref.qualified < 2:
        _expect("difficulty_adjustment", [], here)
        return
    if len(here) != 1:
        raise _Broken("difficulty_adjustment", "one DifficultyAdjusted event for the round", len(here))
    pos, _t, _r, old, new, elapsed = here[0]
    before = [a for a in mine if a[0] < pos]
    _expect("difficulty_adjustment.old", before[-1][4] if before else inputs.first_difficulty.get(tid), old)
    last = max(t for t, c in zip(b.commit_times, ref.codes) if c == posap.QUALIFIED)
    _expect("difficulty_adjustment.elapsed", last - b.published_time, elapsed)
    _expect("difficulty_adjustment.new", posap.next_difficulty(old, elapsed, inputs.target_block_time, b.relative), new)


def check_chain(inputs: AuditInputs) -> AuditResult:
    """Check every block in height order; the result names the first broken link."""
    prev = ZERO_HASH
    if len(inputs.blocks) != inputs.block_count:
        return AuditResult(0, AuditFailure(None, None, None, "block_count", inputs.block_count, len(inputs.blocks)))
    for n, b in enumerate(inputs.blocks):
        try:
            _expect("height", n, b.height)
            ref = check_block(b, prev)
            check_difficulty(inputs, n, ref)
        except _Broken as e:
            return AuditResult(n, AuditFailure(b.height, b.record.task_id, b.record.round, e.check, e.expected, e.found))
        prev = b.record.record_hash
    if inputs.last_record_hash != prev:
        return AuditResult(len(inputs.blocks), AuditFailure(None, None, None, "head", prev, inputs.last_record_hash))
    return AuditResult(len(inputs.blocks))


def audit(fc) -> AuditResult:
    """Collect the evidence from the chain and check it (:func:`collect` + :func:`check_chain`)."""
    return check_chain(collect(fc))


# ----------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="JSON-RPC URL (default %(default)s)")
    parser.add_argument("--contract", default=None,
                        help="FedCoin address (default: the deployment recorded for the chain, fedcoin.chain.deployment)")
    parser.add_argument("--flchain", default=None,
                        help="FLChain address whose tasks' federations to recompute (default: the one recorded for "
                             "the chain, if any; the check is skipped when there is none)")


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, RPCUnavailable, open_fedcoin
    from fedcoin.roles.index import indexed

    try:  # events from the event index when one exists (`fedcoin index`); every check still reads the chain
        fc = open_fedcoin(args.rpc, args.contract)
        result = audit(indexed(fc))
        federations = _federations(fc, args.rpc, args.flchain)
    except (RPCUnavailable, LookupError, ValueError) as e:
        print(f"fedcoin audit: {e}", file=sys.stderr)
        return 2
    except ChainError as e:
        print(f"fedcoin audit: {e}", file=sys.stderr)
        return 1
    print(result)
    for f in federations:
        print(f"federation {'OK' if f.ok else 'BROKEN'}: {f}")
    return 0 if result.ok and all(f.ok for f in federations) else 1


def _federations(fc, rpc: str, address: str | None) -> list:
    """FLChain's federation checks (fedcoin.flchain.audit) when an FLChain is given or recorded."""
    from fedcoin.chain.deployment import load_deployments
    from fedcoin.flchain import audit as fl_audit
    from fedcoin.flchain.binding import open_flchain

    if address is None and "FLChain" not in load_deployments(fc.chain_id).get("contracts", {}):
        return []
    return fl_audit.check_all(open_flchain(rpc, address), fc)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fedcoin audit", description=__doc__.splitlines()[0])
    configure(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
