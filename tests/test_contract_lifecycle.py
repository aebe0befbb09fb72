"""Happy paths on a real Anvil: 1 and 3 rounds, several clients and miners, every wei checked
against the reference model (fedcoin/protocol/posap.py); slashing, forfeits, re-open,
abandonment, refunds, the registration period, exclusions, displacement, claimTo and expiry."""

from __future__ import annotations

import pytest

from fedcoin.chain import CreditReason, RoundStatus, TaskStatus, Verdict
from fedcoin.protocol import posap
from fedcoin.protocol.commitment import vector_hash
from conftest import chain_env
from round_driver import Ledger, new_task, play_round
from fedcoin_testkit import ETH, TEST_TASK, advance, default_params, vec

P = default_params()


env = chain_env(n_clients=4, n_miners=3, params=P)


def assert_conserved(fc):
    t = fc.totals()
    assert fc.balance() == fc.liabilities() == sum(t.values())


def credits_by_reason(fc, tid):
    out = {r: 0 for r in CreditReason}
    for e in fc.credited_events(task_id=tid):
        out[CreditReason(e["reason"])] += e["amount"]
    return out


@pytest.mark.parametrize("rounds", [1, 3])
def test_rounds_pay_every_party_to_the_wei(env, rounds):
    w3, fc, a = env
    everyone = [a.requester, a.server, *a.clients, *a.miners, a.outsider]
    L = Ledger(w3, everyone)
    V = 3 * ETH + 7  # odd budget: remainders must land somewhere named
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(
        a.server.address, [c.address for c in a.clients], rounds, V, **TEST_TASK), V).task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    expected_credit = {x.address: 0 for x in everyone}
    bonds = {0: P.min_bond, 1: 2 * P.min_bond, 2: P.min_bond}
    client_amounts = {c.address: 0 for c in a.clients}
    d = fc.difficulty(tid)
    prev_hash = b"\x00" * 32
    for rnd in range(rounds):
        vectors = [vec([0.40, 0.30, -0.05, 0.10 + rnd / 100]), vec([0.42, 0.28, -0.04, 0.11]),
                   vec([0.90, -0.50, 0.70, 0.0])]  # miner 2 is far off (> 4 D): slashed
        play_round(w3, fc, a, tid, rnd, vectors, [100, 300, 5], bonds=bonds, ledger=L)
        reveals = fc.reveals(tid, rnd)
        assert [r.bond for r in reveals] == [bonds[0], bonds[1], bonds[2]]
        clients = fc.registered_clients(tid, rnd)
        assert clients == [c.address for c in a.clients]
        ref = posap.settle(task_id=tid, round=rnd, clients=clients, reveals=reveals, difficulty=d, p=2,
                           budget=V, rounds=rounds)
        assert ref.codes[2] == posap.SLASHED and ref.codes[1] == posap.QUALIFIED
        fin = L.tx(a.outsider, fc.as_account(a.outsider).finalize(tid, rnd))
        ev = fin.event("RoundFinalized")
        assert list(ev["centre"]) == ref.centre and list(ev["amounts"]) == ref.amounts
        assert ev["payoutsRoot"] == ref.payouts_root and ev["winner"] == ref.winner == a.miners[1].address
        judged = [e for e in fin.events if e.name == "Judged"]
        assert [Verdict(e["verdict"]) for e in judged] == [Verdict(c) for c in ref.codes]
        assert [e["reward"] for e in judged] == ref.rewards and [e["distance"] for e in judged] == ref.dists
        blk = fc.get_block(rnd)
        assert (blk.winner, blk.centre_hash, blk.winner_hash, blk.prev_hash, blk.difficulty) == (
            ref.winner, vector_hash(ref.centre), vector_hash(vectors[ref.winner_index]), prev_hash, d)
        assert blk.record_hash == posap.record_hash(rnd, tid, rnd, ref.winner, ref.centre_hash, ref.winner_hash,
                                                    prev_hash, d, ref.payouts_root)
        prev_hash = blk.record_hash
        pub = fc.get_round(tid, rnd).published_at
        if ref.qualified >= 2:
            last = max(fc.get_commitment(tid, rnd, 0, r.miner).committed_at
                       for r, c in zip(reveals, ref.codes) if c == posap.QUALIFIED)
            d = posap.next_difficulty(d, last - pub, P.target_block_time)
        assert fc.difficulty(tid) == d
        train, com, sap = posap.round_prices(V, rounds, rnd)
        assert fc.round_prices(tid, rnd) == (train, com, sap)
        expected_credit[a.server.address] += com
        expected_credit[a.requester.address] += ref.refund + ref.slashed
        for i, m in enumerate(a.miners):
            expected_credit[m.address] += ref.rewards[i] + ref.returned[i]
        for c, amt in zip(clients, ref.amounts):
            client_amounts[c] += amt
        assert_conserved(fc)
        for i, c in enumerate(a.clients):
            if ref.amounts[i]:
                L.tx(c, fc.as_account(c).claim(tid, rnd))
                L.receive(c, ref.amounts[i])
    assert fc.get_task(tid).status == TaskStatus.COMPLETED
    assert fc.get_task(tid).escrow == 0
    for x in everyone:
        assert fc.credits(x.address) == expected_credit[x.address]
        if expected_credit[x.address]:
            L.tx(x, fc.as_account(x).withdraw())
            L.receive(x, expected_credit[x.address])
    L.check()
    assert fc.balance() == 0 == fc.liabilities()
    # every wei of V went to someone named (bonds in = bonds out)
    by = credits_by_reason(fc, tid)
    assert sum(client_amounts.values()) + by[CreditReason.COM_PRICE] + by[CreditReason.SAP_PRICE] + by[CreditReason.REFUND] == V
    assert by[CreditReason.BOND_RETURNED] + by[CreditReason.FORFEITED] == sum(bonds.values()) * rounds


