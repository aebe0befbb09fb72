"""Model parameters and client updates <-> safetensors bytes.

Everything that goes to the content store as a tensor blob (the global model, each client's
update Δ_k, the validation set) is encoded here, so that the server and every miner hash the
same bytes. The format is `safetensors <https://github.com/huggingface/safetensors>`_: an
8-byte little-endian header length, a JSON header, then the raw little-endian tensor data.
Loading it executes nothing (unlike pickle), which is why downloaded blobs use it.

Determinism:
    :func:`dumps` writes no metadata and lets safetensors order the tensors (it sorts them by
    dtype alignment, then by name), so the bytes depend only on the *contents* of the mapping,
    never on the insertion order of the dict. Every float tensor is float32 (the only float
    dtype the miners accept). The same parameters therefore always give the same bytes, and
    :func:`loads` followed by :func:`dumps` reproduces the input bytes exactly.

Warning:
    ``-0.0`` and ``0.0`` (and NaN payloads) are kept bit-for-bit, so two updates that compare
    equal as numbers may still hash differently. That is intended: the hash is of the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

#: dtypes a blob may contain: float32 tensors (weights, updates, features) and int32 labels.
ALLOWED_DTYPES = (np.dtype("<f4"), np.dtype("<i4"))

_LAYER = re.compile(r"^([a-z]+)(\d+)$")


class SerializationError(ValueError):
    """A blob is not a valid FedCoin safetensors blob (message says what was expected)."""


def canonical_order(names) -> list[str]:
    """Order tensor names as the model zoo does: ``w0, b0, w1, b1, ...``; others sorted after.

    Examples:
        >>> canonical_order(["b1", "w10", "w1", "b0", "w0", "x"])
        ['w0', 'b0', 'w1', 'b1', 'w10', 'x']
    """

    def key(name: str):
        m = _LAYER.match(name)
        if m and m.group(1) in ("w", "b"):
            return (0, int(m.group(2)), 0 if m.group(1) == "w" else 1, name)
        return (1, 0, 0, name)

    return sorted(names, key=key)


def _as_numpy(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if arr.dtype != np.float32:
            raise SerializationError(
                f"tensor {name!r} has dtype {arr.dtype}; FedCoin blobs are float32 (cast explicitly first)"
            )
    elif arr.dtype.kind in "iu":
        if arr.dtype != np.int32:
            raise SerializationError(f"tensor {name!r} has dtype {arr.dtype}; integer tensors must be int32")
    else:
        raise SerializationError(f"tensor {name!r} has unsupported dtype {arr.dtype}")
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))


def dumps(tensors: Mapping[str, object], metadata: Mapping[str, str] | None = None) -> bytes:
    """Encode a flat mapping of arrays (NumPy or JAX) as deterministic safetensors bytes.

    Args:
        tensors: ``{"w0": [784, 10] float32, "b0": [10] float32, ...}``; int32 is allowed for
            label tensors.
        metadata: at most ONE string entry (safetensors writes several in no fixed order,
            which would make the bytes nondeterministic); e.g. a client's CSVES declaration.

    Returns:
        The safetensors bytes; equal mappings give equal bytes.

    Raises:
        SerializationError: a dtype other than float32/int32, or an empty mapping.
    """
    from safetensors.numpy import save

    if not tensors:
        raise SerializationError("nothing to serialize: the mapping of tensors is empty")
    arrays = {str(k): _as_numpy(str(k), v) for k, v in tensors.items()}
    if metadata:
        if len(metadata) != 1:
            raise SerializationError(f"at most one metadata entry keeps the bytes deterministic, got {len(metadata)}")
        return save(arrays, metadata={str(k): str(v) for k, v in metadata.items()})
    return save(arrays)


def loads(data: bytes, *, expected_shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Decode safetensors bytes into ``{name: np.ndarray}`` in :func:`canonical_order`.

    Args:
        data: the blob.
        expected_shapes: if given, the blob must hold exactly these names with these shapes
            (e.g. ``Arch.shapes()``), all float32.

    Raises:
        SerializationError: malformed bytes, a dtype other than float32/int32, or names/shapes
            that differ from ``expected_shapes``.
    """
    from safetensors.numpy import load

    try:
        raw = load(bytes(data))
    except Exception as e:  # safetensors raises its own SafetensorError / ValueError
        raise SerializationError(f"not a safetensors blob ({len(data)} bytes): {e}") from None
    out: dict[str, np.ndarray] = {}
    for name in canonical_order(raw):
        arr = raw[name]
        if arr.dtype not in ALLOWED_DTYPES:
            raise SerializationError(f"tensor {name!r} has dtype {arr.dtype}; expected float32 or int32")
        out[name] = arr
    if expected_shapes is not None:
        want = {k: tuple(v) for k, v in expected_shapes.items()}
        got = {k: tuple(v.shape) for k, v in out.items()}
        if want != got:
            raise SerializationError(f"blob holds tensors {got}; expected {want}")
        bad = [k for k, v in out.items() if v.dtype != np.float32]
        if bad:
            raise SerializationError(f"parameter tensors {bad} are not float32")
    return out


def params_to_bytes(params: Mapping[str, object], metadata: Mapping[str, str] | None = None) -> bytes:
    """Model parameters or an update Δ -> safetensors bytes (float32 only; ``metadata`` as in :func:`dumps`)."""
    for name, value in params.items():
        if np.asarray(value).dtype != np.float32:
            raise SerializationError(f"parameter {name!r} is {np.asarray(value).dtype}, expected float32")
    return dumps(params, metadata)


def params_from_bytes(data: bytes, arch=None) -> dict[str, np.ndarray]:
    """Safetensors bytes -> parameters; with ``arch`` (a :class:`fedcoin.ml.models.Arch`) the
    names and shapes must match ``arch.shapes()`` exactly."""
    return loads(data, expected_shapes=arch.shapes() if arch is not None else None)


def dataset_to_bytes(x, y) -> bytes:
    """A labelled dataset (``x``: ``[n, d]`` float32, ``y``: ``[n]`` int32) -> safetensors bytes."""
    return dumps({"x": np.asarray(x, np.float32), "y": np.asarray(y, np.int32)})


def dataset_from_bytes(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`dataset_to_bytes`; checks names, dtypes and matching lengths."""
    t = loads(data)
    if set(t) != {"x", "y"}:
        raise SerializationError(f"dataset blob must hold exactly 'x' and 'y', got {sorted(t)}")
    x, y = t["x"], t["y"]
    if x.dtype != np.float32 or x.ndim != 2 or y.dtype != np.int32 or y.ndim != 1 or len(x) != len(y):
        raise SerializationError(
            f"dataset blob must be x [n, d] float32 and y [n] int32; got x {x.shape} {x.dtype}, y {y.shape} {y.dtype}"
        )
    return x, y
