"""Happy paths on a real Anvil: 1 and 3 rounds, several clients and miners, every wei checked
against the reference model (fedcoin/protocol/posap.py); re-open, abandonment and refunds."""

from __future__ import annotations

import pytest

from fedcoin.protocol import posap
from fedcoin.chain import FedCoin
from fedcoin.protocol.commitment import vector_hash
from fedcoin.protocol.merkle import payout_tree
from conftest import chain_env
from round_driver import COMMIT_WINDOW, REVEAL_WINDOW, Ledger, play_round
from fedcoin_testkit import ETH, actors, advance, default_params, revert, snapshot, vec, w3_for

P = default_params()


env = chain_env(n_clients=4, n_miners=3, params=P)


def assert_conserved(fc):
    t = fc.totals()
    assert fc.balance() == fc.liabilities() == sum(t.values())


@pytest.mark.parametrize("rounds", [1, 3])
def test_rounds_pay_every_party_to_the_wei(env, rounds):
    w3, fc, a = env
    everyone = [a.requester, a.server, *a.clients, *a.miners, a.outsider]
    L = Ledger(w3, everyone)
    V = 3 * ETH + 7  # odd budget: remainders must land somewhere named
    res = L.tx(a.requester, fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], rounds, V), V)
    tid = res.task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    expected_credit = {x.address: 0 for x in everyone}
    bond = P.min_bond
    client_amounts = {c.address: 0 for c in a.clients}
    d = fc.difficulty()
    prev_hash = b"\x00" * 32
    for rnd in range(rounds):
        vectors = [vec([0.40, 0.30, -0.05, 0.10 + rnd / 100]), vec([0.42, 0.28, -0.04, 0.11]),
                   vec([0.90, -0.50, 0.70, 0.0])]  # miner 2 is far off and must not qualify
        iters = [100, 300, 5]
        play_round(w3, fc, a, tid, rnd, vectors, iters, ledger=L)
        reveals = fc.reveals(tid, rnd)
        clients = fc.registered_clients(tid, rnd)
        assert clients == [c.address for c in a.clients]
        ref = posap.settle(task_id=tid, round=rnd, clients=clients, reveals=reveals, difficulty=d,
                           p=P.distance_p, cap=P.max_iterations, budget=V, rounds=rounds)
        # D halves after each fast round, so later rounds may only admit the closer miner 1
        assert ref.winner == a.miners[0].address if rnd == 0 else ref.winner in (a.miners[0].address, a.miners[1].address)
        fin = L.tx(a.outsider, fc.as_account(a.outsider).finalize(tid, rnd))
        ev = fin.event("RoundFinalized")
        assert list(ev["mean"]) == ref.mean and list(ev["amounts"]) == ref.amounts
        assert ev["payoutsRoot"] == ref.payouts_root and ev["winner"] == ref.winner
        blk = fc.get_block(rnd)
        assert (blk.winner, blk.mean_hash, blk.winner_hash, blk.prev_hash, blk.difficulty) == (
            ref.winner, vector_hash(ref.mean), vector_hash(vectors[ref.winner_index]), prev_hash, d)
        assert blk.record_hash == posap.record_hash(rnd, tid, rnd, ref.winner, ref.mean_hash, ref.winner_hash,
                                                    prev_hash, d, ref.payouts_root)
        prev_hash = blk.record_hash
        pub = fc.get_round(tid, rnd).published_at
        won_at = fc.get_commitment(tid, rnd, 0, ref.winner).committed_at
        d = posap.next_difficulty(d, won_at - pub, P.target_block_time)
        assert fc.difficulty() == d
        train, com, sap = posap.round_prices(V, rounds, rnd)
        assert fc.round_prices(tid, rnd) == (train, com, sap)
        expected_credit[a.server.address] += com
        expected_credit[ref.winner] += sap
        expected_credit[a.requester.address] += ref.refund
        for m in a.miners:
            expected_credit[m.address] += bond  # every miner revealed: bonds come back
        for c, amt in zip(clients, ref.amounts):
            client_amounts[c] += amt
        assert_conserved(fc)
        for i, c in enumerate(a.clients):
            if ref.amounts[i]:
                L.tx(c, fc.as_account(c).claim(tid, rnd))
                L.receive(c, ref.amounts[i])
    assert fc.get_task(tid).status == 3  # Completed
    assert fc.get_task(tid).escrow == 0
    for x in everyone:
        assert fc.credits(x.address) == expected_credit[x.address]
        if expected_credit[x.address]:
            L.tx(x, fc.as_account(x).withdraw())
            L.receive(x, expected_credit[x.address])
    L.check()
    assert fc.balance() == 0 == fc.liabilities()
    # every wei of V went to someone named
    paid = sum(client_amounts.values()) + sum(expected_credit.values()) - bond * len(a.miners) * rounds
    assert paid == V


