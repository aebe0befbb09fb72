"""The FedCoin paper's PoSap rule, kept as an OFF-CHAIN SIMULATION only (Liu et al., Algorithm 1).

The contract no longer ships this rule (it ships the robust rule of :mod:`fedcoin.protocol.posap`);
it is here so that ``scripts/figure6.py`` and ``scripts/collusion_table.py`` can reproduce the
paper's numbers and show, side by side, what the robust rule changes. Integer maths with
Solidity's truncation, exactly as the previous contract computed it:

* consensus S̄ = Σ_i w_i S_i / Σ_i w_i with w_i = min(claimed iterations, cap) — a
  self-reported weight, which is why one address claiming the cap moves S̄ onto its own vector;
* the winner is the qualifying reveal (‖S − S̄‖_p ≤ D) that committed first — which is why a
  zero vector committed first wins whenever ‖S‖ < D.

Examples:
    >>> weighted_mean([[10, -10], [20, 5]], [1, 3], cap=100)
    [17, 1]
"""

from __future__ import annotations

from typing import Sequence

from fedcoin.protocol.fixedpoint import div_trunc
from fedcoin.protocol.posap import Reveal, p_distance


def weight(iterations: int, cap: int) -> int:
    """A reveal's weight in the paper's mean: ``min(iterations, cap)``."""
    return min(int(iterations), int(cap))


def weighted_mean(vectors: Sequence[Sequence[int]], iterations: Sequence[int], cap: int, k: int | None = None) -> list[int]:
    """Iteration-weighted mean, ``mean_j = (Σ_i w_i s_ij) / (Σ_i w_i)`` truncated toward zero;
    the zero vector of length ``k`` with no vectors or zero total weight."""
    if len(vectors) != len(iterations):
        raise ValueError(f"{len(vectors)} vectors but {len(iterations)} iteration counts")
    k = len(vectors[0]) if vectors else (k or 0)
    ws = [weight(t, cap) for t in iterations]
    total = sum(ws)
    acc = [0] * k
    for w, v in zip(ws, vectors):
        if len(v) != k:
            raise ValueError(f"vector of length {len(v)}, expected {k}")
        for j in range(k):
            acc[j] += w * int(v[j])
    if total == 0:
        return acc
    return [div_trunc(a, total) for a in acc]


def qualifies(dist: int, difficulty: int, p: int) -> bool:
    """dist <= D, or dist <= D² for p = 2 (absolute D only)."""
    return dist <= difficulty * difficulty if p == 2 else dist <= difficulty


def select_winner(reveals: Sequence[Reveal], mean: Sequence[int], difficulty: int, p: int) -> int | None:
    """Index of the qualifying reveal with the smallest ``seq`` (the first committer), or None."""
    best: int | None = None
    for i, r in enumerate(reveals):
        if best is not None and r.seq >= reveals[best].seq:
            continue
        if qualifies(p_distance(r.values, mean, p), difficulty, p):
            best = i
    return best
