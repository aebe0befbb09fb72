"""Off-chain reference model of robust PoSap settlement: what ``FedCoin.finalize`` computes.

Every function here is pure and mirrors one piece of ``contracts/`` exactly (integer maths,
Solidity's round-toward-zero division), so miners can predict the outcome, the binding can
compute the centre that ``finalize`` verifies, and the audit command can re-derive every
centre, verdict, reward, payout and PoSap block record from events. The tests diff these
functions against the deployed contract (and ``contracts/test/FedCoinHarness.sol``) on random
inputs.

The consensus (docs/contracts.md, "Robust Proof of Shapley"):

* **Centre** — per coordinate, the stake-weighted *lower* median of the revealed vectors,
  weights = bonds: the smallest revealed value ``c_j`` with ``2·Σ_{v_ij ≤ c_j} w_i ≥ W``
  (``W`` the revealed stake); equivalently the unique revealed value with
  ``2·Σ_{v ≤ c} w ≥ W`` and ``2·Σ_{v < c} w < W`` (:func:`check_centre`, what the contract
  verifies). Reveals holding less than half of ``W`` cannot move any ``c_j`` outside the range of
  the other reveals' values in that coordinate.
* **Qualification** — ``‖S − c‖_p ≤ D`` (absolute D, fixed point) or ``‖S − c‖_p ≤ D·‖c‖_p``
  (relative D, a fraction in 1e18 units); p = 2 compares squares (:func:`threshold`).
* **Verdicts** — Qualified (within D: bond back plus SapPrice pro rata to bond), Returned (within
  ``SLASH_MULTIPLE·D``: bond back), Slashed (farther: bond forfeited to the requester); a
  commitment never revealed forfeits its bond too.

Fixed point: int256 with 18 decimals (:mod:`fedcoin.protocol.fixedpoint`). Distances:
``p = 1`` → Σ|d|, ``p = 2`` → Σd², ``p = P_INF (255)`` → max|d|.

The paper's own rule (iteration-weighted mean, first qualifier wins) is *not* here: it lives in
:mod:`fedcoin.protocol.paper_rule`, an off-chain simulation for ``scripts/figure6.py``.

Examples:
    >>> weighted_lower_median([[1, 5], [2, 6], [100, -7]], [1, 1, 1])
    [2, 5]
    >>> check_centre([[1, 5], [2, 6], [100, -7]], [1, 1, 1], [2, 5]) is None
    True
    >>> p_distance([3, -4], [0, 0], 2), threshold([3, 4], 5 * 10**17, 2, True)
    (25, 6)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from eth_abi import encode as abi_encode
from eth_utils import keccak

from fedcoin.protocol.commitment import vector_hash
from fedcoin.protocol.merkle import ZERO_HASH, payout_tree

#: Code of p = infinity (``PDistance.P_INF``).
P_INF = 255
SUPPORTED_P = (1, 2, P_INF)
#: Basis points in a whole.
BPS = 10_000
#: Default split TrainPrice : ComPrice : SapPrice.
DEFAULT_SPLIT = (7000, 1000, 2000)
#: Payment rules by code (``PoSapMath.PAY_SHAPLEY`` = 0, ``PAY_DATA_COST`` = 1,
#: ``PAY_DATA_COST_GATED`` = 2): how a round's TrainPrice is split among its clients.
PAYMENT_RULES = ("shapley", "data-cost", "data-cost-gated")
SHAPLEY, DATA_COST, DATA_COST_GATED = range(3)
#: Largest cap on a declared n_k (``TaskConfig.maxDataCost`` < 2**64).
MAX_DATA_COST_CAP = 2**64 - 1
#: Fixed-point one: a relative D is a fraction of ‖centre‖_p in these units.
ONE = 10**18
#: ``PoSapMath.MAX_DIFFICULTY``: the largest absolute D.
MAX_DIFFICULTY = 2**120
#: ``PoSapMath.MAX_RELATIVE_DIFFICULTY``: the largest relative D (50 %), below 100 % so that a
#: zero vector (at distance ‖c‖ from the centre) can never qualify.
MAX_RELATIVE_DIFFICULTY = 5 * 10**17
#: ``PoSapMath.MAX_REOPENS``: re-opens of a round without consensus before it is abandoned.
MAX_REOPENS = 3
MAX_COMMITS = 64
MAX_ROUND_WORDS = 7168
#: ``PDistance.SLASH_MULTIPLE``: a reveal farther than this many D from the centre is slashed.
SLASH_MULTIPLE = 4
#: Window bounds (``PoSapMath``), seconds.
MIN_WINDOW = 20
MAX_WINDOW = 7 * 24 * 3600
MIN_CLAIM_WINDOW = 24 * 3600
MAX_CLAIM_WINDOW = 365 * 24 * 3600
#: ``PoSapMath.FINALIZE_GRACE``: time left after the last possible reveal deadline to finalize.
FINALIZE_GRACE = 24 * 3600
#: Verdict codes (``FedCoin.Verdict``; :class:`fedcoin.chain.types.Verdict` is the IntEnum).
QUALIFIED, RETURNED, SLASHED = 0, 1, 2


@dataclass(frozen=True)
class Reveal:
    """One valid reveal of an attempt, as ``finalize`` receives it (``RevealData``), plus its bond.

    Attributes:
        miner: the revealing account.
        seq: its commitment sequence number in the attempt (0 = earliest commit).
        iterations: claimed sample count (recorded, never weighted).
        values: S, fixed-point ints, registration order.
        bond: the commitment's bond (its weight in the centre; not part of the calldata).
    """

    miner: str
    seq: int
    iterations: int
    values: tuple[int, ...]
    bond: int = 0

    def as_abi(self) -> tuple:
        return (self.miner, self.seq, self.iterations, list(self.values))


# ----------------------------------------------------------------------------- the centre


def weighted_lower_median(vectors: Sequence[Sequence[int]], weights: Sequence[int], k: int | None = None) -> list[int]:
    """Per-coordinate stake-weighted lower median: for each j the smallest revealed value ``c``
    with ``2·Σ_{v_ij ≤ c} w_i ≥ W``. What the binding passes to ``finalize`` as the centre.

    Args:
        vectors: M vectors of length K (fixed point).
        weights: M positive weights (bonds).
        k: vector length when ``vectors`` is empty (the centre is then all zeros).
    """
    if len(vectors) != len(weights):
        raise ValueError(f"{len(vectors)} vectors but {len(weights)} weights")
    if not vectors:
        return [0] * (k or 0)
    k = len(vectors[0])
    if any(len(v) != k for v in vectors):
        raise ValueError("vectors of different lengths")
    total = sum(int(w) for w in weights)
    if total <= 0:
        raise ValueError("the total weight must be positive")
    out = []
    for j in range(k):
        acc = 0
        for value, w in sorted(((int(v[j]), int(w)) for v, w in zip(vectors, weights)), key=lambda t: t[0]):
            acc += w
            if 2 * acc >= total:
                out.append(value)
                break
    return out


def check_centre(vectors: Sequence[Sequence[int]], weights: Sequence[int], centre: Sequence[int]) -> int | None:
    """``PDistance.checkCentre``: the first coordinate where ``centre`` is not the weighted lower
    median (``2·Σ_{v ≤ c} w < W`` or ``2·Σ_{v < c} w ≥ W``), or None when it is everywhere."""
    total = sum(int(w) for w in weights)
    for j, c in enumerate(centre):
        below = sum(int(w) for v, w in zip(vectors, weights) if int(v[j]) < int(c))
        at_or_below = sum(int(w) for v, w in zip(vectors, weights) if int(v[j]) <= int(c))
        if 2 * at_or_below < total or 2 * below >= total:
            return j
    return None


# ----------------------------------------------------------------------------- distances


def p_distance(s: Sequence[int], centre: Sequence[int], p: int) -> int:
    """``PDistance.distance``: Σ|d| (p=1), Σd² (p=2), max|d| (p=P_INF) with d = s − centre."""
    if len(s) != len(centre):
        raise ValueError(f"length {len(s)} vs {len(centre)}")
    diffs = [abs(int(a) - int(b)) for a, b in zip(s, centre)]
    if p == 1:
        return sum(diffs)
    if p == 2:
        return sum(d * d for d in diffs)
    if p == P_INF:
        return max(diffs, default=0)
    raise ValueError(f"unsupported p={p}; use 1, 2 or {P_INF} (infinity)")


def norm(c: Sequence[int], p: int) -> int:
    """``PDistance.norm``: ‖c‖_p in :func:`p_distance` units (Σ|c|, Σc², max|c|)."""
    return p_distance(c, [0] * len(c), p)


def threshold(centre: Sequence[int], difficulty: int, p: int, relative: bool) -> int:
    """``PDistance.threshold``: a reveal qualifies when its :func:`p_distance` is ≤ this.

    Absolute: D (D² for p = 2). Relative: ``‖c‖·D // 1e18``, or ``(Σc² // 1e18)·D² // 1e18`` for
    p = 2 (the order of the divisions is the contract's; it keeps the product below 2²⁵⁶).
    """
    d = int(difficulty)
    if not relative:
        return d * d if p == 2 else d
    n = norm(centre, p)
    return (n // ONE) * d * d // ONE if p == 2 else n * d // ONE


def slash_threshold(thr: int, p: int) -> int:
    """``PDistance.slashThreshold``: SLASH_MULTIPLE·D in distance units (squared for p = 2)."""
    return thr * SLASH_MULTIPLE * SLASH_MULTIPLE if p == 2 else thr * SLASH_MULTIPLE


def qualifies(dist: int, difficulty: int, p: int, *, centre: Sequence[int] | None = None, relative: bool = False) -> bool:
    """Whether a distance qualifies under D (relative D needs the ``centre``)."""
    return dist <= threshold(centre or [], difficulty, p, relative)


def verdicts(vectors: Sequence[Sequence[int]], centre: Sequence[int], difficulty: int, p: int,
             relative: bool) -> tuple[list[int], list[int]]:
    """``PoSapJudge.judge`` after the centre check: each vector's distance and verdict code
    (:data:`QUALIFIED`, :data:`RETURNED`, :data:`SLASHED`)."""
    thr = threshold(centre, difficulty, p, relative)
    slash = slash_threshold(thr, p)
    dists = [p_distance(v, centre, p) for v in vectors]
    codes = [QUALIFIED if d <= thr else RETURNED if d <= slash else SLASHED for d in dists]
    return dists, codes


def representative(reveals: Sequence[Reveal], codes: Sequence[int], bonds: Sequence[int] | None = None) -> int | None:
    """The PoSap block record's ``winner``: the qualifying reveal with the largest bond (ties:
    the lowest commit seq), or None when nobody qualifies."""
    bonds = bonds if bonds is not None else [r.bond for r in reveals]
    best = None
    for i, (r, code) in enumerate(zip(reveals, codes)):
        if code != QUALIFIED:
            continue
        if best is None or bonds[i] > bonds[best] or (bonds[i] == bonds[best] and r.seq < reveals[best].seq):
            best = i
    return best


# ----------------------------------------------------------------------------- money


def split_totals(budget: int, split: Sequence[int] = DEFAULT_SPLIT) -> tuple[int, int, int]:
    """Task totals (train, com, sap): the split's rounding dust goes to SapPrice."""
    train_bps, com_bps, _ = split
    train = budget * train_bps // BPS
    com = budget * com_bps // BPS
    return train, com, budget - train - com


