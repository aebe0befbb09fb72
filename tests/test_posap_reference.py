"""fedcoin.protocol.posap (the reference model) against the Solidity on random inputs — the
robust centre check, distances, thresholds, rewards, difficulty and the escrow bound through
contracts/test/FedCoinHarness.sol — plus the breakdown point of the weighted lower median, the
claimTo digest and hand-checked vectors."""

from __future__ import annotations

import math

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings, strategies as st

from fedcoin.protocol import commitment, paper_rule
from fedcoin.protocol import fixedpoint as fp
from fedcoin.protocol import posap
from conftest import chain_env
from fedcoin_testkit import deploy_test_contract, dev_accounts, revert, snapshot

CHECK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
val = st.integers(-fp.MAX_ABS, fp.MAX_ABS)
small = st.integers(-5, 5)  # many ties: the hard case for a median
bond = st.integers(1, 2**128 - 1)


env = chain_env()


@pytest.fixture(scope="module")
def h(env):
    """The FedCoinHarness: the libraries' internal functions exposed as views."""
    return deploy_test_contract(env.w3, dev_accounts()[0], "FedCoinHarness")


def _abi(vecs):
    return [("0x" + "00" * 20, i, 1, list(v)) for i, v in enumerate(vecs)]


@st.composite
def reveal_sets(draw, values=val):
    k = draw(st.integers(1, 6))
    m = draw(st.integers(1, 7))
    vecs = [draw(st.lists(values, min_size=k, max_size=k)) for _ in range(m)]
    ws = [draw(st.one_of(st.integers(1, 3), bond)) for _ in range(m)]
    return k, vecs, ws


@CHECK
@given(st.one_of(reveal_sets(), reveal_sets(small)), st.data())
def test_the_lower_median_is_the_only_centre_the_contract_accepts(h, case, data):
    k, vecs, ws = case
    centre = posap.weighted_lower_median(vecs, ws)
    assert posap.check_centre(vecs, ws, centre) is None
    assert list(h.functions.checkCentre(_abi(vecs), ws, centre).call()) == [True, 0]
    # any other candidate (another revealed value, or one wei off) is rejected at the same index
    j = data.draw(st.integers(0, k - 1))
    other = list(centre)
    other[j] = data.draw(st.one_of(st.sampled_from([v[j] for v in vecs]), st.just(centre[j] + 1), st.just(centre[j] - 1)))
    bad = posap.check_centre(vecs, ws, other)
    ok, idx = h.functions.checkCentre(_abi(vecs), ws, other).call()
    if other[j] == centre[j]:
        assert bad is None and ok
    else:
        assert bad == j and (ok, idx) == (False, j)


@CHECK
@given(reveal_sets(small), st.data())
def test_less_than_half_the_stake_cannot_move_the_centre_outside_the_honest_range(h, case, data):
    """The breakdown point (docs/contracts.md): reveals holding < W/2 of the revealed stake,
    whatever they reveal, leave every c_j within [min, max] of the other reveals' j-th values."""
    k, honest, hw = case
    n_bad = data.draw(st.integers(1, 5))
    budget = (sum(hw) - 1) // 1  # attackers' total stake < honest total => < W/2
    if budget < n_bad:
        return
    cuts = sorted(data.draw(st.lists(st.integers(1, budget - 1), min_size=n_bad - 1, max_size=n_bad - 1,
                                     unique=True))) if n_bad > 1 and budget > n_bad else []
    if len(cuts) != n_bad - 1:
        return
    total_bad = data.draw(st.integers(n_bad, budget))
    bw = [b - a for a, b in zip([0] + cuts, cuts + [total_bad])] if cuts and cuts[-1] < total_bad else [total_bad]
    bad = [data.draw(st.lists(st.sampled_from([-fp.MAX_ABS, fp.MAX_ABS, 0]), min_size=k, max_size=k)) for _ in bw]
    centre = posap.weighted_lower_median(honest + bad, hw + bw)
    for j in range(k):
        col = [v[j] for v in honest]
        assert min(col) <= centre[j] <= max(col)


@CHECK
@given(st.integers(1, 10).flatmap(lambda k: st.tuples(st.lists(val, min_size=k, max_size=k),
                                                       st.lists(val, min_size=k, max_size=k))),
       st.sampled_from(posap.SUPPORTED_P), st.booleans(), st.data())
