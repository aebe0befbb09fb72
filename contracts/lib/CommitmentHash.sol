// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title CommitmentHash: the hashes that bind miners and clients to what they sent
/// @notice Mirrored byte for byte by `fedcoin/protocol/commitment.py` (`commitment_hash`,
/// `vector_hash`, `reveal_link`, `registration_link`).
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

    /// @notice {vectorHash} of a vector held in memory (the consensus mean).
    function vectorHashMemory(int256[] memory values) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(values));
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
    /// client)) (32 + 20 bytes); the chain starts at zero.
    function registrationLink(bytes32 prev, address client) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(prev, client));
    }
}
