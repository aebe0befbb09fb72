"""Fixed-point numbers as the contract sees them: ``int256`` with 18 decimals (1.0 = 10**18).

Shapley values S, the consensus mean S̄ and the difficulty D all use this encoding. The
contract (``PDistance.MAX_ABS_VALUE``, checked in ``FedCoin.reveal``) rejects any value with
``|s| > MAX_ABS`` = 10**27 (10**9 in real units) with ``FedCoinValueOutOfRange(index, value)``;
:func:`check_vector` mirrors that check. The bound keeps every intermediate far inside int256:
a squared difference is at most (2·10**27)**2 < 2**183 and an iteration-weighted sum over the at
most 64 reveals of an attempt with weights below 2**64 stays below 2**161.

Examples:
    >>> encode(0.1)
    100000000000000000
    >>> decode(encode(-2.5))
    -2.5
    >>> div_trunc(-7, 2)
    -3
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterable, Sequence

#: 1.0 in fixed point.
SCALE = 10**18
#: Largest accepted |s| (mirrors ``PDistance.MAX_ABS_VALUE`` = 1e27).
MAX_ABS = 10**27
INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1


class FixedPointRangeError(ValueError):
    """A value lies outside ±:data:`MAX_ABS` (the contract would reject it).

    Attributes:
        index: position in the vector (None for a scalar).
        value: the offending fixed-point integer.
    """

    def __init__(self, value: int, index: int | None = None):
        self.value = value
        self.index = index
        where = "" if index is None else f" at index {index}"
        super().__init__(f"fixed-point value {value}{where} exceeds the bound ±{MAX_ABS} (1e9 in real units)")


def encode(x: float | int | str | Decimal) -> int:
    """Real number -> fixed point: the nearest integer to x·10**18, ties to even.

    Floats are read through their shortest ``repr`` (so 0.1 encodes to exactly 10**17, not
    the binary float's expansion). Raises :class:`FixedPointRangeError` above the bound and
    ``ValueError`` for NaN or infinities.
    """
    if isinstance(x, Decimal):
        d = x
    elif isinstance(x, int) and not isinstance(x, bool):
        d = Decimal(x)
    elif isinstance(x, str):
        d = Decimal(x)
    else:
        f = float(x)
        if not math.isfinite(f):
            raise ValueError(f"cannot encode non-finite value {f!r}")
        d = Decimal(repr(f))
    if not d.is_finite():
        raise ValueError(f"cannot encode non-finite value {x!r}")
    v = int((d * SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))
    return check(v)


def decode(v: int) -> float:
    """Fixed point -> float (nearest double)."""
    return float(Decimal(int(v)) / SCALE)


def decode_decimal(v: int) -> Decimal:
    """Fixed point -> exact Decimal."""
    return Decimal(int(v)) / SCALE


def in_range(v: int) -> bool:
    """Whether the contract accepts ``v`` in a vector (|v| <= MAX_ABS)."""
    return -MAX_ABS <= int(v) <= MAX_ABS


def check(v: int, index: int | None = None) -> int:
    """Return ``v`` or raise :class:`FixedPointRangeError` as the contract would."""
    v = int(v)
    if not in_range(v):
        raise FixedPointRangeError(v, index)
    return v


def check_vector(values: Iterable[int]) -> list[int]:
    """Mirror of ``FedCoin.reveal``'s bound check: the first out-of-range index raises."""
    return [check(v, i) for i, v in enumerate(values)]


def encode_vector(xs: Iterable[float]) -> list[int]:
    """Encode each element (e.g. a numpy/JAX array of Shapley values) with :func:`encode`."""
    out = []
    for i, x in enumerate(xs):
        try:
            out.append(encode(x))
        except FixedPointRangeError as e:
            raise FixedPointRangeError(e.value, i) from None
    return out


def decode_vector(vs: Sequence[int]) -> list[float]:
    """Decode each element with :func:`decode`."""
    return [decode(v) for v in vs]


def div_trunc(a: int, b: int) -> int:
    """Solidity's signed integer division: the quotient rounded toward zero.

    Python's ``//`` floors instead (``-7 // 2 == -4``; Solidity gives -3).
    """
    if b == 0:
        raise ZeroDivisionError("division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q
