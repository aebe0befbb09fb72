"""Off-chain reference model of PoSap settlement: what ``FedCoin.finalize`` computes.

Every function here is pure and mirrors one piece of ``contracts/`` exactly (integer maths,
Solidity's round-toward-zero division), so miners can predict the outcome and the audit
command can re-derive every winner, payout and PoSap block record from events. The tests
diff these functions against the deployed contract on random inputs.

Fixed point: int256 with 18 decimals (:mod:`fedcoin.protocol.fixedpoint`). Distances:
``p = 1`` → Σ|d|, ``p = 2`` → Σd² (compared with D², no square root), ``p = P_INF (255)`` → max|d|.

Examples:
    >>> weighted_mean([[10, -10], [20, 5]], [1, 3], cap=100)
    [17, 1]
    >>> p_distance([3, -4], [0, 0], 2), qualifies(25, 5, 2)
    (25, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from eth_abi import encode as abi_encode
from eth_utils import keccak

from fedcoin.protocol.commitment import vector_hash
from fedcoin.protocol.fixedpoint import div_trunc
from fedcoin.protocol.merkle import ZERO_HASH, payout_tree

#: Code of p = infinity (``PDistance.P_INF``).
P_INF = 255
SUPPORTED_P = (1, 2, P_INF)
#: Basis points in a whole.
BPS = 10_000
#: Default split TrainPrice : ComPrice : SapPrice.
DEFAULT_SPLIT = (7000, 1000, 2000)
#: ``FedCoin.MAX_DIFFICULTY``.
MAX_DIFFICULTY = 2**120
#: ``FedCoin.MAX_REOPENS``: re-opens of a round without a winner before it is abandoned.
MAX_REOPENS = 3
MAX_COMMITS = 64
MAX_ROUND_WORDS = 8192


@dataclass(frozen=True)
class Reveal:
    """One valid reveal of an attempt, as ``finalize`` receives it (``RevealData``).

    Attributes:
        miner: the revealing account.
        seq: its commitment sequence number in the attempt (0 = earliest commit).
        iterations: claimed sample count (weighted as min(iterations, cap)).
        values: S, fixed-point ints, registration order.
    """

    miner: str
    seq: int
    iterations: int
    values: tuple[int, ...]

    def as_abi(self) -> tuple:
        return (self.miner, self.seq, self.iterations, list(self.values))


def weight(iterations: int, cap: int) -> int:
    """A reveal's weight in the mean: ``min(iterations, cap)`` (``PDistance.weight``)."""
    return min(int(iterations), int(cap))


def weighted_mean(vectors: Sequence[Sequence[int]], iterations: Sequence[int], cap: int, k: int | None = None) -> list[int]:
    """Iteration-weighted mean, ``mean_j = (Σ_i w_i s_ij) / (Σ_i w_i)`` truncated toward zero.

    Mirrors ``PDistance.weightedMean``: weights are ``min(t_i, cap)``; with no vectors or
    zero total weight the mean is the zero vector of length ``k``.

    Args:
        vectors: M vectors of length K (fixed point).
        iterations: M iteration counts.
        cap: the contract's ``maxIterations``.
        k: vector length when ``vectors`` is empty.
    """
    if len(vectors) != len(iterations):
        raise ValueError(f"{len(vectors)} vectors but {len(iterations)} iteration counts")
    k = len(vectors[0]) if vectors else (k or 0)
    ws = [weight(t, cap) for t in iterations]
    total = sum(ws)
    acc = [0] * k
    for w, v in zip(ws, vectors):
        if len(v) != k:
            raise ValueError(f"vector of length {len(v)}, expected {k}")
        if w == 0:
            continue
        for j in range(k):
            acc[j] += w * int(v[j])
    if total == 0:
        return acc
    return [div_trunc(a, total) for a in acc]


def p_distance(s: Sequence[int], mean: Sequence[int], p: int) -> int:
    """``PDistance.distance``: Σ|d| (p=1), Σd² (p=2), max|d| (p=P_INF) with d = s − mean."""
    if len(s) != len(mean):
        raise ValueError(f"length {len(s)} vs {len(mean)}")
    diffs = [abs(int(a) - int(b)) for a, b in zip(s, mean)]
    if p == 1:
        return sum(diffs)
    if p == 2:
        return sum(d * d for d in diffs)
    if p == P_INF:
        return max(diffs, default=0)
    raise ValueError(f"unsupported p={p}; use 1, 2 or {P_INF} (infinity)")


