// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PDistance, RevealData} from "../lib/PDistance.sol";
import {MerkleTree} from "../lib/MerkleTree.sol";
import {PoSapMath} from "../lib/PoSapMath.sol";
import {CommitmentHash} from "../lib/CommitmentHash.sol";

/// @title FedCoinHarness (test only): the libraries' internal functions made callable
/// @notice Lets tests diff fedcoin/protocol/posap.py, commitment.py and merkle.py against the
/// Solidity itself (FedCoin's own public helpers expose the rest: roundPrices, commitCap,
/// nextDifficulty, commitmentHash, vectorHash, revealLink, clientLeaf, payoutLeaf).
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

    /// @notice PoSapMath.splitTotals (posap.split_totals).
    function splitTotals(uint256 budget, uint256 trainBps, uint256 comBps)
        external
        pure
        returns (uint256, uint256, uint256)
    {
        return PoSapMath.splitTotals(budget, trainBps, comBps);
    }

    /// @notice Client amounts and refund from PoSapMath.positiveTotal and clientAmount, as
    /// FedCoin computes them (posap.client_payouts).
    function clientPayouts(uint256 train, int256[] memory mean)
        external
        pure
        returns (uint256[] memory amounts, uint256 refund)
    {
        amounts = new uint256[](mean.length);
        uint256 positive = PoSapMath.positiveTotal(mean);
        if (positive == 0) return (amounts, train);
        uint256 paid = 0;
        for (uint256 j; j < mean.length; ++j) {
            amounts[j] = PoSapMath.clientAmount(train, mean[j], positive);
            paid += amounts[j];
        }
        refund = train - paid;
    }

    /// @notice PoSapMath.relaxedDifficulty (posap.relaxed_difficulty).
    function relaxedDifficulty(uint256 d) external pure returns (uint256) {
        return PoSapMath.relaxedDifficulty(d);
    }

    /// @notice PoSapMath.recordHash (posap.record_hash).
    function recordHash(
        uint256 height,
        uint256 taskId,
        uint256 round,
        address winner,
        bytes32 meanHash,
        bytes32 winnerHash,
        bytes32 prevHash,
        uint256 difficulty,
        bytes32 payoutsRoot
    ) external pure returns (bytes32) {
        return PoSapMath.recordHash(
            height, taskId, round, winner, meanHash, winnerHash, prevHash, difficulty, payoutsRoot
        );
    }

    /// @notice CommitmentHash.registrationLink (commitment.registration_link).
    function registrationLink(bytes32 prev, address client) external pure returns (bytes32) {
        return CommitmentHash.registrationLink(prev, client);
    }

    /// @notice CommitmentHash.vectorHashMemory (commitment.vector_hash).
    function vectorHashMemory(int256[] memory values) external pure returns (bytes32) {
        return CommitmentHash.vectorHashMemory(values);
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