def test_unrevealed_bond_goes_to_winner(env):
    w3, fc, a = env
    L = Ledger(w3, [a.requester, a.server, *a.clients, *a.miners])
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH), ETH).task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    vs = [vec([0.1, 0.2, 0.3, 0.4])] * 3
    play_round(w3, fc, a, tid, 0, vs, [10, 10, 10], bonds={2: 5 * 10**16}, reveal_mask=[True, True, False], ledger=L)
    before = fc.credits(a.miners[0].address)
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    _, _, sap = posap.round_prices(ETH, 1, 0)
    assert fc.credits(a.miners[0].address) - before == sap + 5 * 10**16
    assert fc.credits(a.miners[2].address) == 0
    assert fin.event("RoundFinalized")["winner"] == a.miners[0].address
    L.check()  # nobody withdrew: each balance moved by exactly its fees, deposit and bonds
    assert_conserved(fc)


def test_no_qualifier_reopens_relaxed_then_abandons_to_requester(env):
    w3, fc, a = env
    L = Ledger(w3, [a.requester, a.server, *a.clients, *a.miners])
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 2, ETH), ETH).task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    far = [vec([5, 0, 0, 0]), vec([-5, 0, 0, 0]), vec([0, 5, 0, 0])]  # nobody near the mean
    play_round(w3, fc, a, tid, 0, far, [1, 1, 1], reveal_mask=[True, True, False], ledger=L)
    d0 = fc.get_round(tid, 0).difficulty
    res = fc.as_account(a.outsider).finalize(tid, 0)
    ev = res.event("RoundReopened")
    assert ev["attempt"] == 1 and ev["difficulty"] == 2 * d0 and ev["forfeitedSoFar"] == P.min_bond
    for attempt in range(1, posap.MAX_REOPENS + 1):
        r = fc.get_round(tid, 0)
        assert r.attempt == attempt and r.status == 1
        w3.provider.make_request("evm_setNextBlockTimestamp", [r.reveal_deadline + 1])
        w3.provider.make_request("evm_mine", [])
        res = fc.as_account(a.outsider).finalize(tid, 0, reveals=[])
    assert res.event("RoundAbandoned")["refund"] == posap.round_prices(ETH, 2, 0)[0] + posap.round_prices(ETH, 2, 0)[2] + P.min_bond
    train, com, sap = posap.round_prices(ETH, 2, 0)
    assert fc.credits(a.requester.address) == train + sap + P.min_bond
    assert fc.credits(a.server.address) == com
    assert fc.get_round(tid, 0).status == 3 and fc.get_task(tid).current_round == 1
    L.check()  # nobody withdrew: each balance moved by exactly its fees, deposit and bonds
    assert_conserved(fc)


def test_no_positive_mean_refunds_train_price(env):
    w3, fc, a = env
    L = Ledger(w3, [a.requester, a.server, *a.clients, *a.miners])
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(a.server.address, [c.address for c in a.clients], 1, ETH), ETH).task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    neg = [vec([-0.1, -0.2, 0, -0.01])] * 3
    play_round(w3, fc, a, tid, 0, neg, [5, 5, 5], ledger=L)
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    assert fin.event("RoundFinalized")["payoutsRoot"] == b"\x00" * 32
    train, _, _ = posap.round_prices(ETH, 1, 0)
    assert fc.credits(a.requester.address) == train
    L.check()  # nobody withdrew: each balance moved by exactly its fees, deposit and bonds
    assert_conserved(fc)


def test_unaccepted_task_refunds_after_deadline(env):
    w3, fc, a = env
    tid = fc.as_account(a.requester).create_task(a.server.address, [a.clients[0].address], 1, ETH, accept_window=50).task_id
    advance(w3, 51)
    res = fc.as_account(a.outsider).refund_unaccepted(tid)
    assert res.event("TaskRefunded")["amount"] == ETH
    assert fc.credits(a.requester.address) == ETH and fc.get_task(tid).status == 4
    assert_conserved(fc)


def test_stalled_task_refunds_remaining_escrow(env):
    w3, fc, a = env
    tid = fc.as_account(a.requester).create_task(a.server.address, [a.clients[0].address], 3, ETH).task_id
    fc.as_account(a.server).accept_task(tid)
    advance(w3, P.publish_timeout + 1)
    res = fc.as_account(a.outsider).refund_stalled(tid)
    assert res.event("TaskRefunded")["amount"] == ETH and res.event("TaskRefunded")["accepted"] is True
    assert fc.get_task(tid).escrow == 0
    assert_conserved(fc)


def test_mined_revert_is_decoded_from_the_receipt(env):
    w3, fc, a = env
    out = fc.as_account(a.outsider)
    out.fixed_gas = 200_000
    from fedcoin.chain import ContractRevert

    with pytest.raises(ContractRevert) as e:
        out.withdraw()
    assert e.value.name == "FedCoinNothingToWithdraw" and e.value.args_ == (a.outsider.address,)
    assert e.value.receipt is not None and e.value.receipt["status"] == 0
