"""``fedcoin audit``: re-derive every PoSap block record from events and check the record chain.

For each block height 0 … ``blockCount − 1``, in order, the audit gathers (:func:`collect`)
the ``PoSapBlock`` event, the ``getBlock`` view, the round's registrations, the ``Revealed``
events of the winning attempt, ``RoundFinalized`` and the task's prices, then checks
(:func:`check_chain`, a pure function of those inputs), stopping at the **first** failure:

=================  =========================================================================
``event``          exactly one ``PoSapBlock`` event for the height, equal to ``getBlock``
``prev_hash``      the record's prevHash is the previous record's hash (zero at height 0)
``record_hash``    :func:`fedcoin.protocol.posap.record_hash` of the fields equals the stored hash
``difficulty``     D is the published D relaxed (doubled, capped) once per re-open
``clients``        registrations (``UpdateRegistered``, by index) hash to the round's
                   registration accumulator
``reveals``        the winning attempt's ``Revealed`` vectors hash to its reveal accumulator
                   (no reveal missing, added or altered)
``mean``           the iteration-weighted mean S̄ (:func:`fedcoin.protocol.posap.weighted_mean`, iterations
                   capped at ``maxIterations``) equals ``RoundFinalized.mean``
``mean_hash``      vectorHash(S̄) equals the record's meanHash
``winner``         the earliest-committing qualifier (‖S − S̄‖_p ≤ D) is the record's winner
``winner_hash``    vectorHash(winner's S) equals the record's winnerHash
``prices``         :func:`fedcoin.protocol.posap.round_prices` from the task's V, R and split equals
                   the ``roundPrices`` view
``amounts``        :func:`fedcoin.protocol.posap.client_payouts` equals ``RoundFinalized.amounts``
``payouts_root``   the payout Merkle root (:mod:`fedcoin.protocol.merkle`) equals the record's (and the
                   event's) payoutsRoot
=================  =========================================================================

and at the end ``head`` (``lastRecordHash`` is the last record's hash). It prints
``OK <n> blocks`` (exit 0) or ``BROKEN block <h> (task <t> round <r>): <check>: expected <x>,
found <y>`` (exit 1); ``expected`` is what the audit recomputed, ``found`` what the chain says.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from fedcoin.protocol import posap
from fedcoin.protocol.commitment import registration_accumulator, reveal_accumulator, vector_hash
from fedcoin.protocol.merkle import ZERO_HASH, payout_tree


@dataclass(frozen=True)
class BlockEvidence:
    """Everything the checks need about one block height (as read from the chain).

    Attributes:
        height: the block height.
        record: the ``getBlock`` view (:class:`fedcoin.chain.BlockRecord`).
        events: ``PoSapBlock`` events for this height (args dicts; exactly one expected).
        finalized: ``RoundFinalized`` args for the record's round (None if absent).
        clients: registered clients in registration order.
        reveals: the winning attempt's reveals, reveal order.
        attempt: the winning attempt.
        registration_acc, reveal_acc: the round's rolling hashes (``getRound``).
        round_difficulty: ``getRound().difficulty``; published_difficulty: D in
            ``ShapleyTaskPublished``; p: the round's distance.
        budget, rounds, split: the task's V, R and (train, com, sap) bps.
        prices: ``roundPrices`` view.
        elapsed: the winner's commit time minus the round's publication time (views): what the
            difficulty adjustment after this block must have used.
        published_at: (block number, log index) of the round's ``ShapleyTaskPublished``.
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
    elapsed: int | None = None
    published_at: tuple[int, int] | None = None