def test_unrevealed_bond_is_forfeited_to_the_requester_never_to_a_miner(env):
    w3, fc, a = env
    L = Ledger(w3, [a.requester, a.server, *a.clients, *a.miners])
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(
        a.server.address, [c.address for c in a.clients], 1, ETH, **TEST_TASK), ETH).task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    vs = [vec([0.1, 0.2, 0.3, 0.4])] * 3
    play_round(w3, fc, a, tid, 0, vs, [10, 10, 10], bonds={2: 5 * 10**16}, reveal_mask=[True, True, False], ledger=L)
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    _, _, sap = posap.round_prices(ETH, 1, 0)
    assert fc.credits(a.miners[0].address) == P.min_bond + sap // 2
    assert fc.credits(a.miners[1].address) == P.min_bond + sap // 2
    assert fc.credits(a.miners[2].address) == 0
    forfeited = [e for e in fin.events if e.name == "Credited" and e["reason"] == CreditReason.FORFEITED]
    assert [(e["account"], e["amount"]) for e in forfeited] == [(a.requester.address, 5 * 10**16)]
    L.check()
    assert_conserved(fc)


def test_no_consensus_returns_revealed_bonds_reopens_relaxed_then_abandons_everything_to_the_requester(env):
    w3, fc, a = env
    L = Ledger(w3, [a.requester, a.server, *a.clients, *a.miners])
    tid = L.tx(a.requester, fc.as_account(a.requester).create_task(
        a.server.address, [c.address for c in a.clients], 2, ETH, **TEST_TASK), ETH).task_id
    L.tx(a.server, fc.as_account(a.server).accept_task(tid))
    far = [vec([5, 0, 0, 0]), vec([0, 5, 0, 0]), vec([0, 0, 5, 0])]  # centre 0: nobody near it
    play_round(w3, fc, a, tid, 0, far, [1, 1, 1], reveal_mask=[True, True, False], ledger=L)
    d0 = fc.get_round(tid, 0).difficulty
    res = fc.as_account(a.outsider).finalize(tid, 0)
    ev = res.event("RoundReopened")
    assert ev["attempt"] == 1 and ev["difficulty"] == 2 * d0 and ev["forfeitedSoFar"] == P.min_bond
    # without consensus nobody is judged: the two revealed bonds came back
    assert fc.credits(a.miners[0].address) == fc.credits(a.miners[1].address) == P.min_bond
    for attempt in range(1, posap.MAX_REOPENS + 1):
        r = fc.get_round(tid, 0)
        assert r.attempt == attempt and r.status == RoundStatus.PUBLISHED
        w3.provider.make_request("evm_setNextBlockTimestamp", [r.reveal_deadline + 1])
        w3.provider.make_request("evm_mine", [])
        res = fc.as_account(a.outsider).finalize(tid, 0)
    train, com, sap = posap.round_prices(ETH, 2, 0)
    ab = res.event("RoundAbandoned")
    assert (ab["refund"], ab["forfeited"]) == (train + com + sap, P.min_bond)
    assert fc.credits(a.requester.address) == train + com + sap + P.min_bond
    assert fc.credits(a.server.address) == 0  # no ComPrice for a round that never settled
    assert fc.get_round(tid, 0).status == RoundStatus.ABANDONED and fc.get_task(tid).current_round == 1
    L.check()
    assert_conserved(fc)


