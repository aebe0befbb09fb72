"""fedcoin.protocol.fixedpoint: encoding, the |s| bound (same as the contract's), truncating division."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from fedcoin.protocol import fixedpoint as fp
def test_encode_reads_floats_by_their_shortest_repr():
    assert fp.encode(0.1) == 10**17
    assert fp.encode(-2.5) == -25 * 10**17
    assert fp.encode("1e-18") == 1 and fp.encode(1) == fp.SCALE


def test_bound_is_the_contracts():
    assert fp.MAX_ABS == 10**27
    assert fp.encode(10**9) == fp.MAX_ABS
    with pytest.raises(fp.FixedPointRangeError):
        fp.encode(1e9 + 1e-6)
    with pytest.raises(fp.FixedPointRangeError) as e:
        fp.check_vector([0, fp.MAX_ABS, -fp.MAX_ABS - 1])
    assert e.value.index == 2 and e.value.value == -fp.MAX_ABS - 1


def test_non_finite_rejected():
    for x in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            fp.encode(x)


def test_bound_keeps_squares_and_weighted_sums_inside_int256():
    d = 2 * fp.MAX_ABS
    assert 2**32 * d * d < fp.INT256_MAX
    assert 64 * 2**64 * fp.MAX_ABS < fp.INT256_MAX


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_roundtrip_within_half_ulp_of_fixed_point(x):
    v = fp.encode(x)
    assert abs(Decimal(v) - Decimal(repr(x)) * fp.SCALE) <= Decimal("0.5")
    assert fp.decode(v) == pytest.approx(x, rel=1e-15, abs=1e-18)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**40), 10**40), st.integers(-(10**20), 10**20).filter(lambda b: b != 0))
def test_div_trunc_rounds_toward_zero(a, b):
    q = fp.div_trunc(a, b)
    assert abs(q) == abs(a) // abs(b)
    assert q == 0 or (q > 0) == ((a > 0) == (b > 0))