@dataclass(frozen=True)
class AuditInputs:
    """The whole record chain's evidence plus the contract's head, iteration cap and difficulty history.

    Attributes:
        adjustments: every ``DifficultyAdjusted`` event in chain order as
            ``((block, log index), old, new, elapsed)``; the contract emits exactly one per block,
            in the transaction that appends it, so adjustment i belongs to block i.
        target_block_time: the contract's difficulty target (seconds).
        difficulty: the current global D (the first D when nothing was ever adjusted).
    """

    blocks: tuple[BlockEvidence, ...]
    block_count: int
    last_record_hash: bytes
    max_iterations: int
    adjustments: tuple[tuple[tuple[int, int], int, int, int], ...] = ()
    target_block_time: int = 1
    difficulty: int = 0


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
    blocks = []
    for h in range(count):
        rec = fc.get_block(h)
        tid, rnd = rec.task_id, rec.round
        if tid not in tasks:
            tasks[tid] = fc.get_task(tid)
        t = tasks[tid]
        ri = fc.get_round(tid, rnd)
        fin = fc.finalized_events(tid, rnd)
        pub = fc.published_events(tid, rnd)
        committed = fc.get_commitment(tid, rnd, ri.attempt, rec.winner).committed_at
        blocks.append(BlockEvidence(
            height=h, record=rec, events=tuple(by_height.get(h, ())),
            finalized=dict(fin[-1].args) if fin else None,
            clients=tuple(fc.registered_clients(tid, rnd)),
            reveals=tuple(fc.reveals(tid, rnd, attempt=ri.attempt)), attempt=ri.attempt,
            registration_acc=ri.registration_acc, reveal_acc=ri.reveal_acc,
            round_difficulty=ri.difficulty, published_difficulty=pub[-1].args["difficulty"] if pub else None,
            p=ri.p, budget=t.budget, rounds=t.rounds, split=(t.train_bps, t.com_bps, t.sap_bps),
            prices=tuple(fc.round_prices(tid, rnd)),
            elapsed=committed - ri.published_at,
            published_at=(pub[0].block_number, pub[0].log_index) if pub else None,
        ))
    adjustments = tuple(((e.block_number, e.log_index), e.args["oldDifficulty"], e.args["newDifficulty"],
                         e.args["elapsed"]) for e in fc.difficulty_events())[:count]
    return AuditInputs(tuple(blocks), count, head, fc.max_iterations(), adjustments, fc.target_block_time(),
                       fc.difficulty())


# ----------------------------------------------------------------------------- checking


class _Broken(Exception):
    def __init__(self, check: str, expected: Any, found: Any):
        super().__init__(check)
        self.check, self.expected, self.found = check, expected, found


def _expect(check: str, expected: Any, found: Any) -> None:
    if expected != found:
        raise _Broken(check, expected, found)


_RECORD_FIELDS = (("taskId", "task_id"), ("round", "round"), ("winner", "winner"), ("meanHash", "mean_hash"),
                  ("winnerHash", "winner_hash"), ("prevHash", "prev_hash"), ("difficulty", "difficulty"),
                  ("payoutsRoot", "payouts_root"), ("recordHash", "record_hash"))