def _share(total: int, rounds: int, round: int) -> int:
    each = total // rounds
    return total - each * (rounds - 1) if round + 1 == rounds else each


def round_prices(budget: int, rounds: int, round: int, split: Sequence[int] = DEFAULT_SPLIT) -> tuple[int, int, int]:
    """``FedCoin.roundPrices``: a round's (TrainPrice, ComPrice, SapPrice).

    Each task total is cut into ``rounds`` equal shares; the last round takes the remainder.
    """
    return tuple(_share(t, rounds, round) for t in split_totals(budget, split))  # type: ignore[return-value]


def payment_code(rule: str | int) -> int:
    """The contract's code of a payment rule given by name (``"data-cost"``) or code (1).

    Raises:
        ValueError: a name not in :data:`PAYMENT_RULES` (or not a uint8 code).
    """
    if isinstance(rule, int) and not isinstance(rule, bool) and 0 <= rule < 256:
        return rule  # a raw uint8 code goes through: the contract is the judge of codes (FedCoinBadPayment)
    if rule in PAYMENT_RULES:
        return PAYMENT_RULES.index(rule)
    raise ValueError(f"unknown payment rule {rule!r}; expected one of {', '.join(PAYMENT_RULES)}")


def payout_weight(payment: int, centre_k: int, data_cost: int, excluded: bool) -> int:
    """``PoSapMath.payoutWeight``: client k's weight in the TrainPrice split."""
    if payment == DATA_COST:
        return 0 if excluded else int(data_cost)
    if centre_k <= 0:
        return 0
    return int(centre_k) if payment == SHAPLEY else int(data_cost)


