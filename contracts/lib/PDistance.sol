// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice One revealed Shapley vector as `finalize` receives it (calldata, in reveal order).
/// @param miner the revealing miner.
/// @param seq the miner's commitment sequence number in its attempt (0 = earliest commit).
/// @param iterations the sample count the miner claimed: recorded (the paper's block record),
/// never weighted.
/// @param values the Shapley vector, int256 fixed point with 18 decimals, registration order.
struct RevealData {
    address miner;
    uint256 seq;
    uint256 iterations;
    int256[] values;
}

/// @notice A round's qualification rule: difficulty D, distance p and whether D is relative to
/// ||centre||_p (1e18 = 100%).
struct Rule {
    uint256 difficulty;
    uint8 p;
    bool relative;
}

/// @notice What the judge made of an attempt: whether the centre is the lower median (else the
/// first bad coordinate), each reveal's distance and verdict code (0 Qualified, 1 Returned, 2 Slashed).
struct Verdicts {
    bool ok;
    uint256 bad;
    uint256[] dists;
    uint8[] codes;
}

/// @title PDistance: the robust consensus centre and p-distances of Shapley vectors
/// @notice Mirrored exactly by `fedcoin/protocol/posap.py` (`check_centre`, `p_distance`, `norm`,
/// `threshold`, `slash_threshold`). Values are int256 fixed point with 18 decimals (1.0 = 1e18).
/// The centre is the per-coordinate stake-weighted LOWER median of the revealed vectors: for
/// every coordinate j, with W the revealed stake, 2 * (stake at or below c_j) >= W and
/// 2 * (stake strictly below c_j) < W. Exactly one value satisfies both, and it is one of the
/// revealed values, so the finalizer who passes it has no freedom.
/// @dev Overflow bound: every value has |s| <= MAX_ABS_VALUE = 1e27 (checked on reveal), at
/// most 1024 coordinates, bonds < 2^128 and at most 64 reveals (stake sums < 2^134). A squared
/// difference is <= (2e27)^2 < 2^183 and a sum of 1024 of them < 2^193. A relative threshold for
/// p = 2 is (sum c^2 / 1e18) * D^2 / 1e18 with D <= 5e17: < 1.1e39 * 2.5e35 < 2^248. Arithmetic
/// stays checked anyway: an impossible overflow reverts instead of wrapping.
library PDistance {
    /// @notice Largest accepted |s|: 1e9 in real units (1e27 in fixed point).
    int256 internal constant MAX_ABS_VALUE = 1e27;
    /// @notice Code of p = infinity (max norm); 1 and 2 stand for themselves.
    uint8 internal constant P_INF = type(uint8).max;
    /// @notice A reveal farther than SLASH_MULTIPLE * D from the centre forfeits its bond.
    uint256 internal constant SLASH_MULTIPLE = 4;
    /// @notice Fixed-point one (a relative D is a fraction of ||centre||_p in these units).
    uint256 internal constant ONE = 1e18;

    /// @dev p is not one of 1, 2, P_INF (255).
    error PDistanceUnsupportedP(uint8 p);

    /// @notice True when p is 1, 2 or P_INF.
    function isSupported(uint8 p) internal pure returns (bool) {
        return p == 1 || p == 2 || p == P_INF;
    }

    /// @notice Checks that `centre` is the stake-weighted lower median of `reveals` in every
    /// coordinate; returns (true, 0) or (false, first bad coordinate).
    /// @dev O(K * M) with no sorting: for each coordinate it sums the stake strictly below and at
    /// or below c_j. `weights[i]` is reveal i's bond, `total` their sum (> 0), `centre.length` the
    /// reveals' length (the caller checks both).
    function checkCentre(
        RevealData[] calldata reveals,
        uint256[] memory weights,
        uint256 total,
        int256[] calldata centre
    ) internal pure returns (bool, uint256) {
        uint256 k = centre.length;
        uint256[] memory below = new uint256[](k);
        uint256[] memory atOrBelow = new uint256[](k);
        for (uint256 i; i < reveals.length; ++i) {
            int256[] calldata v = reveals[i].values;
            uint256 w = weights[i];
            for (uint256 j; j < k; ++j) {
                int256 x = v[j];
                int256 c = centre[j];
                if (x < c) {
                    below[j] += w;
                    atOrBelow[j] += w;
                } else if (x == c) {
                    atOrBelow[j] += w;
                }
            }
        }
        for (uint256 j; j < k; ++j) {
            if (2 * atOrBelow[j] < total || 2 * below[j] >= total) return (false, j);
        }
        return (true, 0);
    }

    /// @notice The p-distance between `s` and `centre` as compared with a threshold: sum|d| for
    /// p = 1, sum d^2 for p = 2 (no square root), max|d| for p = P_INF.
    /// @dev `s` and `centre` must have the same length (the caller checks).
    function distance(int256[] calldata s, int256[] calldata centre, uint8 p) internal pure returns (uint256 d) {
        uint256 k = centre.length;
        if (p == 1) {
            for (uint256 j; j < k; ++j) d += _abs(s[j] - centre[j]);
        } else if (p == 2) {
            for (uint256 j; j < k; ++j) {
                uint256 a = _abs(s[j] - centre[j]);
                d += a * a;
            }
        } else if (p == P_INF) {
            for (uint256 j; j < k; ++j) {
                uint256 a = _abs(s[j] - centre[j]);
                if (a > d) d = a;
            }
        } else {
            revert PDistanceUnsupportedP(p);
        }
    }

    /// @notice ||c||_p in the units of {distance}: sum|c| (p = 1), sum c^2 (p = 2), max|c| (P_INF).
    function norm(int256[] calldata c, uint8 p) internal pure returns (uint256 n) {
        uint256 k = c.length;
        for (uint256 j; j < k; ++j) {
            uint256 a = _abs(c[j]);
            if (p == 1) n += a;
            else if (p == 2) n += a * a;
            else if (a > n) n = a;
        }
    }

    /// @notice The qualification threshold in {distance} units: a reveal qualifies when its
    /// distance is <= this. Absolute D: D (D^2 for p = 2). Relative D (a fraction of
    /// ||centre||_p, 1e18 = 100%): ||c|| * D / 1e18, or (sum c^2 / 1e18) * D^2 / 1e18 for p = 2.
    function threshold(int256[] calldata centre, uint256 d, uint8 p, bool relative) internal pure returns (uint256) {
        if (!relative) return p == 2 ? d * d : d;
        uint256 n = norm(centre, p);
        return p == 2 ? (n / ONE) * d * d / ONE : n * d / ONE;
    }

    /// @notice The slashing threshold: a reveal whose distance exceeds this (SLASH_MULTIPLE * D,
    /// squared for p = 2) forfeits its bond.
    function slashThreshold(uint256 thr, uint8 p) internal pure returns (uint256) {
        return p == 2 ? thr * (SLASH_MULTIPLE * SLASH_MULTIPLE) : thr * SLASH_MULTIPLE;
    }

    function _abs(int256 x) private pure returns (uint256) {
        // Cannot be type(int256).min: inputs are bounded by MAX_ABS_VALUE.
        return x < 0 ? uint256(-x) : uint256(x);
    }
}
