// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title CommitmentHash: the hashes that bind miners and clients to what they sent
/// @notice Mirrored byte for byte by `fedcoin/protocol/commitment.py` (`commitment_hash`,
/// `vector_hash`, `reveal_link`, `registration_link`, `claim_to_digest`).
/// @dev Internal functions only, inlined into FedCoin: `address(this)` in {commitmentHash} is
/// therefore the FedCoin contract itself.
library CommitmentHash {
    /// @notice The commitment a miner submits: keccak256(abi.encode(chainid, address(this),
    /// taskId, round, miner, values, iterations, salt)).
    /// @dev Binding the chain, the contract and the miner's address stops replaying a
    /// commitment on another deployment and copying another miner's commitment.
    function commitmentHash(
        uint256 taskId,
        uint256 round,
        address miner,
        int256[] calldata values,
        uint256 iterations,
        bytes32 salt
    ) internal view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), taskId, round, miner, values, iterations, salt));
    }

    /// @notice keccak256 of the vector's 32-byte words concatenated (= abi.encodePacked(values)).
    function vectorHash(int256[] calldata values) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let len := mul(values.length, 0x20)
            calldatacopy(ptr, values.offset, len)
            h := keccak256(ptr, len)
        }
    }

    /// @notice One link of a round attempt's rolling reveal hash:
    /// keccak256(abi.encode(prev, miner, seq, iterations, vHash)); the chain starts at zero.
    function revealLink(bytes32 prev, address miner, uint256 seq, uint256 iterations, bytes32 vHash)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(prev, miner, seq, iterations, vHash));
    }

    /// @notice One link of a round's rolling registration hash: keccak256(abi.encodePacked(prev,
    /// client, dataCost)) (32 + 20 + 32 bytes); the chain starts at zero. Binding n_k here lets
    /// finalize take the data costs as calldata for the data-cost payment rules.
    function registrationLink(bytes32 prev, address client, uint256 dataCost) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(prev, client, dataCost));
    }

    /// @notice The EIP-191 digest a client signs to name where its payout goes:
    /// keccak256("\x19Ethereum Signed Message:\n32" ++ keccak256(abi.encode("FedCoin claimTo",
    /// chainid, address(this), taskId, round, client, to))) — what `eth_sign`/`personal_sign` of
    /// the 32-byte inner hash produces (eth_account's `encode_defunct(primitive=inner)`).
    /// @dev Binding chain id and contract stops replay on another deployment; binding task, round
    /// and client makes each signature good for exactly one payout leaf.
    function claimToDigest(uint256 taskId, uint256 round, address client, address to) internal view returns (bytes32) {
        bytes32 inner = keccak256(abi.encode("FedCoin claimTo", block.chainid, address(this), taskId, round, client, to));
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", inner));
    }

    /// @notice The signer of `digest` from a 65-byte (r, s, v) signature, or address(0) when the
    /// signature is malformed, has v not in {27, 28} or a high s (EIP-2 malleability).
    function recover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        // secp256k1n / 2: a larger s is the malleable twin of a valid signature.
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return address(0);
        if (v != 27 && v != 28) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
