"""FLChain's federation establishment (its Algorithm 1): which trainers join which model's
federation, computed deterministically from the published collaboration intentions.

A requester publishes a model (an id and the size of its federation); each trainer publishes,
per model it would train, a collaboration intention: its expected price, expected income
EINC_ij and cost estimate COST_ij (integers, e.g. wei). With each trainer's reliability RELY_j
(an integer score, e.g. parts per million), the greedy allocation is:

    repeat: among the pairs (model i, trainer j) still open — i's federation not full, j not
    yet placed — take the one with the largest profit RELY_j · (EINC_ij − COST_ij), if that
    profit is >= 0; place j in i's federation.
    stop when every federation is full, no trainer remains, or no open pair has profit >= 0.

Where the paper's pseudo-code is ambiguous, and what we chose:

* **PFT_max is never recomputed inside the paper's loop** (it is computed once, before it). Read
  literally, the loop would keep picking the same pair. We recompute the maximum over the open
  pairs at every step, which is what "greedy" means and what the prose describes.
* **A trainer joins at most one federation** ("until … no trainer remains"): once placed, its
  other intentions are closed.
* **Ties** (equal profit) go to the lower model id, then the lower trainer address (compared as
  integers), so every party that reads the same intentions computes the same allocation.
* **Profit 0 is admitted** (the paper's condition is ≥ 0); negative profit never is.
* **Several intentions of one trainer for one model**: the last one published counts (a trainer
  updates its intention by publishing again).

Everything is integer arithmetic: no float can make two auditors disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Intention:
    """One trainer's collaboration intention for one model (the paper's Table III fields).

    Attributes:
        model: the model id. trainer: the trainer's address (``0x`` hex).
        expected_price, expected_income, cost: EPRICE_ij, EINC_ij, COST_ij (integers >= 0).
    """

    model: int
    trainer: str
    expected_price: int
    expected_income: int
    cost: int

    def __post_init__(self):
        for name in ("expected_price", "expected_income", "cost"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"intention of {self.trainer} for model {self.model}: {name} must be an integer >= 0, got {v!r}")


def profit(intention: Intention, reliability: int) -> int:
    """RELY_j · (EINC_ij − COST_ij): the allocation's score of one intention."""
    return int(reliability) * (intention.expected_income - intention.cost)


def allocate(
    capacities: Mapping[int, int], reliability: Mapping[str, int], intentions: Iterable[Intention]
) -> dict[int, list[str]]:
    """Greedy federation allocation (FLChain's Algorithm 1, as read in the module docstring).

    Args:
        capacities: model id -> the number of trainers its federation takes (>= 1).
        reliability: trainer address -> RELY_j (integer >= 0; a trainer without one is skipped).
        intentions: in publication order (a later intention of the same trainer for the same
            model replaces the earlier one); intentions for unknown models are ignored.

    Returns:
        model id -> the trainers placed in its federation, in the order they were chosen
        (every model id of ``capacities`` is a key, possibly with an empty list).

    Raises:
        ValueError: a capacity below 1 or a negative reliability.
    """
    for m, cap in capacities.items():
        if int(cap) < 1:
            raise ValueError(f"model {m}: a federation takes at least one trainer, got capacity {cap}")
    for t, r in reliability.items():
        if int(r) < 0:
            raise ValueError(f"trainer {t}: reliability must be >= 0, got {r}")
    rely = {t.lower(): int(r) for t, r in reliability.items()}
    latest: dict[tuple[int, str], Intention] = {}
    for it in intentions:
        if it.model in capacities and it.trainer.lower() in rely:
            latest[(it.model, it.trainer.lower())] = it
    # one sort replaces the paper's repeated arg-max: the open pair with the largest profit is
    # the first one in this order whose model still has room and whose trainer is unplaced
    ranked = sorted(latest.values(), key=lambda i: (-profit(i, rely[i.trainer.lower()]), i.model, int(i.trainer, 16)))
    out: dict[int, list[str]] = {m: [] for m in capacities}
    placed: set[str] = set()
    for it in ranked:
        if profit(it, rely[it.trainer.lower()]) < 0:
            break  # sorted: every later pair is negative too
        t = it.trainer.lower()
        if t in placed or len(out[it.model]) >= int(capacities[it.model]):
            continue
        out[it.model].append(it.trainer)
        placed.add(t)
        if len(placed) == len(rely) or all(len(out[m]) >= int(c) for m, c in capacities.items()):
            break
    return out
