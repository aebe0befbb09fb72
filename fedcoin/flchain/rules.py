"""FLChain's arithmetic, mirrored function by function from ``contracts/FLChain.sol``.

Everything is integers (wei, parts per million, basis points), so Python and Solidity agree to
the unit; ``tests/test_flchain_contract.py`` checks each function against the contract.
"""

from __future__ import annotations

from typing import Sequence

PPM = 1_000_000
BPS = 10_000
MAX_SCORE = 5


def reliability(rounds: int, positive: int, eval_count: int, eval_sum: int, upheld: int) -> int:
    """RELY in ppm (``FLChain._reliability``): s · e / (1 + upheld), with

    * s = (positive + 1) / (rounds + 2): the Laplace-smoothed share of the trainer's recorded
      rounds whose consensus Shapley value was positive (its Shapley history);
    * e = (eval_sum + 3) / (5 · (eval_count + 1)): buyers' mean score out of 5, with one prior
      score of 3 (its models' evaluations);
    * each upheld report divides the product again (1 + upheld).

    A new trainer has 0.5 · 0.6 = 300,000 ppm; floors at each step, as the contract does.
    """
    s = (positive + 1) * PPM // (rounds + 2)
    e = (eval_sum + 3) * PPM // (MAX_SCORE * (eval_count + 1))
    return s * e // PPM // (1 + upheld)


def sale_split(price: int, contributions: Sequence[int], reliabilities: Sequence[int]) -> tuple[list[int], int]:
    """Per-sale amounts of ``FLChain.listModel``: floor(price · w_j / Σw) with w_j = contribution_j ·
    RELY_j, and the lister's dust = price − Σ amounts (so the amounts sum to the price exactly).

    Raises:
        ValueError: lengths differ, or every weight is 0 (the contract reverts FLChainNoContributors).
    """
    if len(contributions) != len(reliabilities):
        raise ValueError("one reliability per contribution")
    w = [int(c) * int(r) for c, r in zip(contributions, reliabilities)]
    total = sum(w)
    if total == 0:
        raise ValueError("no trainer has a positive weight")
    amounts = [price * x // total for x in w]
    return amounts, price - sum(amounts)


def paper_split(price: int, shares: Sequence[float], reliabilities_ppm: Sequence[int]) -> list[float]:
    """The paper's p_j = p · shares_j · RELY_j, unnormalised: its sum is p · Σ shares_j · RELY_j,
    which equals p only if every RELY_j is 1 (it is what :func:`sale_split` normalises)."""
    return [price * s * r / PPM for s, r in zip(shares, reliabilities_ppm)]


def confiscation(deposit: int, reward_bps: int, compensation_bps: int, honest: int) -> tuple[int, int, int]:
    """How an upheld InvalidUpdate report splits the offender's ``deposit``: (reward to the
    reporter, compensation to each of the ``honest`` included clients, rest to the requester).
    The reporter also gets its fee back. Σ = reward + each · honest + rest = deposit."""
    reward = deposit * reward_bps // BPS
    cp = deposit * compensation_bps // BPS
    each = cp // honest if honest else 0
    return reward, each, deposit - reward - each * honest


def exclusion_offset(spec_bytes: bytes, index: int) -> int:
    """Byte offset in a round's canonical spec of ``"index":<index>,"reason":"`` — the evidence
    ``reportInvalidUpdate`` checks on chain (``FLChain._checkReason``).

    Raises:
        ValueError: the spec has no exclusion of ``index``.
    """
    pattern = f'"index":{int(index)},"reason":"'.encode()
    at = spec_bytes.find(pattern)
    if at < 0:
        raise ValueError(f"the spec excludes no registration {index}")
    return at


def exclusion_reason(spec_bytes: bytes, index: int) -> str:
    """The reason the spec gives for excluding ``index`` (what the contract reads after the pattern)."""
    at = exclusion_offset(spec_bytes, index) + len(f'"index":{int(index)},"reason":"')
    return spec_bytes[at:spec_bytes.index(b'"', at)].decode()
