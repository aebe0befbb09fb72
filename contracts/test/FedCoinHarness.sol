// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {PDistance, RevealData} from "../lib/PDistance.sol";
import {MerkleTree} from "../lib/MerkleTree.sol";
import {PoSapMath} from "../lib/PoSapMath.sol";
import {CommitmentHash} from "../lib/CommitmentHash.sol";

/// @title FedCoinHarness (test only): the libraries' internal functions made callable
/// @notice Lets tests diff fedcoin/protocol/posap.py, commitment.py and merkle.py against the
/// Solidity itself (FedCoin's own public helpers expose the rest: roundPrices, commitCap,
/// stalledAfter). Not shipped in fedcoin/artifacts/.
contract FedCoinHarness {
    /// @notice PDistance.checkCentre over `reveals` weighted by `weights`.
    function checkCentre(RevealData[] calldata reveals, uint256[] memory weights, int256[] calldata centre)
        external
        pure
        returns (bool, uint256)
    {
        uint256 total;
        for (uint256 i; i < weights.length; ++i) total += weights[i];
        return PDistance.checkCentre(reveals, weights, total, centre);
    }

    /// @notice PDistance.distance of `s` from `centre`.
    function distance(int256[] calldata s, int256[] calldata centre, uint8 p) external pure returns (uint256) {
        return PDistance.distance(s, centre, p);
    }

    /// @notice PDistance.threshold and slashThreshold.
    function thresholds(int256[] calldata centre, uint256 d, uint8 p, bool relative)
        external
        pure
        returns (uint256 thr, uint256 slash)
    {
        thr = PDistance.threshold(centre, d, p, relative);
        slash = PDistance.slashThreshold(thr, p);
    }

    /// @notice PoSapMath.splitTotals (posap.split_totals).
    function splitTotals(uint256 budget, uint256 trainBps, uint256 comBps)
        external
        pure
        returns (uint256, uint256, uint256)
    {
        return PoSapMath.splitTotals(budget, trainBps, comBps);
    }

    /// @notice Client amounts and refund under a payment rule, from PoSapMath.payoutWeight as
    /// PoSapJudge.payouts computes them (posap.client_payouts).
    function clientPayouts(
        uint256 train,
        uint8 payment,
        int256[] calldata centre,
        uint256[] calldata dataCosts,
        bool[] calldata excluded
    ) external pure returns (uint256[] memory amounts, uint256 refund) {
        amounts = new uint256[](centre.length);
        uint256 total = 0;
        for (uint256 j; j < centre.length; ++j) {
            amounts[j] = PoSapMath.payoutWeight(payment, centre[j], dataCosts[j], excluded[j]);
            total += amounts[j];
        }
        if (total == 0) return (new uint256[](centre.length), train);
        refund = train;
        for (uint256 j; j < centre.length; ++j) {
            amounts[j] = train * amounts[j] / total;
            refund -= amounts[j];
        }
    }

    /// @notice SapPrice shares of the qualifying bonds and the dust (posap.sap_rewards).
    function sapRewards(uint256 sap, uint256[] calldata qualifyingBonds)
        external
        pure
        returns (uint256[] memory rewards, uint256 dust)
    {
        uint256 q;
        for (uint256 i; i < qualifyingBonds.length; ++i) q += qualifyingBonds[i];
        rewards = new uint256[](qualifyingBonds.length);
        uint256 paid;
        for (uint256 i; i < qualifyingBonds.length; ++i) {
            rewards[i] = PoSapMath.sapShare(sap, qualifyingBonds[i], q);
            paid += rewards[i];
        }
        dust = sap - paid;
    }

    /// @notice PoSapMath.relaxedDifficulty (posap.relaxed_difficulty).
    function relaxedDifficulty(uint256 d, bool relative) external pure returns (uint256) {
        return PoSapMath.relaxedDifficulty(d, PoSapMath.difficultyCeiling(relative));
    }

    /// @notice PoSapMath.nextDifficulty (posap.next_difficulty).
    function nextDifficulty(uint256 d, uint256 elapsed, uint256 target, bool relative) external pure returns (uint256) {
        return PoSapMath.nextDifficulty(d, elapsed, target, PoSapMath.difficultyCeiling(relative));
    }

    /// @notice PoSapMath.stalledAfter (posap.stalled_after).
    function stalledAfter(uint256 start, uint256 reg, uint256 commitW, uint256 revealW) external pure returns (uint256) {
        return PoSapMath.stalledAfter(start, reg, commitW, revealW);
    }

    /// @notice PoSapMath.recordHash (posap.record_hash).
    function recordHash(
        uint256 height,
        uint256 taskId,
        uint256 round,
        address winner,
        bytes32 centreHash,
        bytes32 winnerHash,
        bytes32 prevHash,
        uint256 difficulty,
        bytes32 payoutsRoot,
        uint8 payment
    ) external pure returns (bytes32) {
        return PoSapMath.recordHash(
            height, taskId, round, winner, centreHash, winnerHash, prevHash, difficulty, payoutsRoot, payment
        );
    }

    /// @notice CommitmentHash.registrationLink (commitment.registration_link).
    function registrationLink(bytes32 prev, address client, uint256 dataCost) external pure returns (bytes32) {
        return CommitmentHash.registrationLink(prev, client, dataCost);
    }

    /// @notice CommitmentHash.vectorHash (commitment.vector_hash).
    function vectorHash(int256[] calldata values) external pure returns (bytes32) {
        return CommitmentHash.vectorHash(values);
    }

    /// @notice CommitmentHash.revealLink (commitment.reveal_link).
    function revealLink(bytes32 prev, address miner, uint256 seq, uint256 iterations, bytes32 vHash)
        external
        pure
        returns (bytes32)
    {
        return CommitmentHash.revealLink(prev, miner, seq, iterations, vHash);
    }

    /// @notice CommitmentHash.commitmentHash (commitment.commitment_hash); `address(this)` is the
    /// harness here, so the Python side hashes with the harness's address.
    function commitmentHash(
        uint256 taskId,
        uint256 round,
        address miner,
        int256[] calldata values,
        uint256 iterations,
        bytes32 salt
    ) external view returns (bytes32) {
        return CommitmentHash.commitmentHash(taskId, round, miner, values, iterations, salt);
    }

    /// @notice CommitmentHash.claimToDigest (commitment.claim_to_digest), with the harness's address.
    function claimToDigest(uint256 taskId, uint256 round, address client, address to) external view returns (bytes32) {
        return CommitmentHash.claimToDigest(taskId, round, client, to);
    }

    /// @notice CommitmentHash.recover (the claimTo signature check).
    function recover(bytes32 digest, bytes calldata signature) external pure returns (address) {
        return CommitmentHash.recover(digest, signature);
    }

    /// @notice MerkleTree.clientLeaf and payoutLeaf (merkle.client_leaf, merkle.payout_leaf).
    function leaves(address client, uint256 taskId, uint256 round, uint256 amount)
        external
        pure
        returns (bytes32 clientLeaf, bytes32 payoutLeaf)
    {
        return (MerkleTree.clientLeaf(client), MerkleTree.payoutLeaf(taskId, round, client, amount));
    }

    /// @notice MerkleTree.rootInPlace of `leaves_`.
    function merkleRoot(bytes32[] memory leaves_) external pure returns (bytes32) {
        return MerkleTree.rootInPlace(leaves_);
    }

    /// @notice MerkleTree.verify.
    function merkleVerify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleTree.verify(proof, root, leaf);
    }
}
