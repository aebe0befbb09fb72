"""fedcoin.protocol.posap (the reference model) against the Solidity on random inputs, plus
hand-checked vectors for Solidity's round-toward-zero division."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fedcoin.protocol import fixedpoint as fp
from fedcoin.protocol import posap
from fedcoin.chain import FedCoin
from conftest import chain_env
from fedcoin_testkit import ETH, default_params, deploy_test_contract, dev_accounts, revert, snapshot, w3_for

CHECK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
val = st.integers(-fp.MAX_ABS, fp.MAX_ABS)


env = chain_env()


@pytest.fixture(scope="module")
def h(env):
    """The FedCoinHarness: the libraries' internal functions exposed as views."""
    return deploy_test_contract(env.w3, dev_accounts()[0], "FedCoinHarness")


@st.composite
def reveal_sets(draw):
    k = draw(st.integers(1, 8))
    m = draw(st.integers(0, 6))
    vecs = [draw(st.lists(val, min_size=k, max_size=k)) for _ in range(m)]
    iters = [draw(st.integers(0, 2**63)) for _ in range(m)]
    cap = draw(st.integers(1, 2**64 - 1))
    return k, vecs, iters, cap


@CHECK
@given(reveal_sets())
def test_weighted_mean_matches_solidity(h, case):
    k, vecs, iters, cap = case
    abi = [("0x" + "00" * 20, i, t, v) for i, (t, v) in enumerate(zip(iters, vecs))]
    assert posap.weighted_mean(vecs, iters, cap, k=k) == list(h.functions.weightedMean(abi, k, cap).call())


@CHECK
@given(st.integers(1, 10).flatmap(lambda k: st.tuples(st.lists(val, min_size=k, max_size=k),
                                                       st.lists(val, min_size=k, max_size=k))),
       st.sampled_from(posap.SUPPORTED_P), st.integers(0, 2**120))
def test_p_distance_and_qualification_match_solidity(h, pair, p, d):
    s, mean = pair
    dist = posap.p_distance(s, mean, p)
    assert dist == h.functions.distance(s, mean, p).call()
    assert posap.qualifies(dist, d, p) == h.functions.qualifies(dist, d, p).call()
    # the boundary on both sides: exactly D qualifies, one unit less does not (p = 2 compares Σd² with D²)
    edge = math.isqrt(dist) + (0 if math.isqrt(dist) ** 2 == dist else 1) if p == 2 else dist
    assert posap.qualifies(dist, edge, p) is True and h.functions.qualifies(dist, edge, p).call() is True
    if edge > 0:
        assert posap.qualifies(dist, edge - 1, p) is False and h.functions.qualifies(dist, edge - 1, p).call() is False


@CHECK
@given(st.integers(1, 2**120), st.integers(0, 2**64 - 1), st.integers(1, 2**64 - 1))
def test_next_difficulty_matches_solidity(env, d, elapsed, target):
    _, fc, _ = env
    n = posap.next_difficulty(d, elapsed, target)
    assert n == fc.next_difficulty(d, elapsed, target)
    assert max(d // 2, 1) <= n <= min(2 * d, posap.MAX_DIFFICULTY)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 10**21), st.integers(1, 7), st.sampled_from([(7000, 1000, 2000), (3333, 3333, 3334), (10000, 0, 0), (0, 1, 9999)]))
def test_round_prices_match_solidity_and_sum_to_budget(env, budget, rounds, split):
    w3, fc, _ = env
    snap = snapshot(w3)
    try:
        acc = dev_accounts()
        tid = fc.as_account(acc[0]).create_task(acc[1].address, [acc[2].address], rounds, budget, split=split).task_id
        total = 0
        for r in range(rounds):
            ref = posap.round_prices(budget, rounds, r, split)
            assert fc.round_prices(tid, r) == ref
            total += sum(ref)
        assert total == budget
    finally:
        revert(w3, snap)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**128), st.lists(st.integers(-(10**27), 10**27), min_size=1, max_size=20))
def test_client_payouts_conserve_train_price(train, mean):
    amounts, refund = posap.client_payouts(train, mean)
    assert sum(amounts) + refund == train and refund >= 0
    assert all(a == 0 for a, m in zip(amounts, mean) if m <= 0)
    if any(m > 0 for m in mean):
        assert refund < sum(1 for m in mean if m > 0)  # at most one wei of dust per payee


def test_truncation_toward_zero_vectors():
    # (-7*1 + 0*1) / 2 = -3.5 -> -3 (Python's // would give -4)
    assert posap.weighted_mean([[-7], [0]], [1, 1], cap=10) == [-3]
    assert posap.weighted_mean([[7], [0]], [1, 1], cap=10) == [3]
    # the cap clamps weights: (1*100 + 1*0) / 2 with iterations (5, 1) and cap 1
    assert posap.weighted_mean([[100], [0]], [5, 1], cap=1) == [50]
    # zero total weight: zero vector
    assert posap.weighted_mean([[5, 5]], [0], cap=10) == [0, 0]


def test_winner_is_earliest_qualifying_commitment():
    r = [posap.Reveal("0x" + "11" * 20, 2, 1, (0,)), posap.Reveal("0x" + "22" * 20, 1, 1, (0,)),
         posap.Reveal("0x" + "33" * 20, 0, 1, (10**18,))]
    mean = [0]
    assert posap.select_winner(r, mean, 1, 2) == 1  # seq 0 does not qualify; seq 1 beats seq 2
    assert posap.select_winner(r, mean, 10**18, posap.P_INF) == 2


def test_commit_cap_matches_contract(env):
    _, fc, _ = env
    for k in (0, 1, 3, 100, 128, 129, 1000, 1024):
        assert posap.commit_cap(k) == fc.commit_cap(k)
