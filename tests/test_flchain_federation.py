"""FLChain's greedy federation allocation (fedcoin/flchain/federation.py): the paper's loop,
recomputing the best open pair at every step, against the one-sort implementation on random
inputs; capacities, one federation per trainer, the profit >= 0 rule, ties and updates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from fedcoin.flchain.federation import Intention, allocate, profit

T = [f"0x{i:040x}" for i in range(1, 9)]


def _it(model, trainer, income, cost, price=0):
    return Intention(model, trainer, price, income, cost)


def loop_reference(capacities, reliability, intentions):
    """Algorithm 1 as a literal loop: recompute PFT_max over the open pairs at every step."""
    latest = {}
    for it in intentions:
        if it.model in capacities and it.trainer in reliability:
            latest[(it.model, it.trainer)] = it
    out = {m: [] for m in capacities}
    placed = set()
    while True:
        open_pairs = [it for it in latest.values()
                      if it.trainer not in placed and len(out[it.model]) < capacities[it.model]]
        if not open_pairs:
            return out
        best = max(open_pairs, key=lambda i: (profit(i, reliability[i.trainer]), -i.model, -int(i.trainer, 16)))
        if profit(best, reliability[best.trainer]) < 0:
            return out
        out[best.model].append(best.trainer)
        placed.add(best.trainer)


def test_the_most_profitable_pairs_are_placed_first_and_each_trainer_once():
    rely = {T[0]: 10, T[1]: 5, T[2]: 1}
    its = [_it(1, T[0], 100, 10), _it(2, T[0], 100, 0),  # T0 is worth most on model 2 (1000 vs 900)
           _it(1, T[1], 50, 0), _it(2, T[1], 300, 0),    # T1: 250 on 1, 1500 on 2 -> first pick
           _it(1, T[2], 20, 0)]
    got = allocate({1: 2, 2: 1}, rely, its)
    assert got == {1: [T[0], T[2]], 2: [T[1]]}  # T1 takes model 2's only seat; T0 goes to model 1


def test_negative_profit_never_joins_and_zero_does():
    rely = {T[0]: 3, T[1]: 3}
    assert allocate({1: 2}, rely, [_it(1, T[0], 5, 6), _it(1, T[1], 7, 7)]) == {1: [T[1]]}
    assert allocate({1: 2}, {T[0]: 0}, [_it(1, T[0], 1, 99)]) == {1: [T[0]]}  # RELY 0: profit 0


def test_ties_go_to_the_lower_model_then_the_lower_address():
    rely = {T[3]: 1, T[1]: 1}
    its = [_it(2, T[3], 10, 0), _it(1, T[3], 10, 0), _it(1, T[1], 10, 0)]
    assert allocate({1: 1, 2: 1}, rely, its) == {1: [T[1]], 2: [T[3]]}


def test_a_later_intention_replaces_an_earlier_one_and_unknown_models_are_ignored():
    rely = {T[0]: 1, T[1]: 1}
    its = [_it(1, T[0], 100, 0), _it(1, T[1], 50, 0), _it(1, T[0], 10, 0), _it(9, T[1], 10**9, 0)]
    assert allocate({1: 1}, rely, its) == {1: [T[1]]}


def test_bad_inputs_are_refused_with_a_message():
    with pytest.raises(ValueError, match="at least one trainer"):
        allocate({1: 0}, {}, [])
    with pytest.raises(ValueError, match="reliability must be >= 0"):
        allocate({1: 1}, {T[0]: -1}, [])
    with pytest.raises(ValueError, match="cost must be an integer >= 0"):
        _it(1, T[0], 1, -5)


@settings(max_examples=200, deadline=None)
@given(
    caps=st.dictionaries(st.integers(1, 4), st.integers(1, 3), min_size=1, max_size=4),
    rely=st.lists(st.integers(0, 5), min_size=1, max_size=len(T)),
    raw=st.lists(st.tuples(st.integers(1, 4), st.integers(0, len(T) - 1), st.integers(0, 20), st.integers(0, 20)),
                 max_size=30),
)
def test_one_sort_equals_the_papers_loop_with_pft_max_recomputed(caps, rely, raw):
    reliability = {T[j]: r for j, r in enumerate(rely)}
    its = [_it(m, T[j], inc, cost) for m, j, inc, cost in raw if j < len(rely)]
    got = allocate(caps, reliability, its)
    assert got == loop_reference(caps, reliability, its)
    placed = [t for ts in got.values() for t in ts]
    assert len(placed) == len(set(placed)) and all(len(got[m]) <= c for m, c in caps.items())
