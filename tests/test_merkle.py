"""fedcoin.protocol.merkle against contracts/lib/MerkleTree.sol (through the test harness), leaves
included, on random trees (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fedcoin.protocol import merkle
from fedcoin.chain import FedCoin
from conftest import chain_env
from fedcoin_testkit import default_params, deploy_test_contract, dev_accounts, w3_for

CHECK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
leaves = st.lists(st.binary(min_size=32, max_size=32), min_size=0, max_size=40)


env = chain_env()


@pytest.fixture(scope="module")
def h(env):
    """The FedCoinHarness: the libraries' internal functions exposed as views."""
    return deploy_test_contract(env.w3, dev_accounts()[0], "FedCoinHarness")


@CHECK
@given(leaves)
def test_root_matches_solidity(h, ls):
    assert merkle.merkle_root(ls) == bytes(h.functions.merkleRoot(ls).call())


@CHECK
@given(leaves.filter(bool), st.data())
def test_every_proof_verifies_on_chain_and_off(h, ls, data):
    t = merkle.MerkleTree(ls)
    i = data.draw(st.integers(0, len(ls) - 1))
    proof = t.proof(i)
    assert merkle.verify(proof, t.root, ls[i])
    assert h.functions.merkleVerify(proof, t.root, ls[i]).call() is True
    wrong = bytes([ls[i][0] ^ 1]) + ls[i][1:]
    assert merkle.verify(proof, t.root, wrong) == h.functions.merkleVerify(proof, t.root, wrong).call()


@CHECK
@given(st.integers(0, 2**64), st.integers(0, 2**32), st.sampled_from([a.address for a in dev_accounts()[:8]]),
       st.integers(0, 2**200))
def test_leaves_match_contract(h, task, rnd, client, amount):
    client_leaf, payout_leaf = h.functions.leaves(client, task, rnd, amount).call()
    assert merkle.payout_leaf(task, rnd, client, amount) == bytes(payout_leaf)
    assert merkle.client_leaf(client) == bytes(client_leaf)


def test_shape_edge_cases():
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    assert merkle.merkle_root([]) == b"\x00" * 32
    assert merkle.merkle_root([a]) == a and merkle.MerkleTree([a]).proof(0) == []
    assert merkle.merkle_root([a, b, c]) == merkle.hash_pair(merkle.hash_pair(a, b), c)  # c promoted
    assert merkle.MerkleTree([a, b, c]).proof(2) == [merkle.hash_pair(a, b)]


def test_inner_node_is_not_a_valid_leaf():
    """Leaves are double hashed: an inner node (a 64-byte preimage) never equals a leaf."""
    clients = [a.address for a in dev_accounts()[2:6]]
    t = merkle.payout_tree(1, 0, clients, [10, 20, 30, 40])
    inner = t.levels[1][0]
    # presenting the inner node as a leaf with the shortened proof verifies in a naive tree...
    assert merkle.verify(t.proof(0)[1:], t.root, inner)
    # ...but no (client, amount) hashes to it, since payout_leaf's outer preimage is 32 bytes
    assert all(merkle.payout_leaf(1, 0, c, int.from_bytes(inner, "big")) != inner for c in clients)
