// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PDistance, RevealData} from "../lib/PDistance.sol";
import {MerkleTree} from "../lib/MerkleTree.sol";

/// @title FedCoinHarness (test only): the libraries' internal functions made callable
/// @notice Lets tests diff fedcoin/posap.py and fedcoin/merkle.py against the Solidity itself.
/// Not shipped in fedcoin/artifacts/.
contract FedCoinHarness {
    /// @notice PDistance.weightedMean over `reveals`.
    function weightedMean(RevealData[] calldata reveals, uint256 k, uint256 cap) external pure returns (int256[] memory) {
        return PDistance.weightedMean(reveals, k, cap);
    }

    /// @notice PDistance.distance of `s` from `mean`.
    function distance(int256[] calldata s, int256[] calldata mean, uint8 p) external pure returns (uint256) {
        return PDistance.distance(s, mean, p);
    }

    /// @notice PDistance.qualifies.
    function qualifies(uint256 dist, uint256 d, uint8 p) external pure returns (bool) {
        return PDistance.qualifies(dist, d, p);
    }

    /// @notice MerkleTree.rootInPlace of `leaves`.
    function merkleRoot(bytes32[] memory leaves) external pure returns (bytes32) {
        return MerkleTree.rootInPlace(leaves);
    }

    /// @notice MerkleTree.verify.
    function merkleVerify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleTree.verify(proof, root, leaf);
    }
}
