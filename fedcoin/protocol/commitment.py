"""The PoSap commitment and the other hashes the contract recomputes.

Each function mirrors one Solidity expression in ``contracts/FedCoin.sol`` byte for byte:

* :func:`commitment_hash` — ``FedCoin.commitmentHash``:
  ``keccak256(abi.encode(chainid, contract, taskId, round, miner, int256[] S, iterations, salt))``.
  Binding chain id, contract and miner stops replay on another chain/contract and copying
  another miner's commitment.
* :func:`vector_hash` — ``FedCoin.vectorHash``: keccak256 of the 32-byte big-endian two's
  complement words of S concatenated (= ``abi.encodePacked(int256[])``).
* :func:`reveal_link` — ``FedCoin.revealLink``: one link of the rolling reveal hash that
  ``finalize`` checks its calldata against.
* :func:`registration_link` — the rolling registration hash
  ``keccak256(abi.encodePacked(prev, client))`` (32 + 20 bytes).
* :func:`claim_to_digest` — ``CommitmentHash.claimToDigest``: the EIP-191 personal-message
  digest a client signs so that anyone may submit its ``claimTo`` (:func:`sign_claim_to`).
"""

from __future__ import annotations

import secrets
from typing import Iterable, Sequence

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_canonical_address

from fedcoin.protocol.fixedpoint import check_vector

from fedcoin.protocol.constants import ZERO_HASH


def _b32(x: bytes | str) -> bytes:
    if isinstance(x, str):
        x = bytes.fromhex(x[2:] if x.startswith("0x") else x)
    if len(x) != 32:
        raise ValueError(f"expected 32 bytes, got {len(x)}")
    return bytes(x)


def new_salt() -> bytes:
    """32 random bytes from the OS CSPRNG (keep it secret until the reveal)."""
    return secrets.token_bytes(32)


def commitment_hash(
    chain_id: int,
    contract: str,
    task_id: int,
    round: int,
    miner: str,
    values: Sequence[int],
    iterations: int,
    salt: bytes | str,
) -> bytes:
    """The commitment a miner submits to ``FedCoin.commit`` (32 bytes).

    Args:
        chain_id: ``block.chainid``.
        contract: the FedCoin contract address.
        task_id, round: the round being mined.
        miner: the committing account (``msg.sender`` of the later reveal).
        values: S as fixed-point ints (see :mod:`fedcoin.protocol.fixedpoint`), registration order.
        iterations: the sample count to be revealed.
        salt: 32 secret bytes.
    """
    vals = check_vector(values)
    return keccak(
        abi_encode(
            ["uint256", "address", "uint256", "uint256", "address", "int256[]", "uint256", "bytes32"],
            [chain_id, contract, task_id, round, miner, vals, int(iterations), _b32(salt)],
        )
    )


def vector_hash(values: Iterable[int]) -> bytes:
    """keccak256 of the vector's int256 words concatenated (``FedCoin.vectorHash``)."""
    return keccak(b"".join(int(v).to_bytes(32, "big", signed=True) for v in values))


def reveal_link(prev: bytes, miner: str, seq: int, iterations: int, vhash: bytes) -> bytes:
    """``keccak256(abi.encode(prev, miner, seq, iterations, vectorHash))`` (``FedCoin.revealLink``)."""
    return keccak(
        abi_encode(["bytes32", "address", "uint256", "uint256", "bytes32"], [_b32(prev), miner, seq, iterations, _b32(vhash)])
    )


def reveal_accumulator(reveals: Iterable[tuple[str, int, int, Sequence[int]]]) -> bytes:
    """The rolling reveal hash after ``reveals`` = [(miner, seq, iterations, values), ...]."""
    acc = ZERO_HASH
    for miner, seq, iterations, values in reveals:
        acc = reveal_link(acc, miner, seq, iterations, vector_hash(values))
    return acc


def registration_link(prev: bytes, client: str, data_cost: int) -> bytes:
    """``keccak256(abi.encodePacked(prev, client, dataCost))``: one link of the registration hash."""
    return keccak(_b32(prev) + to_canonical_address(client) + int(data_cost).to_bytes(32, "big"))


def registration_accumulator(registrations: Iterable[tuple[str, int]]) -> bytes:
    """The rolling registration hash of ``[(client, n_k), ...]`` in registration order."""
    acc = ZERO_HASH
    for c, n in registrations:
        acc = registration_link(acc, c, n)
    return acc


#: The domain tag inside the claimTo message (``"FedCoin claimTo"``, ABI-encoded as a string).
CLAIM_TO_TAG = "FedCoin claimTo"


def claim_to_inner(chain_id: int, contract: str, task_id: int, round: int, client: str, to: str) -> bytes:
    """``keccak256(abi.encode("FedCoin claimTo", chainid, contract, taskId, round, client, to))``:
    the 32 bytes the client signs as an EIP-191 personal message."""
    return keccak(abi_encode(["string", "uint256", "address", "uint256", "uint256", "address", "address"],
                             [CLAIM_TO_TAG, chain_id, contract, task_id, round, client, to]))


def claim_to_digest(chain_id: int, contract: str, task_id: int, round: int, client: str, to: str) -> bytes:
    """``CommitmentHash.claimToDigest``: ``keccak256("\\x19Ethereum Signed Message:\\n32" ++ inner)``."""
    inner = claim_to_inner(chain_id, contract, task_id, round, client, to)
    return keccak(b"\x19Ethereum Signed Message:\n32" + inner)


def sign_claim_to(account, chain_id: int, contract: str, task_id: int, round: int, to: str) -> bytes:
    """The client ``account`` (an eth_account ``LocalAccount``) signs that its payout of
    (task, round) goes to ``to``: 65 bytes (r, s, v), what ``FedCoin.claimTo`` checks."""
    from eth_account.messages import encode_defunct

    inner = claim_to_inner(chain_id, contract, task_id, round, account.address, to)
    return bytes(account.sign_message(encode_defunct(primitive=inner)).signature)


def claim_to_signer(chain_id: int, contract: str, task_id: int, round: int, client: str, to: str,
                    signature: bytes) -> str | None:
    """Who signed ``signature`` over ``client``'s claimTo message for (task, round, to), the
    inverse of :func:`sign_claim_to` (what ``FedCoin.claimTo`` compares with ``client``); None
    for a malformed signature."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    inner = claim_to_inner(chain_id, contract, task_id, round, client, to)
    try:
        return Account.recover_message(encode_defunct(primitive=inner), signature=signature)
    except Exception:  # noqa: BLE001 - any malformed (r, s, v) recovers no one
        return None
