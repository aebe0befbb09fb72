// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice One revealed Shapley vector as `finalize` receives it (calldata, in reveal order).
/// @param miner the revealing miner.
/// @param seq the miner's commitment sequence number in its attempt (0 = earliest commit).
/// @param iterations the sample count the miner claimed; weighted as min(iterations, cap).
/// @param values the Shapley vector, int256 fixed point with 18 decimals, registration order.
struct RevealData {
    address miner;
    uint256 seq;
    uint256 iterations;
    int256[] values;
}

/// @title PDistance: fixed-point weighted mean and p-distances of Shapley vectors
/// @notice Mirrored exactly by `fedcoin/protocol/posap.py` (`weighted_mean`, `p_distance`, `qualifies`).
/// Values are int256 fixed point with 18 decimals (1.0 = 1e18).
/// @dev Overflow bound: every value has |s| <= MAX_ABS_VALUE = 1e27 (checked on reveal), weights
/// are <= the contract's iteration cap (<= 2^64) and there are at most 64 reveals, so
/// |sum w*s| <= 64 * 2^64 * 1e27 < 2^161 and a squared difference is <= (2e27)^2 < 2^183; a sum
/// of 2^32 of them stays < 2^215 — far from int256/uint256 limits. Arithmetic stays checked
/// anyway: an impossible overflow reverts instead of wrapping.
library PDistance {
    /// @notice Largest accepted |s|: 1e9 in real units (1e27 in fixed point).
    int256 internal constant MAX_ABS_VALUE = 1e27;
    /// @notice Code of p = infinity (max norm); 1 and 2 stand for themselves.
    uint8 internal constant P_INF = type(uint8).max;

    /// @dev p is not one of 1, 2, P_INF (255).
    error PDistanceUnsupportedP(uint8 p);

    /// @notice True when p is 1, 2 or P_INF.
    function isSupported(uint8 p) internal pure returns (bool) {
        return p == 1 || p == 2 || p == P_INF;
    }

    /// @notice The weight of one reveal: min(iterations, cap).
    function weight(uint256 iterations, uint256 cap) internal pure returns (uint256) {
        return iterations < cap ? iterations : cap;
    }

    /// @notice Iteration-weighted mean: mean_k = (sum_i w_i * s_ik) / (sum_i w_i).
    /// @dev Solidity's signed division truncates toward zero; posap.weighted_mean does the same. With no
    /// reveals, or zero total weight, the mean is the zero vector.
    /// @param reveals the vectors (each of length k).
    /// @param k the vector length.
    /// @param cap the iteration cap applied to each weight.
    function weightedMean(RevealData[] calldata reveals, uint256 k, uint256 cap)
        internal
        pure
        returns (int256[] memory mean)
    {
        mean = new int256[](k);
        uint256 m = reveals.length;
        int256 total = 0;
        for (uint256 i; i < m; ++i) {
            int256 w = int256(weight(reveals[i].iterations, cap));
            if (w == 0) continue;
            total += w;
            int256[] calldata v = reveals[i].values;
            for (uint256 j; j < k; ++j) {
                mean[j] += w * v[j];
            }
        }
        if (total == 0) return mean;
        for (uint256 j; j < k; ++j) {
            mean[j] /= total;
        }
    }

    /// @notice The p-distance between `s` and `mean` as compared with D: sum|d| for p = 1,
    /// sum d^2 for p = 2 (no square root: compare with D^2), max|d| for p = P_INF.
    /// @dev `s` and `mean` must have the same length (the caller checks).
    function distance(int256[] calldata s, int256[] memory mean, uint8 p) internal pure returns (uint256 d) {
        uint256 k = mean.length;
        if (p == 1) {
            for (uint256 j; j < k; ++j) d += _abs(s[j] - mean[j]);
        } else if (p == 2) {
            for (uint256 j; j < k; ++j) {
                uint256 a = _abs(s[j] - mean[j]);
                d += a * a;
            }
        } else if (p == P_INF) {
            for (uint256 j; j < k; ++j) {
                uint256 a = _abs(s[j] - mean[j]);
                if (a > d) d = a;
            }
        } else {
            revert PDistanceUnsupportedP(p);
        }
    }

    /// @notice Whether a distance from {distance} qualifies under difficulty D: dist <= D, or
    /// dist <= D^2 for p = 2. Larger D is easier.
    function qualifies(uint256 dist, uint256 difficulty, uint8 p) internal pure returns (bool) {
        return p == 2 ? dist <= difficulty * difficulty : dist <= difficulty;
    }

    function _abs(int256 x) private pure returns (uint256) {
        // Cannot be type(int256).min: inputs are bounded by MAX_ABS_VALUE.
        return x < 0 ? uint256(-x) : uint256(x);
    }
}
