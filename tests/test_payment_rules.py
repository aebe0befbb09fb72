"""The task's payment rule on a real Anvil: ``shapley`` (FedCoin), ``data-cost`` and
``data-cost-gated`` (Record-and-Reward's TrainPrice pro rata to n_k), each to the wei against
hand-computed amounts and the reference model (``posap.client_payouts``), with conservation,
the dust credited to the requester, the rule in the PoSap block record, the cap on declared
n_k, and every rejection path (a bad rule or cap, n_k above the cap, forged data costs at
finalize)."""

from __future__ import annotations

import pytest

from fedcoin.chain import ContractRevert, CreditReason
from fedcoin.protocol import posap
from fedcoin.roles.audit import audit
from conftest import chain_env
from round_driver import Ledger, new_task, play_round
from fedcoin_testkit import ETH, TEST_TASK, default_params, vec

env = chain_env(n_clients=4, n_miners=2, params=default_params())

V = 2 * ETH + 13  # odd: the split and each rule leave dust that must land with the requester
N = [100, 300, 50, 250]  # declared n_k of clients 0..3
#: Two miners reveal the same vector: centre = this, client 1 negative, client 2 zero.
S = [0.40, -0.05, 0.0, 0.20]


def _refunds(fc, tid, who):
    return sum(e["amount"] for e in fc.credited_events(account=who.address, task_id=tid)
               if CreditReason(e["reason"]) == CreditReason.REFUND)


def _expected(rule, train, excluded=()):
    """Hand-computed amounts (floor of train * weight / total weight)."""
    c = vec(S)
    if rule == "shapley":
        w = [max(x, 0) for x in c]
    elif rule == "data-cost":
        w = [0 if j in excluded else n for j, n in enumerate(N)]
    else:
        w = [n if x > 0 else 0 for n, x in zip(N, c)]
    total = sum(w)
    return [train * x // total for x in w]


@pytest.mark.parametrize("rule", posap.PAYMENT_RULES)
def test_each_rule_pays_clients_to_the_wei_and_records_itself(env, rule):
    w3, fc, a = env
    everyone = [a.requester, a.server, *a.clients, *a.miners, a.outsider]
    L = Ledger(w3, everyone)
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(
        a.server.address, [c.address for c in a.clients], 1, V, payment=rule, max_data_cost=1000,
        **TEST_TASK), V).task_id
    assert fc.payment_rule(tid) == rule and fc.get_task(tid).max_data_cost == 1000
    assert fc.task_configured_events(tid)[0]["payment"] == posap.payment_code(rule)
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    excluded = (2,)  # client 2 failed a check: 0 in every vector, never paid
    play_round(w3, fc, a, tid, 0, [vec(S), vec(S)], [10, 10], ledger=L, data_costs=N, excluded=excluded)
    train = fc.round_prices(tid, 0)[0]
    fin = L.tx(a.outsider, fc.as_account(a.outsider).finalize(tid, 0)).event("RoundFinalized")
    want = _expected(rule, train, excluded)
    ref, dust = posap.client_payouts(train, vec(S), payment=rule, data_costs=N, excluded=excluded)
    assert list(fin["amounts"]) == want == ref and want[2] == 0
    if rule != "data-cost":
        assert want[1] == 0  # a negative Shapley value is not paid under shapley or the gate
    else:
        assert want[1] == train * 300 // 650  # R&R pays n for any accepted upload, harmful or not
    blk = fc.get_block(fc.block_count() - 1)
    assert blk.payment == posap.payment_code(rule)
    # the requester's Refund credit holds the TrainPrice dust (and the SapPrice dust)
    assert _refunds(fc, tid, a.requester) >= dust == train - sum(want)
    for j, c in enumerate(a.clients):  # registration order = a.clients order here
        if want[j]:
            L.tx(c, fc.as_account(c).claim(tid, 0))
            L.receive(c, want[j])
    for who in (a.server, a.requester, *a.miners):
        if fc.credits(who.address):
            amount = fc.credits(who.address)
            L.tx(who, fc.as_account(who).withdraw())
            L.receive(who, amount)
    assert fc.balance() == fc.liabilities() == sum(fc.totals().values())
    assert fc.balance() == 0  # one task, settled, everything claimed or withdrawn
    L.check()  # every account's ether to the wei: V in, fees out, each payout received
    assert audit(fc).ok, audit(fc)
    print(f"\n[{rule}] train={train} amounts={want} dust={dust}")


