"""FLChain on a real Anvil beside a real FedCoin: the registry and its deposits, a task that
requires trainers, misbehaviour reports and their payouts (Table IV), reliability, the
marketplace and its Merkle claims — each to the wei, with conservation in both contracts."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from fedcoin.chain import ContractRevert
from fedcoin.flchain import rules
from fedcoin.flchain.binding import FLChain, FLChainParams, ModelStatus, ReportState, TrainerStatus
from conftest import chain_env
from round_driver import Ledger, new_task, play_round
from fedcoin_testkit import ETH, default_params, vec

env = chain_env(n_clients=4, n_miners=2, params=default_params())

P = FLChainParams()
#: A round's spec as far as FLChain reads it: its keccak is published, and it excludes client 2.
SPEC = b'{"excluded":[{"client":"0x00","index":2,"reason":"non-finite"}],"x":1}'
S = [0.40, 0.10, 0.0, 0.20]


@pytest.fixture(scope="module")
def flc(env):
    w3, fc, a = env
    return FLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=a.outsider.address, params=P)


def _conserved(*contracts):
    for c in contracts:
        assert c.balance() == c.liabilities(), type(c).__name__


def test_invalid_update_report_end_to_end_on_chain(env, flc):
    w3, fc, a = env
    t = [flc.as_account(c) for c in a.clients]
    for c in t:
        c.register(keccak(b"data"), "local:0x00")
    tid = new_task(fc, a, rounds=1, value=ETH)
    flc.as_account(a.requester).require_trainers(tid, P.min_deposit)
    with pytest.raises(ContractRevert, match="FLChainNotJoined"):
        t[0].join(tid)  # the server puts its deposit at stake first
    flc.as_account(a.server).register(bytes(32), "")
    flc.as_account(a.server).join(tid)
    for c in t:
        c.join(tid)
    fc.as_account(a.server).accept_task(tid)
    play_round(w3, fc, a, tid, 0, [vec(S), vec(S)], [10, 10], excluded=(2,), spec_hash=keccak(SPEC))
    fc.as_account(a.outsider).finalize(tid, 0)
    detector = a.miners[0]
    before = flc.credits(detector.address)
    res = flc.as_account(detector).report_invalid_update(fc, SPEC, tid, 0, 2)
    rep = flc.get_report(0)
    assert rep.state == ReportState.UPHELD
    reward, each, rest = rules.confiscation(P.min_deposit, P.reward_bps, P.compensation_bps, 3)
    assert flc.credits(detector.address) - before == P.report_fee + reward
    assert flc.get_trainer(a.clients[2].address).status == TrainerStatus.SUSPENDED
    for j in (0, 1, 3):
        assert flc.credits(a.clients[j].address) == each
    assert flc.credits(a.requester.address) == rest
    _conserved(fc, flc)
    flc.record_round(fc, tid, 0)
    assert flc.get_trainer(a.clients[0].address).positive == 1
    fc.as_account(a.outsider)  # task completes after its last round
    assert fc.get_task(tid).status == 3
    m = flc.as_account(a.server).list_model(tid, 10**18 + 7, keccak(b"model"), "local:0xmodel")
    assert flc.model_status(0) == ModelStatus.PROBLEMATIC
    with pytest.raises(ContractRevert, match="FLChainNotForSale"):
        flc.as_account(a.outsider).buy(0)
    _conserved(fc, flc)