def test_distances_and_thresholds_match_solidity(h, pair, p, relative, data):
    s, centre = pair
    d = data.draw(st.integers(1, posap.difficulty_ceiling(relative)))
    assert posap.p_distance(s, centre, p) == h.functions.distance(s, centre, p).call()
    thr = posap.threshold(centre, d, p, relative)
    assert list(h.functions.thresholds(centre, d, p, relative).call()) == [thr, posap.slash_threshold(thr, p)]


def test_relative_difficulty_means_the_same_at_every_scale():
    centre = fp.encode_vector([0.3, 0.2, 0.1])
    s = fp.encode_vector([0.31, 0.19, 0.1])
    for scale in (10**-6, 1, 10**6):
        c = [int(x * scale) for x in centre]
        v = [int(x * scale) for x in s]
        assert posap.p_distance(v, c, 2) <= posap.threshold(c, 10**17, 2, True)  # within 10 %
        assert not posap.p_distance(v, c, 2) <= posap.threshold(c, 3 * 10**16, 2, True)  # not within 3 %
    # a zero vector never qualifies under any relative D (D <= 50 % of the centre's norm)
    for p in posap.SUPPORTED_P:
        assert posap.p_distance([0, 0, 0], centre, p) > posap.threshold(centre, posap.MAX_RELATIVE_DIFFICULTY, p, True)


@CHECK
@given(st.integers(0, 10**24), st.lists(st.integers(1, 2**100), min_size=1, max_size=8))
def test_sap_rewards_match_solidity_and_conserve(h, sap, bonds):
    rewards, dust = posap.sap_rewards(sap, bonds)
    assert sum(rewards) + dust == sap and 0 <= dust < len(bonds)
    out = h.functions.sapRewards(sap, bonds).call()
    assert (list(out[0]), out[1]) == (rewards, dust)


