// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CommitmentHash} from "./lib/CommitmentHash.sol";
import {MerkleTree} from "./lib/MerkleTree.sol";
import {PDistance, RevealData, Rule, Verdicts} from "./lib/PDistance.sol";
import {PoSapMath} from "./lib/PoSapMath.sol";

/// @notice The round-level inputs of {PoSapJudge-payouts}: which round, the task's payment rule
/// ({PoSapMath-PAY_SHAPLEY} …) and the round's TrainPrice.
struct Payout {
    uint256 taskId;
    uint256 round;
    uint8 payment;
    uint256 train;
}

/// @title PoSapJudge: FedCoin's stateless verifier of a round's centre, distances, registrations and payouts
/// @notice Pure functions only; holds no money and no state. FedCoin's constructor creates its
/// own PoSapJudge (`FedCoin.judge`, an immutable) and calls it with STATICCALL from finalize, so
/// the money stays in one contract while FedCoin's runtime code stays under EIP-170's 24,576
/// bytes. Mirrored by fedcoin/protocol/posap.py (`check_centre`, `judge`, `client_payouts`).
/// @dev Verdict codes are FedCoin.Verdict's: 0 Qualified, 1 Returned, 2 Slashed.
contract PoSapJudge {
    uint8 internal constant QUALIFIED = 0;
    uint8 internal constant RETURNED = 1;
    uint8 internal constant SLASHED = 2;

    /// @notice Verifies that `centre` is the stake-weighted lower median of `reveals` (weights
    /// `bonds`) and judges each reveal against it under `rule`: Qualified when its p-distance is within D
    /// (absolute, or relative to ||centre||_p), Returned within SLASH_MULTIPLE * D, else Slashed.
    /// @return v ok: whether the centre is the lower median; bad: the first coordinate where it
    /// is not (0 when ok); dists: each reveal's distance ({PDistance-distance} units); codes: verdicts.
    function judge(
        RevealData[] calldata reveals,
        uint256[] calldata bonds,
        int256[] calldata centre,
        Rule calldata rule
    ) external pure returns (Verdicts memory v) {
        (v.ok, v.bad) = _checkCentre(reveals, bonds, centre);
        if (!v.ok) return v;
        (v.dists, v.codes) = _verdicts(reveals, centre, rule.difficulty, rule.p, rule.relative);
    }

    function _checkCentre(RevealData[] calldata reveals, uint256[] calldata bonds, int256[] calldata centre)
        private
        pure
        returns (bool, uint256)
    {
        uint256[] memory w = bonds;
        uint256 total = 0;
        for (uint256 i; i < w.length; ++i) total += w[i];
        return PDistance.checkCentre(reveals, w, total, centre);
    }

    function _verdicts(RevealData[] calldata reveals, int256[] calldata centre, uint256 d, uint8 p, bool relative)
        private
        pure
        returns (uint256[] memory dists, uint8[] memory verdicts)
    {
        uint256 m = reveals.length;
        dists = new uint256[](m);
        verdicts = new uint8[](m);
        uint256 thr = PDistance.threshold(centre, d, p, relative);
        uint256 slashThr = PDistance.slashThreshold(thr, p);
        for (uint256 i; i < m; ++i) {
            uint256 dist = PDistance.distance(reveals[i].values, centre, p);
            dists[i] = dist;
            verdicts[i] = dist <= thr ? QUALIFIED : dist <= slashThr ? RETURNED : SLASHED;
        }
    }

    /// @notice Client amounts under the task's payment rule, their sum and the payout Merkle root
    /// (zero when nobody is paid). Each client k has a weight w_k and gets train * w_k / sum(w)
    /// (floor; {PoSapMath-payoutWeight}): `shapley` w_k = max(c_k, 0); `data-cost` w_k = n_k unless
    /// k is excluded (bit k of `excludedWords`); `data-cost-gated` w_k = n_k where c_k > 0, else 0.
    /// Excluded clients carry 0 in every reveal, hence in the centre, so no rule pays them.
    /// @param clients the round's registered clients, @param dataCosts their n_k, in registration order.
    /// @param excludedWords the round's exclusion bitmap, 256 registration indices per word.
    function payouts(
        Payout calldata pay,
        address[] calldata clients,
        uint256[] calldata dataCosts,
        uint256[] calldata excludedWords,
        int256[] calldata centre
    ) external pure returns (uint256[] memory amounts, uint256 paid, bytes32 root) {
        uint256 total;
        (amounts, total) = _weights(pay.payment, dataCosts, excludedWords, centre);
        if (total == 0) return (new uint256[](clients.length), 0, bytes32(0));
        for (uint256 j; j < amounts.length; ++j) {
            amounts[j] = pay.train * amounts[j] / total; // weight -> amount, in place
            paid += amounts[j];
        }
        root = _payoutRoot(pay.taskId, pay.round, clients, amounts);
    }

    function _payoutRoot(uint256 taskId, uint256 round, address[] calldata clients, uint256[] memory amounts)
        private
        pure
        returns (bytes32)
    {
        bytes32[] memory leaves = new bytes32[](amounts.length);
        for (uint256 j; j < amounts.length; ++j) {
            leaves[j] = MerkleTree.payoutLeaf(taskId, round, clients[j], amounts[j]);
        }
        return MerkleTree.rootInPlace(leaves);
    }

    function _weights(
        uint8 payment,
        uint256[] calldata dataCosts,
        uint256[] calldata excludedWords,
        int256[] calldata centre
    ) private pure returns (uint256[] memory w, uint256 total) {
        uint256 k = centre.length;
        w = new uint256[](k);
        for (uint256 j; j < k; ++j) {
            bool excluded = (excludedWords[j >> 8] >> (j & 255)) & 1 == 1;
            w[j] = PoSapMath.payoutWeight(payment, centre[j], dataCosts[j], excluded);
            total += w[j];
        }
    }

    /// @notice The rolling registration hash ({CommitmentHash-registrationLink}) of `clients` with
    /// their data costs, in registration order; zero for an empty list or mismatched lengths
    /// never equals a non-empty round's hash (keccak has no known zero preimage).
    function registrationAcc(address[] calldata clients, uint256[] calldata dataCosts)
        external
        pure
        returns (bytes32 acc)
    {
        if (clients.length != dataCosts.length) return bytes32(0);
        for (uint256 i; i < clients.length; ++i) {
            acc = CommitmentHash.registrationLink(acc, clients[i], dataCosts[i]);
        }
    }

    /// @notice The client-list Merkle root (leaf {MerkleTree-clientLeaf}) and the first fault:
    /// code 1 a forbidden entry (zero, the requester or the server), 2 a duplicate, 3 not
    /// ascending; `at` is its index (0 and the root when code is 0).
    function clientsRoot(address[] calldata clients, address requester, address server)
        external
        pure
        returns (bytes32 root, uint256 code, uint256 at)
    {
        uint256 k = clients.length;
        bytes32[] memory leaves = new bytes32[](k);
        for (uint256 i; i < k; ++i) {
            address c = clients[i];
            if (c == address(0) || c == requester || c == server) return (bytes32(0), 1, i);
            if (i > 0) {
                if (c == clients[i - 1]) return (bytes32(0), 2, i);
                if (c < clients[i - 1]) return (bytes32(0), 3, i);
            }
            leaves[i] = MerkleTree.clientLeaf(c);
        }
        root = MerkleTree.rootInPlace(leaves);
    }

    /// @notice The first fault of a task's consensus parameters: 0 none, 1 D outside
    /// 1..{PoSapMath-difficultyCeiling}, 2 p not 1/2/255, 3 + i window i (registration, commit,
    /// reveal, claim) outside [MIN_WINDOW, MAX_WINDOW] ([MIN_CLAIM_WINDOW, MAX_CLAIM_WINDOW] for claim),
    /// 7 a payment rule above {PoSapMath-PAY_DATA_COST_GATED} or maxDataCost outside 1..2^64-1.
    function checkConfig(
        uint256 difficulty,
        uint8 p,
        bool relative,
        uint256[4] calldata windows,
        uint8 payment,
        uint256 maxDataCost
    ) external pure returns (uint256) {
        if (payment > PoSapMath.PAY_DATA_COST_GATED || maxDataCost == 0 || maxDataCost >= 2 ** 64) return 7;
        if (difficulty == 0 || difficulty > PoSapMath.difficultyCeiling(relative)) return 1;
        if (!PDistance.isSupported(p)) return 2;
        for (uint256 i; i < 4; ++i) {
            (uint256 lo, uint256 hi) =
                i == 3 ? (PoSapMath.MIN_CLAIM_WINDOW, PoSapMath.MAX_CLAIM_WINDOW) : (PoSapMath.MIN_WINDOW, PoSapMath.MAX_WINDOW);
            if (windows[i] < lo || windows[i] > hi) return 3 + i;
        }
        return 0;
    }

    /// @notice {CommitmentHash-recover}: the signer of `digest`, or address(0) for a malformed or
    /// malleable signature.
    function recover(bytes32 digest, bytes calldata signature) external pure returns (address) {
        return CommitmentHash.recover(digest, signature);
    }
}