def test_no_positive_centre_refunds_train_price(env):
    w3, fc, a = env
    tid = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid)
    neg = [vec([-0.1, -0.2, 0, -0.01])] * 3
    play_round(w3, fc, a, tid, 0, neg, [5, 5, 5])
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    assert fin.event("RoundFinalized")["payoutsRoot"] == b"\x00" * 32
    train, _, sap = posap.round_prices(ETH, 1, 0)
    assert fc.credits(a.requester.address) == train + sap - 3 * (sap // 3)
    assert_conserved(fc)


def test_unaccepted_task_refunds_after_deadline(env):
    w3, fc, a = env
    tid = fc.as_account(a.requester).create_task(a.server.address, [a.clients[0].address], 1, ETH, accept_window=50).task_id
    advance(w3, 51)
    res = fc.as_account(a.outsider).refund_unaccepted(tid)
    assert res.event("TaskRefunded")["amount"] == ETH and res.event("TaskRefunded")["accepted"] is False
    assert fc.credits(a.requester.address) == ETH and fc.get_task(tid).status == TaskStatus.REFUNDED
    assert_conserved(fc)


@pytest.mark.parametrize("published", [False, True])
def test_stalled_round_refunds_the_rest_after_the_escrow_bound(env, published):
    """Unpublished, or published and commit-less (a server's 'garbage spec'): after
    roundStartedAt + reg + (MAX_REOPENS + 1)·(commit + reveal) + FINALIZE_GRACE the requester
    takes everything back, ComPrice included."""
    w3, fc, a = env
    tid = new_task(fc, a, rounds=3)
    fc.as_account(a.server).accept_task(tid)
    if published:
        play_round(w3, fc, a, tid, 0, [], [])
    t = fc.get_task(tid)
    bound = posap.stalled_after(t.round_started_at, t.registration_window, t.commit_window, t.reveal_window)
    assert fc.stalled_after(tid) == bound
    w3.provider.make_request("evm_setNextBlockTimestamp", [bound + 1])
    w3.provider.make_request("evm_mine", [])
    res = fc.as_account(a.outsider).refund_stalled(tid)
    assert res.event("TaskRefunded")["amount"] == ETH and res.event("TaskRefunded")["accepted"] is True
    assert fc.get_task(tid).escrow == 0 and fc.get_task(tid).status == TaskStatus.REFUNDED
    assert fc.credits(a.server.address) == 0
    assert_conserved(fc)


def test_finalize_past_the_bound_abandons_and_refunds_the_rest_instead_of_reopening(env):
    w3, fc, a = env
    tid = new_task(fc, a, rounds=2)
    fc.as_account(a.server).accept_task(tid)
    play_round(w3, fc, a, tid, 0, [vec([5, 0, 0, 0]), vec([0, 5, 0, 0])], [1, 1])
    w3.provider.make_request("evm_setNextBlockTimestamp", [fc.stalled_after(tid) + 1])
    res = fc.as_account(a.outsider).finalize(tid, 0)
    assert "RoundReopened" not in [e.name for e in res.events]
    assert res.event("RoundAbandoned") and res.event("TaskRefunded")["amount"] == sum(posap.round_prices(ETH, 2, 1))
    assert fc.credits(a.requester.address) == ETH and fc.get_task(tid).status == TaskStatus.REFUNDED
    assert_conserved(fc)


def test_publication_waits_for_every_client_or_the_registration_deadline(env):
    w3, fc, a = env
    from fedcoin.chain import ContractRevert

    tid = new_task(fc, a)
    srv = fc.as_account(a.server)
    srv.accept_task(tid)
    fc.as_account(a.clients[0]).register_update(tid, 0, b"\x01" * 32, "l", 1)  # the server's favourite
    with pytest.raises(ContractRevert) as e:
        srv.publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    assert e.value.name == "FedCoinRegistrationOpen"
    for c in a.clients[1:3]:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, "l", 1)
    advance(w3, TEST_TASK["registration_window"] + 1)  # client 3 never shows up: the deadline passes
    srv.publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    assert fc.get_round(tid, 0).registered == 3


