"""A malicious client/miner contract re-enters claim and withdraw from its receive hook: the
guard stops the nested call, the outer call pays exactly once."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from fedcoin.chain import FedCoin
from fedcoin.protocol.merkle import client_tree
from conftest import chain_env
from fedcoin_testkit import (ETH, TEST_TASK, actors, advance, default_params, deploy_test_contract, revert,
                             send_contract_tx, snapshot, vec, w3_for)
from fedcoin.protocol import commitment
P = default_params()
A = actors(n_clients=2, n_miners=1)
GUARD = keccak(text="FedCoinReentrantCall()")[:4]


env = chain_env(n_clients=2, n_miners=1, params=P)


@pytest.fixture(scope="module")
def attacker(env):
    """A ReentrantActor aimed at the module's FedCoin (deployed before any test's snapshot)."""
    return deploy_test_contract(env.w3, A.outsider, "ReentrantActor", env.fc.address)


def run_round_with_attacker(w3, fc, attacker):
    """A task whose clients are [attacker, client0] and whose only miner is the attacker."""
    ev = fc.as_account(A.requester).create_task(A.server.address, [attacker.address, A.clients[0].address], 1, ETH,
                                                **TEST_TASK)
    tid = ev.task_id
    fc.as_account(A.server).accept_task(tid)
    clients = fc.task_clients(tid)
    me = fc.as_account(A.outsider)
    send_contract_tx(me, attacker.functions.register(tid, 0, b"\x01" * 32, 5,
                                                     client_tree(clients).proof(clients.index(attacker.address))))
    fc.as_account(A.clients[0]).register_update(tid, 0, b"\x02" * 32, "loc", 5)
    fc.as_account(A.server).publish_shapley_task(tid, 0, b"\x03" * 32, "s")
    values, salt = vec([0.6, 0.4]), b"\x07" * 32
    c = commitment.commitment_hash(fc.chain_id, fc.address, tid, 0, attacker.address, values, 10, salt)
    send_contract_tx(me, attacker.functions.commit(tid, 0, c), value=P.min_bond)
    advance(w3, 101)
    send_contract_tx(me, attacker.functions.reveal(tid, 0, values, 10, salt))
    advance(w3, 100)
    fc.as_account(A.requester).finalize(tid, 0)
    return tid


def test_reentrant_claim_is_blocked_and_pays_once(env, attacker):
    w3, fc, _ = env
    tid = run_round_with_attacker(w3, fc, attacker)
    amount, proof = fc.payout_proof(tid, 0, attacker.address)
    me = fc.as_account(A.outsider)
    send_contract_tx(me, attacker.functions.arm(1, tid, 0, amount, proof))
    before = w3.eth.get_balance(attacker.address)
    send_contract_tx(me, attacker.functions.claim(tid, 0, amount, proof))
    assert attacker.functions.reentries().call() == 1
    assert attacker.functions.reentryFailed().call() is True
    assert bytes(attacker.functions.reentryRevertData().call())[:4] == GUARD
    assert w3.eth.get_balance(attacker.address) - before == amount  # paid exactly once
    assert fc.is_claimed(tid, 0, attacker.address)
    assert fc.balance() == fc.liabilities()


def test_reentrant_withdraw_is_blocked_and_pays_once(env, attacker):
    w3, fc, _ = env
    run_round_with_attacker(w3, fc, attacker)
    credit = fc.credits(attacker.address)
    assert credit > P.min_bond  # returned bond + SapPrice (the attacker qualified)
    me = fc.as_account(A.outsider)
    send_contract_tx(me, attacker.functions.arm(2, 0, 0, 0, []))
    before = w3.eth.get_balance(attacker.address)
    send_contract_tx(me, attacker.functions.withdraw())
    assert attacker.functions.reentryFailed().call() is True
    assert bytes(attacker.functions.reentryRevertData().call())[:4] == GUARD
    assert w3.eth.get_balance(attacker.address) - before == credit
    assert fc.credits(attacker.address) == 0
    assert fc.balance() == fc.liabilities()


def test_reentering_withdraw_from_claim_is_blocked(env, attacker):
    """Cross-function: re-entering withdraw (with credit available) during claim fails."""
    w3, fc, _ = env
    tid = run_round_with_attacker(w3, fc, attacker)
    credit = fc.credits(attacker.address)
    amount, proof = fc.payout_proof(tid, 0, attacker.address)
    me = fc.as_account(A.outsider)
    send_contract_tx(me, attacker.functions.arm(2, 0, 0, 0, []))
    before = w3.eth.get_balance(attacker.address)
    send_contract_tx(me, attacker.functions.claim(tid, 0, amount, proof))
    assert bytes(attacker.functions.reentryRevertData().call())[:4] == GUARD
    assert w3.eth.get_balance(attacker.address) - before == amount
    assert fc.credits(attacker.address) == credit
