"""fedcoin.protocol.commitment against contracts/lib/CommitmentHash.sol (through the test harness:
FedCoin keeps no hash helpers, for EIP-170 room) on random inputs (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fedcoin.protocol import commitment as cm
from fedcoin.protocol import fixedpoint as fp
from fedcoin_testkit import deploy_test_contract, dev_accounts, w3_for

values = st.lists(st.integers(-fp.MAX_ABS, fp.MAX_ABS), min_size=0, max_size=12)
addresses = st.sampled_from([a.address for a in dev_accounts()[:10]])
u256 = st.integers(0, 2**256 - 1)
b32 = st.binary(min_size=32, max_size=32)
CHECK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def h(anvil):
    return deploy_test_contract(w3_for(anvil), dev_accounts()[0], "FedCoinHarness")


@CHECK
@given(values, u256, st.integers(0, 2**32), addresses, st.integers(0, 2**64), b32)
def test_commitment_hash_matches_contract(h, vals, task, rnd, miner, iters, salt):
    mine = cm.commitment_hash(h.w3.eth.chain_id, h.address, task, rnd, miner, vals, iters, salt)
    assert mine == bytes(h.functions.commitmentHash(task, rnd, miner, vals, iters, salt).call())


@CHECK
@given(values)
def test_vector_hash_matches_contract(h, vals):
    assert cm.vector_hash(vals) == bytes(h.functions.vectorHash(vals).call())


@CHECK
@given(b32, addresses, u256, u256, b32)
def test_reveal_link_matches_contract(h, prev, miner, seq, iters, vh):
    assert cm.reveal_link(prev, miner, seq, iters, vh) == bytes(h.functions.revealLink(prev, miner, seq, iters, vh).call())


@CHECK
@given(u256, u256, addresses, addresses)
def test_claim_to_digest_matches_contract(h, task, rnd, client, to):
    assert cm.claim_to_digest(h.w3.eth.chain_id, h.address, task, rnd, client, to) == bytes(
        h.functions.claimToDigest(task, rnd, client, to).call())


def test_commitment_binds_every_field(h):
    base = dict(chain_id=h.w3.eth.chain_id, contract=h.address, task_id=1, round=0, miner=dev_accounts()[1].address,
                values=[1, 2, 3], iterations=5, salt=b"\x01" * 32)
    h = cm.commitment_hash(**base)
    for k, v in dict(chain_id=1, contract=dev_accounts()[2].address, task_id=2, round=1,
                     miner=dev_accounts()[3].address, values=[1, 2, 4], iterations=6, salt=b"\x02" * 32).items():
        assert cm.commitment_hash(**dict(base, **{k: v})) != h, k


def test_out_of_range_value_refused_before_hashing():
    with pytest.raises(fp.FixedPointRangeError):
        cm.commitment_hash(1, "0x" + "11" * 20, 1, 0, "0x" + "22" * 20, [fp.MAX_ABS + 1], 1, b"\x00" * 32)


def test_claim_to_signer_inverts_sign_claim_to_and_names_no_one_for_garbage():
    client, to, other = dev_accounts()[3], dev_accounts()[4].address, dev_accounts()[5].address
    contract = "0x" + "11" * 20
    sig = cm.sign_claim_to(client, 31337, contract, 2, 1, to)
    assert cm.claim_to_signer(31337, contract, 2, 1, client.address, to, sig) == client.address
    # the same signature over another recipient or round is someone else's (the contract reverts)
    assert cm.claim_to_signer(31337, contract, 2, 1, client.address, other, sig) != client.address
    assert cm.claim_to_signer(31337, contract, 2, 0, client.address, to, sig) != client.address
    assert cm.claim_to_signer(31337, contract, 2, 1, client.address, to, b"\x00" * 65) is None