def test_excluded_clients_carry_zero_and_are_paid_nothing(env):
    w3, fc, a = env
    from fedcoin.chain import ContractRevert

    tid = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid)
    good = [vec([0.4, 0.3, 0.0, 0.1]), vec([0.41, 0.31, 0.0, 0.1])]
    play_round(w3, fc, a, tid, 0, good, [10, 10], excluded=[2])
    assert fc.excluded(tid, 0) == [2] and fc.is_excluded(tid, 0, 2) and not fc.is_excluded(tid, 0, 1)
    fin = fc.as_account(a.outsider).finalize(tid, 0)
    assert fin.event("RoundFinalized")["amounts"][2] == 0
    # a vector with a value at an excluded index is rejected at reveal
    tid2 = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid2)
    for c in a.clients:
        fc.as_account(c).register_update(tid2, 0, b"\x01" * 32, "l", 1)
    fc.as_account(a.server).publish_shapley_task(tid2, 0, b"\x02" * 32, "s", excluded=[1])
    bad = vec([0.4, 0.3, 0.0, 0.1])
    _, salt = fc.as_account(a.miners[0]).commit_vector(tid2, 0, bad, 1)
    advance(w3, TEST_TASK["commit_window"] + 1)
    with pytest.raises(ContractRevert) as e:
        fc.as_account(a.miners[0]).reveal(tid2, 0, bad, 1, salt)
    assert e.value.name == "FedCoinExcludedValue" and e.value.args_ == (1, bad[1])


