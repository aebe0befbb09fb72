// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CommitmentHash} from "./lib/CommitmentHash.sol";
import {MerkleTree} from "./lib/MerkleTree.sol";
import {PDistance, RevealData, Rule, Verdicts} from "./lib/PDistance.sol";
import {PoSapMath} from "./lib/PoSapMath.sol";

/// @title PoSapJudge: FedCoin's stateless verifier of a round's centre, distances and payouts
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

    /// @notice Client amounts ({PoSapMath-clientAmount}): train * c_k / sum(positive c) for
    /// c_k > 0, else 0, their sum and the payout Merkle root (zero when no entry is positive).
    function payouts(uint256 taskId, uint256 round, address[] calldata clients, int256[] calldata centre, uint256 train)
        external
        pure
        returns (uint256[] memory amounts, uint256 paid, bytes32 root)
    {
        uint256 k = clients.length;
        amounts = new uint256[](k);
        uint256 positive = PoSapMath.positiveTotal(centre);
        if (positive == 0) return (amounts, 0, bytes32(0));
        bytes32[] memory leaves = new bytes32[](k);
        for (uint256 j; j < k; ++j) {
            uint256 a = PoSapMath.clientAmount(train, centre[j], positive);
            amounts[j] = a;
            paid += a;
            leaves[j] = MerkleTree.payoutLeaf(taskId, round, clients[j], a);
        }
        root = MerkleTree.rootInPlace(leaves);
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
    /// reveal, claim) outside [MIN_WINDOW, MAX_WINDOW] ([MIN_CLAIM_WINDOW, MAX_CLAIM_WINDOW] for claim).
    function checkConfig(uint256 difficulty, uint8 p, bool relative, uint256[4] calldata windows)
        external
        pure
        returns (uint256)
    {
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
