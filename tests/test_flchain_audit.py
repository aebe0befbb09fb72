"""The federation check of `fedcoin audit` on a real Anvil: a task whose requester names a
federation request must list exactly that request's Algorithm 1 allocation, recomputed from the
on-chain intentions and the reliabilities at the TrainersRequired block."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from fedcoin.chain import ContractRevert
from fedcoin.flchain.binding import FLChain, FLChainParams
from conftest import chain_env
from round_driver import new_task
from fedcoin_testkit import default_params

env = chain_env(n_clients=4, n_miners=2, params=default_params())

P = FLChainParams()


@pytest.fixture(scope="module")
def flc(env):
    w3, fc, a = env
    return FLChain.deploy(w3, a.requester, fedcoin=fc.address, auth=a.outsider.address, params=P)


def test_federation_check_recomputes_the_allocation_and_catches_a_padded_client_list(env, flc, anvil, capsys):
    """A requester who lists a trainer the allocation did not pick is caught by the audit's
    recomputation (fedcoin.flchain.audit) from on-chain intentions and reliabilities."""
    from fedcoin.flchain import audit as fl_audit
    from fedcoin_testkit import advance

    w3, fc, a = env
    for c in a.clients:
        flc.as_account(c).register(keccak(b"data"), "local:0x00")
    deadline = fc.latest_timestamp() + 50
    flc.as_account(a.requester).publish_request(keccak(b"desc"), "local:desc", 2, deadline)
    # profits RELY * (income - cost): clients 1 and 3 best, client 0 negative, client 2 small
    for c, (inc, cost) in zip(a.clients, [(1, 5), (9, 1), (3, 1), (8, 1)]):
        flc.as_account(c).post_intention(0, 100, inc, cost)
    advance(w3, 60)
    picked = sorted([a.clients[1], a.clients[3]], key=lambda x: int(x.address, 16))
    good = new_task(fc, a, clients=picked)
    with pytest.raises(ContractRevert, match="FLChainNotRequester"):
        flc.as_account(a.server).require_trainers(good, P.min_deposit, request_id=0)
    flc.as_account(a.requester).require_trainers(good, P.min_deposit, request_id=0)
    padded = new_task(fc, a, clients=sorted(picked + [a.clients[0]], key=lambda x: int(x.address, 16)))
    flc.as_account(a.requester).require_trainers(padded, P.min_deposit, request_id=0)
    checks = {c.task_id: c for c in fl_audit.check_all(flc, fc)}
    assert checks[good].ok and set(checks[good].allocated) == {c.address for c in picked}
    assert not checks[padded].ok and a.clients[0].address in str(checks[padded])
    # the same through `fedcoin audit`: it prints both and fails on the padded one
    from fedcoin.cli import main

    rc = main(["audit", "--rpc", anvil.url, "--contract", fc.address, "--flchain", flc.address])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert f"federation OK: task {good}:" in out and f"federation BROKEN: task {padded}:" in out


def test_require_trainers_refuses_a_request_still_taking_intentions(env, flc):
    w3, fc, a = env
    flc.as_account(a.requester).publish_request(keccak(b"desc"), "local:desc", 2, fc.latest_timestamp() + 500)
    tid = new_task(fc, a)
    with pytest.raises(ContractRevert, match="FLChainIntentionsOpen"):
        flc.as_account(a.requester).require_trainers(tid, P.min_deposit, request_id=0)
    with pytest.raises(ContractRevert, match="FLChainUnknownRequest"):
        flc.as_account(a.requester).require_trainers(tid, P.min_deposit, request_id=7)
    assert flc.required_deposit(tid) == 0
