// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MerkleTree: build and verify the sorted-pair keccak trees FedCoin stores roots of
/// @notice Mirrored byte for byte by `fedcoin/protocol/merkle.py` (`hash_pair`, `verify`,
/// `merkle_root`, `client_leaf`, `payout_leaf`).
/// Tree shape: leaves in the given order; each level hashes neighbours (2i, 2i+1) with
/// {hashPair}; an odd last node is promoted to the next level unchanged. The root of one leaf
/// is the leaf; the root of no leaves is bytes32(0).
/// @dev WARNING (second preimage): an inner node is keccak256 of 64 bytes, so a leaf must never
/// be the hash of 64 bytes chosen by an attacker, or an inner node could be passed off as a
/// leaf. FedCoin's leaves are double hashed — keccak256(bytes.concat(keccak256(abi.encode(..))))
/// — whose outer preimage is 32 bytes, never 64.
library MerkleTree {
    /// @notice keccak256 of the two nodes in ascending order (commutative, so proofs need no
    /// left/right flags).
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32 h) {
        (bytes32 lo, bytes32 hi) = a < b ? (a, b) : (b, a);
        assembly ("memory-safe") {
            mstore(0x00, lo)
            mstore(0x20, hi)
            h := keccak256(0x00, 0x40)
        }
    }

    /// @notice Whether `leaf` is in the tree with `root`, given its sibling path `proof`
    /// (bottom up; promoted levels contribute no sibling).
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) internal pure returns (bool) {
        bytes32 h = leaf;
        for (uint256 i; i < proof.length; ++i) {
            h = hashPair(h, proof[i]);
        }
        return h == root;
    }

    /// @notice The client-list leaf of `client`: keccak256(bytes.concat(keccak256(abi.encode(client)))).
    function clientLeaf(address client) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(client))));
    }

    /// @notice The payout leaf of (taskId, round, client, amount):
    /// keccak256(bytes.concat(keccak256(abi.encode(taskId, round, client, amount)))).
    function payoutLeaf(uint256 taskId, uint256 round, address client, uint256 amount)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(taskId, round, client, amount))));
    }

    /// @notice The root of `leaves`. WARNING: overwrites `leaves` (the array is the scratch).
    function rootInPlace(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 0) return bytes32(0);
        while (n > 1) {
            uint256 half = n / 2;
            for (uint256 i; i < half; ++i) {
                leaves[i] = hashPair(leaves[2 * i], leaves[2 * i + 1]);
            }
            if (n % 2 == 1) leaves[half] = leaves[n - 1];
            n = half + (n % 2);
        }
        return leaves[0];
    }
}
