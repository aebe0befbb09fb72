// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title PoSapMath: the pure arithmetic of PoSap settlement (prices, payouts, difficulty, record)
/// @notice Mirrored function by function by `fedcoin/protocol/posap.py` (`split_totals`,
/// `round_prices`, `client_payouts`, `sap_rewards`, `difficulty_ceiling`, `relaxed_difficulty`,
/// `next_difficulty`, `commit_cap`, `stalled_after`, `record_hash`); the tests diff the two on
/// random inputs. Integer division truncates, as
/// Python's `//` does on the non-negative operands used here.
/// @dev Internal functions only: they are inlined into FedCoin (no deployed library, no
/// DELEGATECALL). The geometry of vectors (robust centre, p-distance) is {PDistance}.
library PoSapMath {
    /// @notice Basis points in a whole (the three split shares sum to this).
    uint256 internal constant BPS = 10_000;
    /// @notice Most commitments per attempt, whatever K.
    uint256 internal constant MAX_COMMITS = 64;
    /// @notice Commitments per attempt are also capped at MAX_ROUND_WORDS / K so that finalize
    /// (K*M int256 words of calldata, EIP-7623 floor 40 gas per non-zero byte) always fits the
    /// EIP-7825 per-transaction gas cap of 16,777,216.
    uint256 internal constant MAX_ROUND_WORDS = 7168;
    /// @notice Largest absolute difficulty D: D^2 (p = 2) and D * elapsed (elapsed < 2^64) never
    /// overflow.
    uint256 internal constant MAX_DIFFICULTY = 2 ** 120;
    /// @notice Largest relative difficulty: half of ||centre||_p (5e17 = 50%). Below 100%, so a
    /// zero vector (at distance ||centre|| from the centre) can never qualify.
    uint256 internal constant MAX_RELATIVE_DIFFICULTY = 5e17;
    /// @notice How many times a round without consensus re-opens (each time D doubles, capped)
    /// before its budget is refunded.
    uint256 internal constant MAX_REOPENS = 3;
    /// @notice Shortest registration, commit and reveal window (seconds): no round is unminable
    /// by construction. 20 s is enough for a transaction on any chain and lets tests run on Anvil.
    uint256 internal constant MIN_WINDOW = 20;
    /// @notice Longest registration, commit and reveal window.
    uint256 internal constant MAX_WINDOW = 7 days;
    /// @notice Shortest and longest claim window (how long clients may claim after finalization).
    uint256 internal constant MIN_CLAIM_WINDOW = 1 days;
    uint256 internal constant MAX_CLAIM_WINDOW = 365 days;
    /// @notice Time after the last possible reveal deadline left for someone to call finalize
    /// before a round counts as stalled.
    uint256 internal constant FINALIZE_GRACE = 1 days;

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

    /// @notice Payment rules of a task (TaskConfig.payment; posap.py PAYMENT_RULES): FedCoin's
    /// Shapley rule and Record-and-Reward's data cost, ungated or gated by the Shapley sign.
    uint8 internal constant PAY_SHAPLEY = 0;
    uint8 internal constant PAY_DATA_COST = 1;
    uint8 internal constant PAY_DATA_COST_GATED = 2;

    /// @notice Client k's weight in the TrainPrice split: `shapley` max(c_k, 0); `data-cost` n_k
    /// unless excluded; `data-cost-gated` n_k if c_k > 0, else 0.
    /// @dev c_k <= 1e27 < 2^90 and n_k < 2^64 (the task's cap), K <= 1024: sums stay < 2^101, and
    /// train * w < 2^256 for train < 2^155.
    function payoutWeight(uint8 payment, int256 centreK, uint256 dataCost, bool excluded)
        internal
        pure
        returns (uint256)
    {
        if (payment == PAY_DATA_COST) return excluded ? 0 : dataCost;
        if (centreK <= 0) return 0;
        return payment == PAY_SHAPLEY ? uint256(centreK) : dataCost;
    }

    /// @notice The largest D of a task: MAX_RELATIVE_DIFFICULTY for a relative D, else
    /// MAX_DIFFICULTY.
    function difficultyCeiling(bool relative) internal pure returns (uint256) {
        return relative ? MAX_RELATIVE_DIFFICULTY : MAX_DIFFICULTY;
    }

    /// @notice D doubled, capped at `ceiling`: the relaxed D of a re-opened round and the upper
    /// bound of one difficulty adjustment (larger D is easier).
    function relaxedDifficulty(uint256 d, uint256 ceiling) internal pure returns (uint256) {
        uint256 doubled = d * 2;
        return doubled > ceiling ? ceiling : doubled;
    }

    /// @notice Next difficulty of a task after a round settled with its qualifying set complete
    /// `elapsed` seconds after publication: clamp(d * elapsed / target, max(d / 2, 1),
    /// {relaxedDifficulty}(d, ceiling)). Slow rounds raise D, fast ones lower it, by at most a
    /// factor of 2 either way.
    /// @dev d <= MAX_DIFFICULTY = 2^120 and elapsed < 2^64, so d * elapsed < 2^184. `target` >= 1.
    function nextDifficulty(uint256 d, uint256 elapsed, uint256 target, uint256 ceiling)
        internal
        pure
        returns (uint256)
    {
        uint256 lo = d / 2;
        if (lo == 0) lo = 1;
        uint256 hi = relaxedDifficulty(d, ceiling);
        uint256 n = d * elapsed / target;
        if (n < lo) return lo;
        if (n > hi) return hi;
        return n;
    }

    /// @notice A qualifying miner's share of SapPrice: sap * bond / qualifiedStake (floor); the
    /// dust (sap - sum of shares) is the requester's refund.
    /// @dev sap < 2^128 (any ETH amount) and bond < 2^128, so the product fits; qualifiedStake >= bond.
    function sapShare(uint256 sap, uint256 bond, uint256 qualifiedStake) internal pure returns (uint256) {
        return sap * bond / qualifiedStake;
    }

    /// @notice The time after which a round that has not settled counts as stalled:
    /// roundStartedAt + registrationWindow + (MAX_REOPENS + 1) * (commitWindow + revealWindow)
    /// + FINALIZE_GRACE. With every window at most 7 days this is at most 64 days.
    function stalledAfter(uint256 roundStartedAt, uint256 registrationWindow, uint256 commitWindow, uint256 revealWindow)
        internal
        pure
        returns (uint256)
    {
        return roundStartedAt + registrationWindow + (MAX_REOPENS + 1) * (commitWindow + revealWindow)
            + FINALIZE_GRACE;
    }

    /// @notice Most commitments per attempt for a round with `k` registered clients:
    /// min(MAX_COMMITS, MAX_ROUND_WORDS / k) (MAX_COMMITS for k = 0).
    function commitCap(uint256 k) internal pure returns (uint256) {
        uint256 byWords = k == 0 ? MAX_COMMITS : MAX_ROUND_WORDS / k;
        return byWords < MAX_COMMITS ? byWords : MAX_COMMITS;
    }

    /// @notice The PoSap block record hash (the paper's Table 1): keccak256(abi.encode(height,
    /// taskId, round, winner, centreHash, winnerHash, prevHash, difficulty, payoutsRoot, payment)).
    /// @dev Chaining prevHash makes the records a hash chain that anyone can re-derive from
    /// the PoSapBlock events.
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
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(height, taskId, round, winner, centreHash, winnerHash, prevHash, difficulty, payoutsRoot, payment)
        );
    }
}
