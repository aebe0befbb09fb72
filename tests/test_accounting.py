"""Where every wei went (fedcoin/roles/accounting.py) on a real Anvil: settled rounds with claims, a
slashed and a forfeited bond, an abandoned round, claimTo and expired payouts, refunds — V always
equals clients + server + miners + refunded + escrowed, cross-checked between views and events."""

from __future__ import annotations

import dataclasses

import pytest

from fedcoin.roles import accounting

from fedcoin.protocol import posap
from fedcoin.roles.accounting import format_line, payout_table, task_accounting
from fedcoin.chain import CreditReason, FedCoin
from conftest import chain_env
from fedcoin_testkit import ETH, TEST_TASK, actors, advance, default_params, revert, snapshot, vec, w3_for
from round_driver import abandon, claim_all, finalize, play_round
from round_driver import new_task as _new_task

P = default_params()
V = 3 * ETH + 7  # odd: every rounding remainder must land with someone named


env = chain_env(n_clients=3, n_miners=3, params=P)


def new_task(fc, a, rounds, value=V, **task):
    tid = _new_task(fc, a, rounds=rounds, value=value, **task)
    fc.as_account(a.server).accept_task(tid)
    return tid


def test_two_rounds_one_forfeited_bond_one_abandoned_round_account_for_every_wei(env):
    w3, fc, a = env
    tid = new_task(fc, a, 2)
    acc = task_accounting(fc, tid)
    assert (acc.V, acc.escrowed, acc.clients, acc.server, acc.miners, acc.refunded) == (V, V, 0, 0, 0, 0)
    assert format_line(acc) == f"V={V} clients=0 server=0 miners=0 refunded=0 escrowed={V} unaccounted=0"

    # round 0: miner 2 commits a large bond and never reveals: forfeited to the requester
    good = [vec([0.40, 0.30, -0.05]), vec([0.41, 0.29, -0.04]), vec([0.40, 0.30, -0.05])]
    play_round(w3, fc, a, tid, 0, good, [100, 300, 5], reveal_mask=[True, True, False], bonds={2: 5 * 10**16})
    mid = task_accounting(fc, tid)  # after the reveal deadline, before finalize: nothing settled
    assert mid.escrowed == V and mid.bonds_held == 5 * 10**16 + 2 * P.min_bond and mid.ok  # held until finalize
    fin = finalize(fc, a, tid, 0).event("RoundFinalized")
    claim_all(fc, a, tid, 0, only=[a.clients[0]])
    train0, com0, sap0 = posap.round_prices(V, 2, 0)
    amounts = list(fin["amounts"])
    acc = task_accounting(fc, tid)
    assert acc.ok, acc.mismatches
    assert acc.clients == sum(amounts) and acc.clients_claimed == amounts[0]
    assert acc.clients_unclaimed == sum(amounts) - amounts[0] == fc.get_task(tid).unclaimed
    sap_dust = sap0 - 2 * (sap0 // 2)
    assert (acc.server, acc.miners) == (com0, sap0 - sap_dust)
    assert acc.refunded == train0 - sum(amounts) + sap_dust and acc.refunded > 0  # rounding dust
    assert acc.bonds_forfeited == 5 * 10**16 and acc.bonds_held == 0 and acc.bonds_returned == 2 * P.min_bond
    assert acc.escrowed == V - train0 - com0 - sap0 and acc.unaccounted == 0
    assert fc.credits(fin["winner"]) == sap0 // 2 + P.min_bond  # its share + its own bond, nothing forfeited

    # round 1: nobody qualifies, miner 1 never reveals; re-opens lapse and the round is abandoned
    far = [vec([5, 0, 0]), vec([0, 0, 5]), vec([0, 5, 0])]
    abandon(w3, fc, a, tid, 1, far, [1, 1, 1], reveal_mask=[True, False, True])
    train1, com1, sap1 = posap.round_prices(V, 2, 1)
    acc = task_accounting(fc, tid)
    assert acc.ok, acc.mismatches
    assert acc.status == "Completed" and (acc.finalized, acc.abandoned) == (1, 1)
    assert acc.server == com0 and acc.miners == sap0 - sap_dust  # no ComPrice for the abandoned round
    assert acc.refunded == train0 - sum(amounts) + sap_dust + train1 + com1 + sap1
    assert acc.bonds_forfeited == 5 * 10**16 + P.min_bond
    assert acc.escrowed == 0 and acc.unaccounted == 0
    assert acc.clients + acc.server + acc.miners + acc.refunded == V
    assert format_line(acc) == (f"V={V} clients={acc.clients} server={acc.server} miners={acc.miners} "
                                f"refunded={acc.refunded} unaccounted=0")
    assert accounting.format_report(acc).splitlines()[-1] == format_line(acc)
    # the requester's credit holds its refund plus the forfeited bonds: bonds are not part of V
    assert fc.credits(a.requester.address) == acc.refunded + acc.bonds_forfeited


def test_claim_to_and_expired_payouts_are_accounted(env):
    w3, fc, a = env
    tid = new_task(fc, a, 1)
    play_round(w3, fc, a, tid, 0, [vec([0.5, 0.25, 0.25])] * 2, [10, 10])
    amounts = list(finalize(fc, a, tid, 0).event("RoundFinalized")["amounts"])
    sig = fc.as_account(a.clients[0]).sign_claim_to(tid, 0, a.outsider.address)
    fc.as_account(a.outsider).claim_to(tid, 0, a.clients[0].address, a.outsider.address, sig)
    w3.provider.make_request("evm_setNextBlockTimestamp", [fc.get_round(tid, 0).finalized_at + TEST_TASK["claim_window"] + 1])
    fc.as_account(a.outsider).reclaim_expired(tid, 0)
    acc = task_accounting(fc, tid)
    assert acc.ok, acc.mismatches
    assert acc.clients == amounts[0] == acc.clients_claimed and acc.clients_unclaimed == 0
    assert acc.clients_expired == sum(amounts[1:]) and acc.unaccounted == 0


def test_payout_table_lists_each_client_centre_and_amount(env):
    w3, fc, a = env
    tid = new_task(fc, a, 1)
    vs = [vec([0.5, 0.25, -0.1])] * 2
    play_round(w3, fc, a, tid, 0, vs, [10, 10])
    finalize(fc, a, tid, 0)
    claim_all(fc, a, tid, 0, only=[a.clients[1]])
    rows = payout_table(fc, tid)
    train, _, _ = posap.round_prices(V, 1, 0)
    assert [r.client for r in rows] == [c.address for c in a.clients]
    assert [r.centre for r in rows] == [0.5, 0.25, -0.1]
    assert [r.amount for r in rows] == [train * 2 // 3, train // 3, 0]
    assert [r.claimed for r in rows] == [False, True, False]
    assert [(r.n_k, r.check) for r in rows] == [(100, "ok")] * 3
    text = accounting.format_payout_table(rows, labels={a.clients[0].address: "T0"})
    assert "T0" in text and f"{train * 2 // 3}" in text and "0.500000" in text and "n_k" in text


def test_payout_table_shows_n_and_the_exclusion_of_a_data_cost_task(env):
    w3, fc, a = env
    tid = new_task(fc, a, 1, payment="data-cost")
    vs = [vec([0.5, 0.0, -0.1])] * 2
    play_round(w3, fc, a, tid, 0, vs, [10, 10], data_costs=[30, 70, 100], excluded=(1,))
    finalize(fc, a, tid, 0)
    rows = payout_table(fc, tid)
    train, _, _ = posap.round_prices(V, 1, 0)
    assert [(r.n_k, r.check) for r in rows] == [(30, "ok"), (70, "excluded"), (100, "ok")]
    # data-cost pays the harmful client 2 (c = -0.1) by its n; the excluded one nothing
    assert [r.amount for r in rows] == [train * 30 // 130, 0, train * 100 // 130]
    assert "excluded" in accounting.format_payout_table(rows)


def test_unaccepted_task_is_refunded_in_full(env):
    w3, fc, a = env
    tid = fc.as_account(a.requester).create_task(a.server.address, [a.clients[0].address], 1, V, accept_window=50,
                                                 **TEST_TASK).task_id
    advance(w3, 51)
    fc.as_account(a.outsider).refund_unaccepted(tid)
    acc = task_accounting(fc, tid)
    assert acc.status == "Refunded" and acc.refunded == V and acc.ok
    assert format_line(acc) == f"V={V} clients=0 server=0 miners=0 refunded={V} unaccounted=0"


def test_stalled_task_refunds_the_rest_after_a_settled_round(env):
    w3, fc, a = env
    tid = new_task(fc, a, 3)
    play_round(w3, fc, a, tid, 0, [vec([0.1, 0.2, 0.3])], [10])
    finalize(fc, a, tid, 0)
    w3.provider.make_request("evm_setNextBlockTimestamp", [fc.stalled_after(tid) + 1])
    rest = fc.as_account(a.outsider).refund_stalled(tid).event("TaskRefunded")["amount"]
    acc = task_accounting(fc, tid)
    train, com, sap = posap.round_prices(V, 3, 0)
    assert rest == V - train - com - sap
    assert acc.ok and acc.status == "Refunded" and acc.escrowed == 0
    assert acc.refunded == rest + (train - acc.clients) and acc.miners == sap and acc.server == com


def test_a_lost_event_shows_up_as_unaccounted_wei(env, monkeypatch):
    """Fault injection: hide one Credited event; the identity and the cross-checks must catch it."""
    w3, fc, a = env
    tid = new_task(fc, a, 1)
    play_round(w3, fc, a, tid, 0, [vec([0.1, 0.2, 0.3])], [10])
    finalize(fc, a, tid, 0)
    real = FedCoin.credited_events
    monkeypatch.setattr(FedCoin, "credited_events",
                        lambda self, *args, **kw: [e for e in real(self, *args, **kw) if e.args["reason"] != CreditReason.COM_PRICE])
    acc = task_accounting(fc, tid)
    _, com, _ = posap.round_prices(V, 1, 0)
    assert acc.unaccounted == com and not acc.ok
    assert any(m.startswith("server") for m in acc.mismatches)
    assert format_line(acc).endswith(f"unaccounted={com}")


def test_unknown_task_is_an_error(env):
    _, fc, _ = env
    with pytest.raises(Exception, match="does not exist"):
        task_accounting(fc, 999)


def test_accounting_is_frozen_and_unaccounted_is_derived():
    acc = accounting.Accounting(1, "Accepted", 1, 0, 0, V=10, clients=1, clients_claimed=0, clients_unclaimed=1,
                                server=2, miners=3, refunded=0, escrowed=3)
    assert acc.unaccounted == 1 and not acc.ok and not acc.finished
    with pytest.raises(dataclasses.FrozenInstanceError):
        acc.V = 11  # type: ignore[misc]