def test_gate_with_no_positive_value_refunds_all_of_train_price(env):
    w3, fc, a = env
    tid = new_task(fc, a, value=V, payment="data-cost-gated")
    fc.as_account(a.server).accept_task(tid)
    bad = vec([-0.1, 0.0, -0.2, 0.0])
    play_round(w3, fc, a, tid, 0, [bad, bad], [5, 5], data_costs=N)
    before = _refunds(fc, tid, a.requester)
    fin = fc.as_account(a.outsider).finalize(tid, 0).event("RoundFinalized")
    train = fc.round_prices(tid, 0)[0]
    assert list(fin["amounts"]) == [0, 0, 0, 0] and fin["payoutsRoot"] == b"\x00" * 32
    assert _refunds(fc, tid, a.requester) - before >= train
    assert fc.get_round(tid, 0).unclaimed == 0


def test_rule_and_cap_rejections_change_nothing(env):
    w3, fc, a = env
    cl = [c.address for c in a.clients]
    req = fc.as_account(a.requester)
    for payment, cap in ((3, 1000), (0, 0), (1, 2**64)):
        with pytest.raises(ContractRevert) as e:
            req.create_task(a.server.address, cl, 1, V, payment=payment, max_data_cost=cap, **TEST_TASK)
        assert e.value.name == "FedCoinBadPayment" and e.value.args_ == (payment, cap)
    with pytest.raises(ValueError, match="unknown payment rule"):
        req.create_task(a.server.address, cl, 1, V, payment="stake", **TEST_TASK)
    assert fc.task_count() == 0 and fc.balance() == 0
    tid = new_task(fc, a, value=V, payment="data-cost", max_data_cost=400)
    fc.as_account(a.server).accept_task(tid)
    c0 = fc.as_account(a.clients[0])
    with pytest.raises(ContractRevert) as e:
        c0.register_update(tid, 0, b"\x01" * 32, "l", 401)
    assert e.value.name == "FedCoinBadDataCost" and e.value.args_ == (401, 400)
    assert not fc.is_registered(tid, 0, a.clients[0].address)
    play_round(w3, fc, a, tid, 0, [vec(S), vec(S)], [5, 5], data_costs=[400, 300, 50, 250])
    before = fc.totals()
    costs = fc.data_costs(tid, 0)
    for forged in ([1, *costs[1:]], costs[:-1], [*costs, 7]):  # a lie about n_k, a short and a long list
        with pytest.raises(ContractRevert) as e:
            fc.as_account(a.outsider).finalize(tid, 0, data_costs=forged)
        assert e.value.name == "FedCoinClientsMismatch"
    assert fc.totals() == before
    fin = fc.as_account(a.outsider).finalize(tid, 0).event("RoundFinalized")
    assert list(fin["amounts"]) == posap.client_payouts(fc.round_prices(tid, 0)[0], vec(S), payment="data-cost",
                                                        data_costs=[400, 300, 50, 250])[0]


def test_inflated_data_cost_replayed_under_each_rule_and_the_cap(env):
    """The attack of docs/rr.md on chain: client 0 declares 10x its real n = 100. Under the
    data-cost rules its share of TrainPrice jumps; under shapley the amounts do not move with
    n; a cap of 2x the honest n fixed at creation bounds the gain."""
    w3, fc, a = env
    rows = []
    for rule in posap.PAYMENT_RULES:
        for cap, declared in ((2**64 - 1, 100), (2**64 - 1, 1000), (200, 200)):
            snap = w3.provider.make_request("evm_snapshot", [])["result"]
            tid = new_task(fc, a, value=V, payment=rule, max_data_cost=cap)
            fc.as_account(a.server).accept_task(tid)
            play_round(w3, fc, a, tid, 0, [vec(S), vec(S)], [5, 5], data_costs=[declared, 150, 50, 200])
            fin = fc.as_account(a.outsider).finalize(tid, 0).event("RoundFinalized")
            train = fc.round_prices(tid, 0)[0]
            rows.append((rule, cap, declared, fin["amounts"][0] / train))
            w3.provider.make_request("evm_revert", [snap])
    share = {(r, c, d): s for r, c, d, s in rows}
    big = 2**64 - 1
    for rule in ("data-cost", "data-cost-gated"):
        assert share[(rule, big, 1000)] > 2.5 * share[(rule, big, 100)]
        assert share[(rule, big, 100)] < share[(rule, 200, 200)] < share[(rule, big, 1000)]
    assert share[("shapley", big, 1000)] == share[("shapley", big, 100)]
    print("\nrule, cap, declared n of client 0 (real 100), its share of TrainPrice")
    for r in rows:
        print(f"  {r[0]:16s} cap={'none' if r[1] == big else r[1]:>5} declared={r[2]:5d} share={r[3]:.3f}")