def payout_weights(
    payment: str | int, centre: Sequence[int], data_costs: Sequence[int] | None = None, excluded: Sequence[int] = (),
) -> list[int]:
    """:func:`payout_weight` of every client (see :func:`client_payouts` for the arguments)."""
    code = payment_code(payment)
    if data_costs is None:
        if code != SHAPLEY:
            raise ValueError(f"payment rule {PAYMENT_RULES[code]!r} needs the data costs")
        data_costs = [0] * len(centre)
    if len(data_costs) != len(centre):
        raise ValueError(f"{len(data_costs)} data costs for {len(centre)} clients")
    out = set(int(i) for i in excluded)
    return [payout_weight(code, int(c), int(n), j in out) for j, (c, n) in enumerate(zip(centre, data_costs))]


def client_payouts(
    train: int, centre: Sequence[int], *, payment: str | int = SHAPLEY,
    data_costs: Sequence[int] | None = None, excluded: Sequence[int] = (),
) -> tuple[list[int], int]:
    """Clients' amounts and the requester's refund for a settled round (``PoSapJudge.payouts``).

    ``amount_k = train · w_k // Σ_j w_j`` with :func:`payout_weight` w_k: the positive centre
    entry (``shapley``), n_k unless excluded (``data-cost``) or n_k where the centre entry is
    > 0 (``data-cost-gated``). The refund is the rounding dust, or all of ``train`` when every
    weight is 0. Excluded clients carry 0 in every reveal, hence in the centre, and no rule
    pays them.

    Args:
        centre: the consensus centre (fixed point), one entry per registration.
        data_costs: the registered n_k (required by the data-cost rules).
        excluded: registration indices the server excluded.
    """
    return _split(train, payout_weights(payment, centre, data_costs, excluded))