def qualifies(dist: int, difficulty: int, p: int) -> bool:
    """``PDistance.qualifies``: dist <= D, or dist <= D² for p = 2."""
    return dist <= difficulty * difficulty if p == 2 else dist <= difficulty


def select_winner(reveals: Sequence[Reveal], mean: Sequence[int], difficulty: int, p: int) -> int | None:
    """Index (into ``reveals``) of the qualifying reveal with the smallest ``seq``, or None."""
    best: int | None = None
    for i, r in enumerate(reveals):
        if best is not None and r.seq >= reveals[best].seq:
            continue
        if qualifies(p_distance(r.values, mean, p), difficulty, p):
            best = i
    return best


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


def client_payouts(train: int, mean: Sequence[int]) -> tuple[list[int], int]:
    """Clients' amounts and the requester's refund for a settled round.

    ``amount_k = train · S̄_k // Σ_{S̄_j > 0} S̄_j`` for ``S̄_k > 0`` else 0; the refund is the
    rounding dust, or all of ``train`` when no mean entry is positive.
    """
    positive = sum(int(m) for m in mean if m > 0)
    if positive == 0:
        return [0] * len(mean), train
    amounts = [train * int(m) // positive if m > 0 else 0 for m in mean]
    return amounts, train - sum(amounts)


def next_difficulty(d: int, elapsed: int, target: int) -> int:
    """``FedCoin.nextDifficulty``: ``clamp(d·elapsed // target, max(d // 2, 1), min(2d, MAX))``.

    D larger is easier: a round won slower than ``target`` raises D, a faster one lowers it,
    by at most a factor of 2 either way.
    """
    lo = max(d // 2, 1)
    hi = min(d * 2, MAX_DIFFICULTY)
    return min(max(d * elapsed // target, lo), hi)


def relaxed_difficulty(d: int) -> int:
    """D after a re-open without a winner: ``min(2d, MAX_DIFFICULTY)``."""
    return min(d * 2, MAX_DIFFICULTY)


def commit_cap(k: int) -> int:
    """``FedCoin.commitCap``: most commitments per attempt with ``k`` registered clients."""
    by_words = MAX_COMMITS if k == 0 else MAX_ROUND_WORDS // k
    return min(by_words, MAX_COMMITS)


def record_hash(
    height: int, task_id: int, round: int, winner: str, mean_hash: bytes, winner_hash: bytes,
    prev_hash: bytes, difficulty: int, payouts_root: bytes,
) -> bytes:
    """The PoSap block record hash, ``keccak256(abi.encode(height, taskId, round, winner,
    meanHash, winnerHash, prevHash, D, payoutsRoot))``."""
    return keccak(abi_encode(
        ["uint256", "uint256", "uint256", "address", "bytes32", "bytes32", "bytes32", "uint256", "bytes32"],
        [height, task_id, round, winner, mean_hash, winner_hash, prev_hash, difficulty, payouts_root],
    ))


@dataclass
class Settlement:
    """What ``finalize`` does with one attempt's reveals.

    ``winner`` is None when nobody qualifies (the round re-opens or is abandoned); then only
    ``mean`` is meaningful.
    """

    mean: list[int]
    winner: str | None
    winner_index: int | None
    amounts: list[int] = field(default_factory=list)
    refund: int = 0
    payouts_root: bytes = ZERO_HASH
    mean_hash: bytes = ZERO_HASH
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
    cap: int,
    budget: int,
    rounds: int,
    split: Sequence[int] = DEFAULT_SPLIT,
) -> Settlement:
    """Reference ``finalize``: mean, winner, client amounts, refund and payout root.

    The winner is credited ``sap`` plus the round's forfeited bonds, the server ``com``, the
    requester ``refund``; clients claim ``amounts`` under ``payouts_root`` (all-zero root when
    no mean entry is positive).
    """
    k = len(clients)
    if reveals:
        mean = weighted_mean([r.values for r in reveals], [r.iterations for r in reveals], cap)
    else:
        mean = [0] * k
    idx = select_winner(reveals, mean, difficulty, p) if reveals else None
    if idx is None:
        return Settlement(mean=mean, winner=None, winner_index=None)
    train, com, sap = round_prices(budget, rounds, round, split)
    amounts, refund = client_payouts(train, mean)
    root = payout_tree(task_id, round, clients, amounts).root if any(m > 0 for m in mean) else ZERO_HASH
    return Settlement(
        mean=mean, winner=reveals[idx].miner, winner_index=idx, amounts=amounts, refund=refund,
        payouts_root=root, mean_hash=vector_hash(mean), winner_hash=vector_hash(reveals[idx].values),
        train=train, com=com, sap=sap,
    )