def test_a_larger_bond_displaces_the_smallest_from_a_full_attempt(env):
    from eth_account import Account

    w3, fc, a = env
    tid = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid)
    play_round(w3, fc, a, tid, 0, [], [])  # registers and publishes; time is past the reveal deadline
    tid = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid)
    for c in a.clients:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, "l", 1)
    fc.as_account(a.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    sybils = [Account.create() for _ in range(64)]
    for i, m in enumerate(sybils):
        w3.provider.make_request("anvil_setBalance", [m.address, hex(10**18)])
        bond = P.min_bond + (1 if i == 5 else 0)
        fc.as_account(m).commit(tid, 0, b"\x09" * 32, bond=bond)
    honest = a.miners[0]
    res = fc.as_account(honest).commit(tid, 0, b"\x07" * 32, bond=2 * P.min_bond)
    ev = res.event("CommitDisplaced")
    assert ev["displaced"] == sybils[63].address and ev["by"] == honest.address and ev["bond"] == P.min_bond
    assert fc.credits(sybils[63].address) == P.min_bond  # credited back at once
    assert fc.get_commitment(tid, 0, 0, sybils[63].address).hash == b"\x00" * 32
    live = fc.committers(tid, 0, 0)
    assert len(live) == 64 and honest.address in live and sybils[63].address not in live
    assert fc.get_round(tid, 0).commit_count == 64 and fc.get_round(tid, 0).next_seq == 65
    assert_conserved(fc)


def test_claim_to_with_the_clients_signature_and_expiry(env):
    w3, fc, a = env
    from eth_account import Account

    from fedcoin.chain import ContractRevert
    from fedcoin.protocol.commitment import claim_to_digest

    tid = new_task(fc, a, rounds=2)
    fc.as_account(a.server).accept_task(tid)
    vs = [vec([0.4, 0.3, 0.2, 0.1])] * 2
    play_round(w3, fc, a, tid, 0, vs, [10, 10])
    fc.as_account(a.outsider).finalize(tid, 0)
    cold = Account.create()
    c0 = a.clients[0]
    sig = fc.as_account(c0).sign_claim_to(tid, 0, cold.address)
    assert Account._recover_hash(claim_to_digest(fc.chain_id, fc.address, tid, 0, c0.address, cold.address),
                                 signature=sig) == c0.address
    amount, _ = fc.payout_proof(tid, 0, c0.address)
    res = fc.as_account(a.outsider).claim_to(tid, 0, c0.address, cold.address, sig)  # anyone submits
    assert res.event("Claimed")["to"] == cold.address and res.event("Claimed")["amount"] == amount
    assert fc.credits(cold.address) == amount and fc.is_claimed(tid, 0, c0.address)
    # the signature names `to`: it cannot be redirected
    c1 = a.clients[1]
    sig1 = fc.as_account(c1).sign_claim_to(tid, 0, cold.address)
    with pytest.raises(ContractRevert) as e:
        fc.as_account(a.outsider).claim_to(tid, 0, c1.address, a.outsider.address, sig1)
    assert e.value.name == "FedCoinBadSignature"
    # after the claim window the rest goes back to the requester; later claims revert
    r = fc.get_round(tid, 0)
    expiry = r.finalized_at + TEST_TASK["claim_window"]
    unclaimed = r.unclaimed
    assert unclaimed == sum(fc.round_finalized(tid, 0)["amounts"]) - amount
    w3.provider.make_request("evm_setNextBlockTimestamp", [expiry + 1])
    w3.provider.make_request("evm_mine", [])
    with pytest.raises(ContractRevert) as e:
        fc.as_account(c1).claim(tid, 0)
    assert e.value.name == "FedCoinClaimExpired" and e.value.args_ == (tid, 0, expiry)
    before = fc.credits(a.requester.address)
    res = fc.as_account(a.outsider).reclaim_expired(tid, 0)
    assert res.event("PayoutsExpired")["amount"] == unclaimed
    assert fc.credits(a.requester.address) - before == unclaimed and fc.get_round(tid, 0).unclaimed == 0
    assert_conserved(fc)


def test_the_server_may_not_mine_its_own_task(env):
    w3, fc, a = env
    from fedcoin.chain import ContractRevert

    tid = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid)
    play_round(w3, fc, a, tid, 0, [], [])
    tid = new_task(fc, a)
    fc.as_account(a.server).accept_task(tid)
    for c in a.clients:
        fc.as_account(c).register_update(tid, 0, b"\x01" * 32, "l", 1)
    fc.as_account(a.server).publish_shapley_task(tid, 0, b"\x02" * 32, "s")
    with pytest.raises(ContractRevert) as e:
        fc.as_account(a.server).commit(tid, 0, b"\x09" * 32)
    assert e.value.name == "FedCoinServerCannotMine" and e.value.args_ == (a.server.address,)


def test_mined_revert_is_decoded_from_the_receipt(env):
    w3, fc, a = env
    out = fc.as_account(a.outsider)
    out.fixed_gas = 200_000
    from fedcoin.chain import ContractRevert

    with pytest.raises(ContractRevert) as e:
        out.withdraw()
    assert e.value.name == "FedCoinNothingToWithdraw" and e.value.args_ == (a.outsider.address,)
    assert e.value.receipt is not None and e.value.receipt["status"] == 0