def _split(train: int, weights: Sequence[int]) -> tuple[list[int], int]:
    """``train · w_k // Σw`` each and the dust (all of ``train`` when Σw = 0)."""
    total = sum(weights)
    if total == 0:
        return [0] * len(weights), train
    amounts = [train * x // total for x in weights]
    return amounts, train - sum(amounts)


def sap_rewards(sap: int, qualifying_bonds: Sequence[int]) -> tuple[list[int], int]:
    """``PoSapMath.sapShare`` over the qualifying bonds: ``sap·b // Σb`` each, and the dust."""
    q = sum(int(b) for b in qualifying_bonds)
    rewards = [sap * int(b) // q for b in qualifying_bonds] if q else []
    return rewards, sap - sum(rewards)


# ----------------------------------------------------------------------------- difficulty and time


def difficulty_ceiling(relative: bool) -> int:
    """``PoSapMath.difficultyCeiling``: the largest D of a task."""
    return MAX_RELATIVE_DIFFICULTY if relative else MAX_DIFFICULTY


def relaxed_difficulty(d: int, relative: bool = False) -> int:
    """D after a re-open without consensus: ``min(2d, ceiling)``."""
    return min(d * 2, difficulty_ceiling(relative))


def next_difficulty(d: int, elapsed: int, target: int, relative: bool = False) -> int:
    """``PoSapMath.nextDifficulty``: ``clamp(d·elapsed // target, max(d // 2, 1), min(2d, ceiling))``.

    Per task, after a round settled by at least two qualifying stakes; ``elapsed`` is the latest
    qualifying commit time minus the publication time. Larger D is easier: a slow round raises
    D, a fast one lowers it, by at most a factor of 2 either way.
    """
    lo = max(d // 2, 1)
    hi = relaxed_difficulty(d, relative)
    return min(max(d * elapsed // target, lo), hi)


def commit_cap(k: int) -> int:
    """``FedCoin.commitCap``: most commitments per attempt with ``k`` registered clients."""
    by_words = MAX_COMMITS if k == 0 else MAX_ROUND_WORDS // k
    return min(by_words, MAX_COMMITS)


def stalled_after(round_started_at: int, registration_window: int, commit_window: int, reveal_window: int) -> int:
    """``PoSapMath.stalledAfter``: when a round that has not settled counts as stalled (then
    ``refundStalled`` ends the task, or ``finalize`` without consensus abandons instead of
    re-opening): start + registration + (MAX_REOPENS + 1)·(commit + reveal) + FINALIZE_GRACE."""
    return (round_started_at + registration_window + (MAX_REOPENS + 1) * (commit_window + reveal_window)
            + FINALIZE_GRACE)


def displacement_choice(bonds: Sequence[int], seqs: Sequence[int]) -> int:
    """``FedCoin._displace``: which live commitment of a full attempt a larger bond displaces —
    the smallest bond, ties: the latest commit (largest seq). The newcomer needs a bond of at
    least ``bonds[i] + minBond``."""
    best = None
    for i, (b, s) in enumerate(zip(bonds, seqs)):
        if best is None or b < bonds[best] or (b == bonds[best] and s > seqs[best]):
            best = i
    if best is None:
        raise ValueError("no commitment to displace")
    return best


def record_hash(
    height: int, task_id: int, round: int, winner: str, centre_hash: bytes, winner_hash: bytes,
    prev_hash: bytes, difficulty: int, payouts_root: bytes, payment: int = SHAPLEY,
) -> bytes:
    """The PoSap block record hash, ``keccak256(abi.encode(height, taskId, round, winner,
    centreHash, winnerHash, prevHash, D, payoutsRoot, payment))``."""
    return keccak(abi_encode(
        ["uint256", "uint256", "uint256", "address", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "uint8"],
        [height, task_id, round, winner, centre_hash, winner_hash, prev_hash, difficulty, payouts_root,
         payment_code(payment)],
    ))


# ----------------------------------------------------------------------------- the whole finalize


@dataclass
class Settlement:
    """What ``finalize`` does with one attempt's reveals.

    ``winner`` is None when nobody qualifies (no consensus: every revealed bond is returned, the
    round re-opens or is abandoned); then only ``centre``, ``dists`` and ``codes`` are meaningful.

    Attributes:
        centre: the consensus centre (weighted lower median).
        dists, codes: each reveal's distance and verdict code.
        rewards: SapPrice share per reveal (0 unless qualified).
        returned: bond returned per reveal (0 if slashed).
        slashed: sum of slashed bonds (forfeited to the requester, with the unrevealed ones).
        qualified: number of qualifying reveals (the task's D adjusts when ≥ 2).
        amounts, payouts_root: client payouts and their Merkle root.
        refund: credited to the requester as Refund: TrainPrice dust + SapPrice dust.
    """

    centre: list[int]
    winner: str | None
    winner_index: int | None
    dists: list[int] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    rewards: list[int] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)
    slashed: int = 0
    qualified: int = 0
    amounts: list[int] = field(default_factory=list)
    refund: int = 0
    payouts_root: bytes = ZERO_HASH
    centre_hash: bytes = ZERO_HASH
    winner_hash: bytes = ZERO_HASH
    train: int = 0
    com: int = 0
    sap: int = 0


def settle(
    *,
    task_id: int,
    round: int,
    clients: Sequence[str],
    reveals: Sequence[Reveal],
    difficulty: int,
    p: int,
    relative: bool = False,
    budget: int,
    rounds: int,
    split: Sequence[int] = DEFAULT_SPLIT,
    bonds: Sequence[int] | None = None,
    payment: str | int = SHAPLEY,
    data_costs: Sequence[int] | None = None,
    excluded: Sequence[int] = (),
) -> Settlement:
    """Reference ``finalize`` of one attempt: centre, verdicts, rewards, client amounts (under
    ``payment``, with the registered ``data_costs`` and the ``excluded`` indices), refund and
    payout root (bonds default to each reveal's ``bond``)."""
    k = len(clients)
    bonds = list(bonds) if bonds is not None else [r.bond for r in reveals]
    if not reveals:
        return Settlement(centre=[0] * k, winner=None, winner_index=None)
    vectors = [r.values for r in reveals]
    centre = weighted_lower_median(vectors, bonds)
    dists, codes = verdicts(vectors, centre, difficulty, p, relative)
    idx = representative(reveals, codes, bonds)
    out = Settlement(centre=centre, winner=None, winner_index=None, dists=dists, codes=codes)
    if idx is None:
        return out
    train, com, sap = round_prices(budget, rounds, round, split)
    q = [b for b, c in zip(bonds, codes) if c == QUALIFIED]
    shares, sap_dust = sap_rewards(sap, q)
    it = iter(shares)
    out.rewards = [next(it) if c == QUALIFIED else 0 for c in codes]
    out.returned = [0 if c == SLASHED else b for b, c in zip(bonds, codes)]
    out.slashed = sum(b for b, c in zip(bonds, codes) if c == SLASHED)
    out.qualified = len(q)
    weights = payout_weights(payment, centre, data_costs, excluded)
    amounts, train_dust = _split(train, weights)
    out.amounts, out.refund = amounts, train_dust + sap_dust
    # the contract builds a root exactly when some client has weight (even if train is 0)
    out.payouts_root = payout_tree(task_id, round, clients, amounts).root if any(weights) else ZERO_HASH
    out.winner, out.winner_index = reveals[idx].miner, idx
    out.centre_hash, out.winner_hash = vector_hash(centre), vector_hash(reveals[idx].values)
    out.train, out.com, out.sap = train, com, sap
    return out
