"""The ABI and bytecode shipped in fedcoin/artifacts/ equal a fresh compile of contracts/;
test-only contracts are not shipped."""

from __future__ import annotations

from fedcoin.chain.artifact import ARTIFACTS_DIR, load_artifact
from fedcoin.dev.build import SHIPPED_CONTRACTS
from fedcoin_testkit import compiled


def test_shipped_artifacts_match_a_fresh_compile():
    fresh = compiled()
    for name in SHIPPED_CONTRACTS:
        shipped = load_artifact(name)
        assert shipped["abi"] == fresh[name]["abi"], f"{name} ABI drifted: run `make artifacts`"
        assert shipped["bytecode"] == fresh[name]["bytecode"], f"{name} bytecode drifted: run `make artifacts`"
        assert shipped["deployedBytecode"] == fresh[name]["deployedBytecode"]


def test_only_shipped_contracts_are_in_the_package():
    assert sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json")) == sorted(SHIPPED_CONTRACTS)
    assert "ReentrantActor" in compiled() and "FedCoinHarness" in compiled()


def test_runtime_fits_the_eip170_limit():
    assert len(bytes.fromhex(load_artifact("FedCoin")["deployedBytecode"][2:])) <= 24_576