@CHECK
@given(st.integers(1, 2**120), st.integers(0, 2**64 - 1), st.integers(1, 2**64 - 1), st.booleans())
def test_next_difficulty_matches_solidity(h, d, elapsed, target, relative):
    d = min(d, posap.difficulty_ceiling(relative))
    n = posap.next_difficulty(d, elapsed, target, relative)
    assert n == h.functions.nextDifficulty(d, elapsed, target, relative).call()
    assert max(d // 2, 1) <= n <= min(2 * d, posap.difficulty_ceiling(relative))
    assert posap.relaxed_difficulty(d, relative) == h.functions.relaxedDifficulty(d, relative).call()


@CHECK
@given(st.integers(0, 2**63), st.integers(20, 7 * 86400), st.integers(20, 7 * 86400), st.integers(20, 7 * 86400))
def test_stalled_after_matches_solidity(h, start, reg, cw, rw):
    assert posap.stalled_after(start, reg, cw, rw) == h.functions.stalledAfter(start, reg, cw, rw).call()


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


@CHECK
@given(st.integers(0, 2**128), st.sampled_from(posap.PAYMENT_RULES),
       st.lists(st.tuples(st.integers(-(10**27), 10**27), st.integers(1, 2**64 - 1), st.booleans()),
                min_size=1, max_size=20))
def test_client_payouts_match_solidity_and_conserve_train_price(h, train, rule, rows):
    centre = [0 if ex else c for c, _, ex in rows]  # an excluded index carries 0 in every reveal
    costs = [n for _, n, _ in rows]
    excluded = [j for j, (_, _, ex) in enumerate(rows) if ex]
    amounts, refund = posap.client_payouts(train, centre, payment=rule, data_costs=costs, excluded=excluded)
    assert sum(amounts) + refund == train and refund >= 0
    assert all(amounts[j] == 0 for j in excluded)
    if rule != "data-cost":
        assert all(a == 0 for a, m in zip(amounts, centre) if m <= 0)
    out = h.functions.clientPayouts(train, posap.payment_code(rule), centre, costs,
                                    [bool(ex) for _, _, ex in rows]).call()
    assert (list(out[0]), out[1]) == (amounts, refund)


def test_data_cost_rules_pay_by_n_to_the_wei():
    train, centre, n = 1000, [5, -2, 0, 9], [10, 30, 20, 40]
    # data-cost: every update not excluded, by n (index 2 excluded): 1000*n // 80
    assert posap.client_payouts(train, centre, payment="data-cost", data_costs=n, excluded=[2]) == ([125, 375, 0, 500], 0)
    # gated: only the positive Shapley entries, by n: 1000*n // 50
    assert posap.client_payouts(train, centre, payment="data-cost-gated", data_costs=n) == ([200, 0, 0, 800], 0)
    # shapley: by the positive values: 1000*c // 14, dust 1000 - 357 - 642 = 1 to the requester
    assert posap.client_payouts(train, centre) == ([357, 0, 0, 642], 1)
    assert posap.client_payouts(train, [0, -1], payment="data-cost-gated", data_costs=[1, 1]) == ([0, 0], train)
    with pytest.raises(ValueError, match="unknown payment rule"):
        posap.payment_code("stake")
    with pytest.raises(ValueError, match="needs the data costs"):
        posap.client_payouts(train, centre, payment="data-cost")


def test_registration_link_and_record_hash_match_solidity(h):
    a = Account.create().address
    assert h.functions.registrationLink(b"\x07" * 32, a, 12345).call() == commitment.registration_link(b"\x07" * 32, a, 12345)
    args = (3, 1, 2, a, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 77, b"\x04" * 32)
    for code in range(3):
        assert h.functions.recordHash(*args, code).call() == posap.record_hash(*args, code)
    assert posap.record_hash(*args, 0) != posap.record_hash(*args, 2)


def test_displacement_choice_is_the_smallest_bond_latest_commit():
    assert posap.displacement_choice([5, 3, 3, 9], [0, 1, 2, 3]) == 2
    assert posap.displacement_choice([1], [7]) == 0


def test_representative_is_the_largest_qualifying_bond_lowest_seq():
    r = [posap.Reveal("0x" + "11" * 20, 2, 1, (0,), 5), posap.Reveal("0x" + "22" * 20, 1, 1, (0,), 5),
         posap.Reveal("0x" + "33" * 20, 0, 1, (0,), 9)]
    assert posap.representative(r, [posap.QUALIFIED, posap.QUALIFIED, posap.SLASHED]) == 1
    assert posap.representative(r, [posap.QUALIFIED] * 3) == 2
    assert posap.representative(r, [posap.RETURNED] * 3) is None


def test_claim_to_digest_matches_the_contract_and_eth_account(env, h):
    _, fc, _ = env
    client, to = Account.create(), Account.create().address
    sig = commitment.sign_claim_to(client, fc.chain_id, fc.address, 3, 1, to)
    digest = commitment.claim_to_digest(fc.chain_id, fc.address, 3, 1, client.address, to)
    assert h.functions.recover(digest, sig).call() == client.address
    assert h.functions.recover(digest, sig[:64]).call() == "0x" + "00" * 20


def test_paper_rule_truncates_toward_zero_and_picks_the_first_qualifier():
    # (-7*1 + 0*1) / 2 = -3.5 -> -3 (Python's // would give -4)
    assert paper_rule.weighted_mean([[-7], [0]], [1, 1], cap=10) == [-3]
    assert paper_rule.weighted_mean([[100], [0]], [5, 1], cap=1) == [50]
    assert paper_rule.weighted_mean([[5, 5]], [0], cap=10) == [0, 0]
    r = [posap.Reveal("0x" + "11" * 20, 2, 1, (0,)), posap.Reveal("0x" + "22" * 20, 1, 1, (0,)),
         posap.Reveal("0x" + "33" * 20, 0, 1, (10**18,))]
    assert paper_rule.select_winner(r, [0], 1, 2) == 1
    assert paper_rule.select_winner(r, [0], 10**18, posap.P_INF) == 2


def test_commit_cap_matches_contract(env):
    _, fc, _ = env
    for k in (0, 1, 3, 100, 128, 129, 1000, 1024):
        assert posap.commit_cap(k) == fc.commit_cap(k)


def test_median_example_by_hand():
    # weights 1, 2, 3 (W = 6): the value with the heaviest half at or below it
    assert posap.weighted_lower_median([[10], [20], [30]], [1, 2, 3]) == [20]
    assert posap.weighted_lower_median([[10], [20], [30]], [1, 1, 4]) == [30]
    assert posap.weighted_lower_median([[10], [20]], [1, 1]) == [10]  # exactly half: the lower one
    assert math.isqrt(posap.p_distance([3, 4], [0, 0], 2)) == 5