def check_block(b: BlockEvidence, prev_hash: bytes, cap: int) -> None:
    """Run every check on one block; raise ``_Broken`` at the first failure."""
    rec = b.record
    _expect("event", 1, len(b.events))
    ev = b.events[0]
    for ev_name, rec_name in _RECORD_FIELDS:
        _expect(f"event.{ev_name}", getattr(rec, rec_name), ev[ev_name])
    _expect("prev_hash", prev_hash, rec.prev_hash)
    _expect("record_hash", posap.record_hash(b.height, rec.task_id, rec.round, rec.winner, rec.mean_hash,
                                             rec.winner_hash, rec.prev_hash, rec.difficulty, rec.payouts_root),
            rec.record_hash)
    d = b.published_difficulty
    if d is not None:
        for _ in range(b.attempt):
            d = posap.relaxed_difficulty(d)
    _expect("difficulty", d, rec.difficulty)
    _expect("difficulty", b.round_difficulty, rec.difficulty)
    _expect("clients", b.registration_acc, registration_accumulator(b.clients))
    _expect("reveals", b.reveal_acc, reveal_accumulator((r.miner, r.seq, r.iterations, r.values) for r in b.reveals))
    if b.finalized is None:
        raise _Broken("finalized", "a RoundFinalized event", None)
    for r in b.reveals:
        _expect("reveals.length", len(b.clients), len(r.values))
    mean = posap.weighted_mean([r.values for r in b.reveals], [r.iterations for r in b.reveals], cap, k=len(b.clients))
    _expect("mean", mean, list(b.finalized["mean"]))
    _expect("mean_hash", vector_hash(mean), rec.mean_hash)
    idx = posap.select_winner(b.reveals, mean, rec.difficulty, b.p) if b.reveals else None
    _expect("winner", None if idx is None else b.reveals[idx].miner, rec.winner)
    _expect("winner_hash", vector_hash(b.reveals[idx].values), rec.winner_hash)
    _expect("event.RoundFinalized.winner", rec.winner, b.finalized["winner"])
    _expect("event.RoundFinalized.height", b.height, b.finalized["height"])
    prices = posap.round_prices(b.budget, b.rounds, rec.round, b.split)
    _expect("prices", prices, tuple(b.prices))
    amounts, _refund = posap.client_payouts(prices[0], mean)
    _expect("amounts", amounts, list(b.finalized["amounts"]))
    root = payout_tree(rec.task_id, rec.round, b.clients, amounts).root if any(m > 0 for m in mean) else ZERO_HASH
    _expect("payouts_root", root, rec.payouts_root)
    _expect("event.RoundFinalized.payoutsRoot", root, b.finalized["payoutsRoot"])


def check_difficulty(inputs: AuditInputs, n: int) -> None:
    """Block ``n``'s difficulty history: D at publication, and the adjustment after the block.

    Global D changes only in the adjustment that follows each block, so the D in force at any
    moment is the ``new`` of the last adjustment before it (before the first: its ``old``).
    """
    b, adj = inputs.blocks[n], inputs.adjustments
    first = adj[0][1] if adj else inputs.difficulty
    if b.published_at is not None:
        in_force = first
        for pos, _old, new, _el in adj:
            if pos < b.published_at:
                in_force = new
        _expect("published_difficulty", in_force, b.published_difficulty)
    if n >= len(adj):
        raise _Broken("difficulty_adjustment", "a DifficultyAdjusted event", None)
    _pos, old, new, elapsed = adj[n]
    _expect("difficulty_adjustment.old", adj[n - 1][2] if n else first, old)
    _expect("difficulty_adjustment.elapsed", b.elapsed, elapsed)
    _expect("difficulty_adjustment.new", posap.next_difficulty(old, elapsed, inputs.target_block_time), new)


def check_chain(inputs: AuditInputs) -> AuditResult:
    """Check every block in height order; the result names the first broken link."""
    prev = ZERO_HASH
    if len(inputs.blocks) != inputs.block_count:
        return AuditResult(0, AuditFailure(None, None, None, "block_count", inputs.block_count, len(inputs.blocks)))
    for n, b in enumerate(inputs.blocks):
        try:
            _expect("height", n, b.height)
            check_block(b, prev, inputs.max_iterations)
            check_difficulty(inputs, n)
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


def run(args: argparse.Namespace) -> int:
    from fedcoin.chain import ChainError, RPCUnavailable, open_fedcoin
    from fedcoin.roles.index import indexed

    try:  # events from the event index when one exists (`fedcoin index`); every check still reads the chain
        result = audit(indexed(open_fedcoin(args.rpc, args.contract)))
    except (RPCUnavailable, LookupError, ValueError) as e:
        print(f"fedcoin audit: {e}", file=sys.stderr)
        return 2
    except ChainError as e:
        print(f"fedcoin audit: {e}", file=sys.stderr)
        return 1
    print(result)
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fedcoin audit", description=__doc__.splitlines()[0])
    configure(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
