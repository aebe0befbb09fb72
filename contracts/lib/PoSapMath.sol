// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title PoSapMath: the pure arithmetic of PoSap settlement (prices, payouts, difficulty, record)
/// @notice Mirrored function by function by `fedcoin/protocol/posap.py` (`split_totals`,
/// `round_prices`, `client_payouts`, `relaxed_difficulty`, `next_difficulty`, `commit_cap`,
/// `record_hash`); the tests diff the two on random inputs. Integer division truncates, as
/// Python's `//` does on the non-negative operands used here.
/// @dev Internal functions only: they are inlined into FedCoin (no deployed library, no
/// DELEGATECALL). The geometry of vectors (weighted mean, p-distance) is {PDistance}.
library PoSapMath {
    /// @notice Basis points in a whole (the three split shares sum to this).
    uint256 internal constant BPS = 10_000;
    /// @notice Most commitments per attempt, whatever K.
    uint256 internal constant MAX_COMMITS = 64;
    /// @notice Commitments per attempt are also capped at MAX_ROUND_WORDS / K so that finalize
    /// (K*M int256 words of calldata, EIP-7623 floor 40 gas per non-zero byte) always fits the
    /// EIP-7825 per-transaction gas cap of 16,777,216.
    uint256 internal constant MAX_ROUND_WORDS = 8192;
    /// @notice Largest difficulty D: D^2 (p = 2) and D * elapsed (elapsed < 2^64) never overflow.
    uint256 internal constant MAX_DIFFICULTY = 2 ** 120;

    /// @notice A task's totals: train = V*trainBps/BPS, com = V*comBps/BPS, sap = V - train -
    /// com, so the split's rounding dust goes to SapPrice and the three sum to V exactly.
    /// @dev The caller guarantees trainBps + comBps <= BPS, hence train + com <= V. Checked
    /// arithmetic anyway: V*bps overflows only for V > 2^242, far above any ETH supply.
    function splitTotals(uint256 budget, uint256 trainBps, uint256 comBps)
        internal
        pure
        returns (uint256 train, uint256 com, uint256 sap)
    {
        train = budget * trainBps / BPS;
        com = budget * comBps / BPS;
        sap = budget - train - com;
    }

    /// @notice Round `round`'s share of `total` over `rounds` rounds: floor(total / rounds),
    /// the last round taking total - floor(total / rounds) * (rounds - 1), so the shares sum
    /// to `total` exactly.
    /// @dev Divide before multiply is the point (see slither.triage.json). `rounds` >= 1.
    function share(uint256 total, uint256 rounds, uint256 round) internal pure returns (uint256) {
        uint256 each = total / rounds;
        return round + 1 == rounds ? total - each * (rounds - 1) : each;
    }

    /// @notice A round's (TrainPrice, ComPrice, SapPrice): {splitTotals} cut by {share}.
    function roundPrices(uint256 budget, uint256 rounds, uint256 round, uint256 trainBps, uint256 comBps)
        internal
        pure
        returns (uint256 train, uint256 com, uint256 sap)
    {
        (uint256 totalTrain, uint256 totalCom, uint256 totalSap) = splitTotals(budget, trainBps, comBps);
        train = share(totalTrain, rounds, round);
        com = share(totalCom, rounds, round);
        sap = share(totalSap, rounds, round);
    }

    /// @notice Sum of the positive entries of the consensus vector (the payout denominator).
    /// @dev Each entry is at most MAX_ABS_VALUE = 1e27 and K <= 1024 entries: the sum is < 2^80.
    function positiveTotal(int256[] memory mean) internal pure returns (uint256 positive) {
        uint256 k = mean.length;
        for (uint256 j; j < k; ++j) {
            if (mean[j] > 0) positive += uint256(mean[j]);
        }
    }

    /// @notice One client's payout: train * mean_k / positive for mean_k > 0, else 0 (floor).
    /// The sum over clients is <= train; the dust (train - sum) is the requester's refund, and
    /// with positive == 0 the whole of train is.
    /// @dev `positive` is {positiveTotal} of the same vector, so mean_k <= positive and the
    /// amount <= train. train * mean_k < 2^256 for train < 2^166 (mean_k < 2^90), checked.
    function clientAmount(uint256 train, int256 meanK, uint256 positive) internal pure returns (uint256) {
        return meanK > 0 ? train * uint256(meanK) / positive : 0;
    }

    /// @notice D doubled, capped at MAX_DIFFICULTY: the relaxed D of a re-opened round and the
    /// upper bound of one difficulty adjustment (larger D is easier).
    function relaxedDifficulty(uint256 d) internal pure returns (uint256) {
        uint256 doubled = d * 2;
        return doubled > MAX_DIFFICULTY ? MAX_DIFFICULTY : doubled;
    }

    /// @notice Next difficulty after a round won `elapsed` seconds after publication:
    /// clamp(d * elapsed / target, max(d / 2, 1), {relaxedDifficulty}(d)). Slow rounds raise D,
    /// fast ones lower it, by at most a factor of 2 either way.
    /// @dev d <= MAX_DIFFICULTY = 2^120 and elapsed < 2^64, so d * elapsed < 2^184. `target` >= 1.
    function nextDifficulty(uint256 d, uint256 elapsed, uint256 target) internal pure returns (uint256) {
        uint256 lo = d / 2;
        if (lo == 0) lo = 1;
        uint256 hi = relaxedDifficulty(d);
        uint256 n = d * elapsed / target;
        if (n < lo) return lo;
        if (n > hi) return hi;
        return n;
    }

    /// @notice Most commitments per attempt for a round with `k` registered clients:
    /// min(MAX_COMMITS, MAX_ROUND_WORDS / k) (MAX_COMMITS for k = 0).
    function commitCap(uint256 k) internal pure returns (uint256) {
        uint256 byWords = k == 0 ? MAX_COMMITS : MAX_ROUND_WORDS / k;
        return byWords < MAX_COMMITS ? byWords : MAX_COMMITS;
    }

    /// @notice The PoSap block record hash (the paper's Table 1): keccak256(abi.encode(height,
    /// taskId, round, winner, meanHash, winnerHash, prevHash, difficulty, payoutsRoot)).
    /// @dev Chaining prevHash makes the records a hash chain that anyone can re-derive from
    /// the PoSapBlock events.
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
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(height, taskId, round, winner, meanHash, winnerHash, prevHash, difficulty, payoutsRoot)
        );
    }
}
