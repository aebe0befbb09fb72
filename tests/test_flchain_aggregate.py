"""Report (b) of FLChain's Table III: a server whose round-t+1 global model is not FedAvg of round
t's included updates. The miners of round t+1 attest in the AggregateJury; once the round
finalizes, the revealed stake's majority is the verdict and ``reportAggregate`` confiscates the
server's deposit on it. Replayed here: the upheld report (to the wei), a lying minority that
cannot confiscate, an attester that never reveals and does not count, and every rejection."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from fedcoin.chain import ContractRevert
from fedcoin.flchain import rules
from fedcoin.flchain.binding import FLChain, FLChainParams, ModelStatus, ReportState, TrainerStatus
from conftest import chain_env
from round_driver import Ledger, new_task, play_round
from fedcoin_testkit import ETH, default_params, vec

env = chain_env(n_clients=4, n_miners=3, params=default_params())

P = FLChainParams()
S = [0.40, 0.10, 0.05, 0.20]


@pytest.fixture(scope="module")
def flc(env):
    w3, fc, a = env
    return FLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=a.outsider.address, params=P)


def _task(env, flc, server_joins=True):
    """A 2-round task of the 4 clients, all joined; the server joined first (unless told not to)."""
    w3, fc, a = env
    for who in [a.server, *a.clients]:
        if flc.get_trainer(who.address).status == TrainerStatus.NONE:
            flc.as_account(who).register(keccak(b"data"), "local:0x00", value=2 * P.min_deposit)
    tid = new_task(fc, a, rounds=2, value=ETH)
    flc.as_account(a.requester).require_trainers(tid, P.min_deposit)
    if server_joins:
        flc.as_account(a.server).join(tid)
        for c in a.clients:
            flc.as_account(c).join(tid)
    fc.as_account(a.server).accept_task(tid)
    return tid


def _round(env, tid, rnd, bonds=None, reveal_mask=None):
    w3, fc, a = env
    play_round(w3, fc, a, tid, rnd, [vec(S)] * 3, [10, 10, 10], bonds=bonds, reveal_mask=reveal_mask)


def test_majority_stake_attesting_wrong_confiscates_the_server_deposit_to_the_wei(env, flc, tmp_path):
    w3, fc, a = env
    tid = _task(env, flc)
    _round(env, tid, 0)
    fc.as_account(a.outsider).finalize(tid, 0)
    _round(env, tid, 1)
    jury = flc.jury()
    for m, wrong in zip(a.miners, (True, True, False)):
        jury.as_account(m).attest(tid, 1, wrong)
    with pytest.raises(ContractRevert, match="JuryAlreadyAttested"):
        jury.as_account(a.miners[0]).attest(tid, 1, False)
    with pytest.raises(ContractRevert, match="JuryNotCommitted"):
        jury.as_account(a.outsider).attest(tid, 1, True)
    with pytest.raises(ContractRevert, match="FLChainRoundNotFinalized"):
        flc.as_account(a.outsider).report_aggregate(fc, tid, 1)
    fc.as_account(a.outsider).finalize(tid, 1)
    with pytest.raises(ContractRevert, match="JuryRoundNotPublished"):
        jury.as_account(a.miners[2]).attest(tid, 1, True)
    wrong, wrong_stake, revealed = jury.verdict(tid, 1)
    assert wrong and 3 * wrong_stake == 2 * revealed
    detector = a.outsider
    L = Ledger(w3, [detector])
    d = flc.get_trainer(a.server.address).deposit
    credits = {x.address: flc.credits(x.address) for x in [detector, a.requester, *a.clients]}
    L.tx(detector, flc.as_account(detector).report_aggregate(fc, tid, 1), P.report_fee)
    assert flc.get_report(flc.report_count() - 1).state == ReportState.UPHELD
    reward, each, rest = rules.confiscation(d, P.reward_bps, P.compensation_bps, 4)
    got = {x.address: flc.credits(x.address) - credits[x.address] for x in [detector, a.requester, *a.clients]}
    assert got[detector.address] == P.report_fee + reward
    assert all(got[c.address] == each for c in a.clients)
    assert got[a.requester.address] == rest and reward + 4 * each + rest == d
    srv = flc.get_trainer(a.server.address)
    assert (srv.deposit, srv.status, srv.upheld) == (0, TrainerStatus.SUSPENDED, 1)
    assert flc.is_problematic(tid)
    L.tx(detector, flc.as_account(detector).withdraw())
    L.receive(detector, P.report_fee + reward)
    L.check()
    print(f"\nTable IV (b), d = {d} wei: reporter net +{reward} (+ gas), server -{d}, "
          f"each of 4 clients +{each}, requester +{rest}")
    assert flc.balance() == flc.liabilities() and fc.balance() == fc.liabilities()
    with pytest.raises(ContractRevert, match="FLChainAlreadyReported"):
        flc.as_account(a.miners[0]).report_aggregate(fc, tid, 1)
    # the task's model is problematic, on chain and in the query index
    from fedcoin.roles.flchain_index import FLChainIndex

    for r in (0, 1):
        flc.record_round(fc, tid, r)
    model = flc.as_account(a.server).list_model(tid, ETH, keccak(b"m"), "local:m").event("ModelListed")["modelId"]
    assert flc.model_status(model) == ModelStatus.PROBLEMATIC
    with FLChainIndex.for_flchain(flc, tmp_path / "idx.sqlite") as idx:
        idx.sync()
        assert idx.is_problematic(model) and not idx.is_for_sale(model)


def test_a_lying_minority_and_an_unrevealed_attester_cannot_confiscate(env, flc):
    """Two small-bond miners attest 'wrong' against an honest server; one of them never reveals.
    The revealed stake attesting 'wrong' is below half, so the report is rejected and the
    reporter's fee goes to the server."""
    w3, fc, a = env
    tid = _task(env, flc)
    _round(env, tid, 0)
    fc.as_account(a.outsider).finalize(tid, 0)
    mb = fc.min_bond()
    _round(env, tid, 1, bonds={0: mb, 1: mb, 2: 3 * mb}, reveal_mask=[True, False, True])
    jury = flc.jury()
    for m in a.miners[:2]:
        jury.as_account(m).attest(tid, 1, True)
    jury.as_account(a.miners[2]).attest(tid, 1, False)
    fc.as_account(a.outsider).finalize(tid, 1)
    assert jury.verdict(tid, 1) == (False, mb, 4 * mb)  # the unrevealed miner's bond is not counted
    before = flc.credits(a.server.address)
    flc.as_account(a.miners[0]).report_aggregate(fc, tid, 1)
    assert flc.get_report(flc.report_count() - 1).state == ReportState.REJECTED
    assert flc.credits(a.server.address) - before == P.report_fee
    assert flc.get_trainer(a.server.address).status == TrainerStatus.QUALIFIED
    assert not flc.is_problematic(tid)
    assert flc.balance() == flc.liabilities()


def test_no_trainer_joins_before_the_server_and_an_unbonded_server_cannot_be_reported(env, flc):
    w3, fc, a = env
    tid = _task(env, flc, server_joins=False)
    with pytest.raises(ContractRevert, match="FLChainNotJoined"):
        flc.as_account(a.clients[0]).join(tid)
    assert flc.joined_at(tid, a.clients[0].address) == 0
    with pytest.raises(ContractRevert, match="FLChainBadFee"):
        flc.as_account(a.outsider).report_aggregate(fc, tid, 0, value=1)
