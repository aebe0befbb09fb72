"""The Class-Sampled Validation-Error Scheme (CSVES) of *Record and Reward Federated Learning
Contributions with Blockchain* (Martinez, Francis and Senhaji Hafid): the off-chain half.

The protocol, one device at a time:

1. **Declare** (Alg. 1). The device declares the classes it holds data for,
   c_i = 1 iff it has at least one example of class i (:func:`declared_classes`).
2. **Sample** (Alg. 2). The model owner draws, for every declared class, m points of that class
   from its validation pool and sends this *class-sampled validation set* to the device
   (:func:`class_sampled_indices`: deterministic from the pool's labels, the declared classes,
   m and a 32-byte seed, so anyone holding the seed rebuilds the same rows).
3. **Train** (Alg. 1). The device trains the global model T_k → T'_k on its own data and records
   the error on the class-sampled set at intervals, the vector v_E
   (:func:`train_with_trajectory`; :func:`train_many` for many simulated devices at once). It
   sends hash(Δ), v_E and its data cost n.
4. **Accept or not.** CSVES-Tr (Alg. 3, :func:`csves_tr`) pays n when the least-squares line
   through v_E falls (slope β₁ < 0); CSVES-Th (Alg. 4, :func:`csves_th`) pays n when the last
   validation error is below τ (the paper: τ = 0.1).

What a third party can check: CSVES-Th needs only T'_k = T_k + Δ (published), the pool, the
declared classes and the seed, so a miner recomputes :func:`validation_error` itself. CSVES-Tr
rests on the device's own trajectory v_E, which nobody else can recompute (it would need the
device's data); it is self-reported and NOT verified here.

Errors are exact ratios of integers: the jitted code counts wrong predictions (int32) and the
host divides in float64, so ``10 wrong of 100`` is the double ``0.1`` exactly and
``csves_th(0.1, tau=0.1)`` is a rejection, not a rounding accident.

Example:
    >>> import numpy as np
    >>> declared_classes(np.array([3, 1, 3, 7]), 10)
    (1, 3, 7)
    >>> pool = np.array([0, 1, 1, 2, 1, 0, 2, 2, 1])
    >>> idx = class_sampled_indices(pool, (1, 2), 2, seed=7)
    >>> pool[idx].tolist()
    [1, 1, 2, 2]
    >>> csves_tr([0.5, 0.4, 0.45, 0.3])[0], csves_th([0.5, 0.09])
    (True, True)
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from eth_utils import keccak

from fedcoin.ml.models import Arch, Params, apply, cross_entropy

#: CSVES-Th's threshold in the paper (Alg. 4, §V): accept when the last validation error < 0.1.
DEFAULT_TAU = 0.1

Seed = bytes | str | int


# ------------------------------------------------------------------------- declaration, sampling


def declared_classes(labels, n_classes: int) -> tuple[int, ...]:
    """The classes a device declares: the sorted ids i with c_i = 1 (some example of class i).

    Args:
        labels: ``[n]`` integer labels of the device's data.
        n_classes: the number of classes of the task; every label must lie in ``[0, n_classes)``.

    Returns:
        The sorted class ids present, e.g. ``(1, 3, 7)``; ``()`` for no data.

    Raises:
        ValueError: a label outside ``[0, n_classes)``, or labels that are not integers.
    """
    y = np.asarray(labels)
    if y.size == 0:
        return ()
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{int(y.min())}, {int(y.max())}]")
    return tuple(int(c) for c in np.unique(y))


def seed_bytes(seed: Seed) -> bytes:
    """The canonical 32-byte form of a sampling seed.

    Args:
        seed: 32 raw bytes; a ``0x``-prefixed hex string of 32 bytes (64 hex digits, as a task
            spec writes hashes); or an int in ``[0, 2**256)``, taken as 32 bytes big-endian
            (so ``7`` and ``(7).to_bytes(32, "big")`` are the same seed).

    Raises:
        ValueError: any other length, a negative or too large int, or a malformed hex string.
    """
    if isinstance(seed, bool):
        raise ValueError("a seed is bytes, 0x-hex or an int, not a bool")
    if isinstance(seed, int):
        if not 0 <= seed < 2**256:
            raise ValueError(f"an int seed must lie in [0, 2**256), got {seed}")
        return seed.to_bytes(32, "big")
    if isinstance(seed, str):
        if not seed.startswith("0x") or len(seed) != 66:
            raise ValueError(f"a hex seed is '0x' and 64 hex digits (32 bytes), got {seed!r}")
        try:
            return bytes.fromhex(seed[2:])
        except ValueError:
            raise ValueError(f"a hex seed is '0x' and 64 hex digits (32 bytes), got {seed!r}") from None
    if isinstance(seed, (bytes, bytearray)):
        if len(seed) != 32:
            raise ValueError(f"a bytes seed must be exactly 32 bytes, got {len(seed)}")
        return bytes(seed)
    raise ValueError(f"a seed is bytes, 0x-hex or an int, got {type(seed).__name__}")


def _draw(seed32: bytes, cls: int, t: int) -> int:
    """r_t = keccak256(seed ‖ uint256(class) ‖ uint256(t)) as a big-endian integer (Solidity's
    ``uint256(keccak256(abi.encodePacked(seed, uint256(c), uint256(t))))``)."""
    return int.from_bytes(keccak(seed32 + cls.to_bytes(32, "big") + t.to_bytes(32, "big")), "big")


def class_sampled_indices(pool_labels, classes: Sequence[int], m: int, seed: Seed) -> np.ndarray:
    """Alg. 2: the pool rows of the class-sampled validation set, m per declared class.

    Deterministic from ``(pool_labels, classes, m, seed)`` and nothing else (no NumPy generator,
    whose algorithms may change between versions), so every miner rebuilds the same rows and
    a contract or another language could too. For each declared class c, in ascending order:

    1. P = the pool indices j with ``pool_labels[j] == c``, ascending; N = len(P).
    2. If N <= m, take all of P (ascending): **a class with fewer than m pool rows contributes
       all its N rows**, so the set then has fewer than m rows of that class.
    3. Otherwise a partial Fisher–Yates shuffle driven by keccak: for t = 0 … m−1, with
       r_t = uint256(keccak256(seed32 ‖ uint256(c) ‖ uint256(t))) (each field 32 bytes
       big-endian), swap P[t] and P[t + (r_t mod (N − t))]; take P[0:m] in draw order. The
       modulo bias is below N / 2²⁵⁶ and is ignored.

    Args:
        pool_labels: ``[N_pool]`` integer labels of the owner's validation pool.
        classes: the device's declared classes (any order; duplicates are an error). A class
            with no pool rows contributes nothing.
        m: points per class, >= 1.
        seed: 32 bytes, 0x-hex or an int in [0, 2²⁵⁶) (see :func:`seed_bytes`); in the protocol
            it is committed in the round's task spec.

    Returns:
        ``[Σ_c min(m, N_c)]`` int64 pool indices, grouped by class in ascending class order.
    """
    if int(m) < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    cls = [int(c) for c in classes]
    if len(set(cls)) != len(cls):
        raise ValueError(f"declared classes must be distinct, got {tuple(cls)}")
    if any(c < 0 for c in cls):
        raise ValueError(f"class ids must be >= 0, got {tuple(cls)}")
    labels = np.asarray(pool_labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"pool labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    s = seed_bytes(seed)
    out: list[np.ndarray] = []
    for c in sorted(cls):
        p = np.flatnonzero(labels == c).astype(np.int64)
        n = len(p)
        if n <= m:
            out.append(p)
            continue
        for t in range(m):
            j = t + _draw(s, c, t) % (n - t)
            p[t], p[j] = p[j], p[t]
        out.append(p[:m].copy())
    return np.concatenate(out) if out else np.zeros((0,), np.int64)


# ------------------------------------------------------------------------- the two acceptance rules


def csves_tr(v_E, times=None) -> tuple[bool, float]:
    """CSVES-Tr (Alg. 3): accept when the least-squares slope of v_E over time is negative.

    .. math::

        β_1 = \\frac{\\sum_r (t_r − \\bar t)(v_r − v_0)}{\\sum_r (t_r − \\bar t)^2}

    (the usual slope; centring v on its first value instead of its mean changes nothing since
    Σ (t_r − t̄) = 0, and makes a flat trajectory's slope exactly 0.0 in floating point).

    Args:
        v_E: ``[R]`` validation errors in recording order.
        times: ``[R]`` recording times; default ``0 … R−1`` (equally spaced records).

    Returns:
        ``(accepted, slope)``: accepted iff β₁ < 0 strictly (a flat trajectory is rejected).
        With fewer than 2 points, or all times equal, no line is defined: ``(False, nan)`` —
        a device that reports no trend has shown no learning, so it is not paid.
    """
    v = np.asarray(v_E, np.float64).reshape(-1)
    t = np.arange(len(v), dtype=np.float64) if times is None else np.asarray(times, np.float64).reshape(-1)
    if len(t) != len(v):
        raise ValueError(f"times has {len(t)} entries, v_E has {len(v)}")
    if len(v) < 2:
        return False, float("nan")
    tc = t - t.mean()
    den = float(np.sum(tc * tc))
    if den == 0.0:
        return False, float("nan")
    slope = float(np.sum(tc * (v - v[0])) / den)
    return slope < 0.0, slope


def csves_th(v_E_or_error, tau: float = DEFAULT_TAU) -> bool:
    """CSVES-Th (Alg. 4): accept when the (last) validation error is below τ, strictly.

    Args:
        v_E_or_error: one error, or a trajectory ``[R]`` whose last entry is used.
        tau: the threshold (the paper's τ = 0.1).

    Returns:
        ``error < tau`` (``error == tau`` is rejected; an empty trajectory or NaN is rejected).
    """
    v = np.asarray(v_E_or_error, np.float64).reshape(-1)
    if v.size == 0:
        return False
    return bool(v[-1] < tau)


# ------------------------------------------------------------------------- errors and training


@partial(jax.jit, static_argnames=("arch",))
def wrong_count(arch: Arch, params: Params, x: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
    """The number of masked rows the model gets wrong (arg-max logit ≠ label).

    Args:
        x: ``[n, d]`` float32 inputs; y: ``[n]`` int32 labels; mask: ``[n]`` bool (False rows
            are padding and never count).

    Returns:
        Scalar int32.
    """
    wrong = (jnp.argmax(apply(arch, params, x), axis=-1) != y) & mask
    return jnp.sum(wrong.astype(jnp.int32))


def validation_error(params: Params, arch: Arch, x, y) -> float:
    """1 − accuracy of ``params`` on ``(x, y)``, as (wrong count) / n in float64.

    Args:
        params: the model (T'_k for CSVES-Th).
        arch: its architecture.
        x: ``[n, d]`` float32 inputs (the class-sampled validation set).
        y: ``[n]`` int labels.

    Returns:
        The error in [0, 1] (an exact ratio: ``k / n`` as a double).
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise ValueError(f"need x [n, d] and y [n] with n >= 1, got {x.shape} and {y.shape}")
    return int(wrong_count(arch, params, x, y, jnp.ones(y.shape, bool))) / int(y.shape[0])


def n_records(n: int, *, epochs: int, batch_size: int, every: int) -> int:
    """len(v_E) of a run: 1 + (epochs · ⌊n / batch_size⌋) / every (the record before training
    plus one per ``every`` steps); a ValueError when ``every`` does not divide the steps."""
    steps = epochs * (n // batch_size)
    if batch_size < 1 or every < 1 or epochs < 1 or steps < 1:
        raise ValueError(f"need epochs, batch_size, every >= 1 and n >= batch_size; got n={n}, "
                         f"epochs={epochs}, batch_size={batch_size}, every={every}")
    if steps % every:
        raise ValueError(f"every={every} must divide the {steps} SGD steps ({epochs} epochs of {n // batch_size})")
    return 1 + steps // every


def trajectory(
    arch: Arch,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    x_val: jax.Array,
    y_val: jax.Array,
    val_mask: jax.Array,
    lr: jax.Array,
    *,
    key: jax.Array,
    epochs: int,
    batch_size: int,
    every: int,
) -> tuple[Params, jax.Array]:
    """One device's local training with its validation-error trajectory, as counts (traceable,
    vmappable; :func:`train_with_trajectory` and :func:`train_many` jit it).

    Minibatch SGD on the mean cross-entropy: each epoch visits a fresh random permutation of
    the n rows in ⌊n / batch_size⌋ batches (a remainder is dropped that epoch). The wrong
    count on the class-sampled set is recorded before the first step and after every
    ``every`` steps.

    Args:
        params: T_k.
        x: ``[n, d]`` float32 device data; y: ``[n]`` int32 labels.
        x_val: ``[n_val, d]`` float32 class-sampled validation inputs; y_val: ``[n_val]`` int32.
        val_mask: ``[n_val]`` bool, False on padding rows.
        lr: scalar float32 learning rate.
        key: PRNG key of the epoch permutations (keyword-only).

    Returns:
        ``(T'_k, wrong)``: the trained parameters and ``[R]`` int32 wrong counts,
        R = :func:`n_records`.
    """
    n = x.shape[0]
    R = n_records(n, epochs=epochs, batch_size=batch_size, every=every) - 1
    spe = n // batch_size
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, epochs))
    batches = perms[:, : spe * batch_size].reshape(R, every, batch_size)
    grad = jax.grad(lambda p, xb, yb: cross_entropy(apply(arch, p, xb), yb))

    def step(p, idx):
        g = grad(p, x[idx], y[idx])
        return {k: p[k] - lr * g[k] for k in p}, None

    def record(p, block):
        p, _ = jax.lax.scan(step, p, block)
        return p, wrong_count(arch, p, x_val, y_val, val_mask)

    first = wrong_count(arch, params, x_val, y_val, val_mask)
    params, rest = jax.lax.scan(record, params, batches)
    return params, jnp.concatenate([first[None], rest])


_STATIC = ("arch", "epochs", "batch_size", "every")
_trajectory = jax.jit(trajectory, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def _trajectories(arch, params, xs, ys, xs_val, ys_val, val_mask, lr, keys, *, epochs, batch_size, every):
    one = lambda x, y, xv, yv, vm, k: trajectory(  # noqa: E731
        arch, params, x, y, xv, yv, vm, lr, key=k, epochs=epochs, batch_size=batch_size, every=every)
    return jax.vmap(one)(xs, ys, xs_val, ys_val, val_mask, keys)


def _errors(wrong, val_mask) -> np.ndarray:
    n_val = np.sum(np.asarray(val_mask), axis=-1, keepdims=True)
    if np.any(n_val == 0):
        raise ValueError("a class-sampled validation set is empty (every val_mask row False)")
    return np.asarray(wrong, np.int64) / n_val


def train_with_trajectory(
    arch: Arch,
    params: Params,
    x,
    y,
    x_val,
    y_val,
    val_mask=None,
    *,
    key: jax.Array,
    epochs: int = 5,
    batch_size: int = 10,
    lr: float = 0.1,
    every: int = 50,
) -> tuple[Params, np.ndarray]:
    """Alg. 1's training: T_k → T'_k by local SGD on ``(x, y)``, recording v_E.

    Args:
        arch: the architecture.
        params: T_k.
        x: ``[n, d]`` float32 device data; y: ``[n]`` int labels.
        x_val: ``[n_val, d]`` class-sampled validation inputs; y_val: ``[n_val]`` labels.
        val_mask: ``[n_val]`` bool (default all True), False on padding rows.
        key: PRNG key of the epoch permutations (keyword-only).
        epochs, batch_size, lr: SGD settings (see :func:`trajectory`).
        every: record the validation error every ``every`` steps (must divide the steps).

    Returns:
        ``(T'_k, v_E)``: the trained parameters and ``[R]`` float64 errors, v_E[0] the error of
        T_k itself and v_E[r] after r·every steps (R = :func:`n_records`).
    """
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    x_val, y_val = jnp.asarray(x_val, jnp.float32), jnp.asarray(y_val, jnp.int32)
    val_mask = jnp.ones(y_val.shape, bool) if val_mask is None else jnp.asarray(val_mask, bool)
    new, wrong = _trajectory(arch, params, x, y, x_val, y_val, val_mask, jnp.float32(lr), key=key,
                             epochs=epochs, batch_size=batch_size, every=every)
    return new, _errors(wrong, val_mask)


def train_many(
    arch: Arch,
    params: Params,
    xs,
    ys,
    xs_val,
    ys_val,
    val_mask=None,
    *,
    keys: jax.Array,
    epochs: int = 5,
    batch_size: int = 10,
    lr: float = 0.1,
    every: int = 50,
) -> tuple[Params, np.ndarray]:
    """:func:`train_with_trajectory` for D devices at once (``jax.vmap`` under one ``jit``).

    Every device starts from the same ``params`` (T_k) and has the same number of rows n; the
    class-sampled sets are padded to one length with ``val_mask``.

    Args:
        xs: ``[D, n, d]`` float32; ys: ``[D, n]`` int labels.
        xs_val: ``[D, n_val, d]``; ys_val: ``[D, n_val]``; val_mask: ``[D, n_val]`` bool.
        keys: ``[D]`` PRNG keys, one per device (keyword-only): device i gives the same result
            as ``train_with_trajectory(..., key=keys[i])`` (up to float reassociation).

    Returns:
        ``(params, v_E)``: stacked ``{name: [D, ...]}`` and ``[D, R]`` float64.
    """
    xs, ys = jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.int32)
    xs_val, ys_val = jnp.asarray(xs_val, jnp.float32), jnp.asarray(ys_val, jnp.int32)
    val_mask = jnp.ones(ys_val.shape, bool) if val_mask is None else jnp.asarray(val_mask, bool)
    if keys.shape[:1] != xs.shape[:1]:
        raise ValueError(f"need one key per device: {xs.shape[0]} devices, keys of shape {keys.shape}")
    new, wrong = _trajectories(arch, params, xs, ys, xs_val, ys_val, val_mask, jnp.float32(lr), keys,
                               epochs=epochs, batch_size=batch_size, every=every)
    return new, _errors(wrong, val_mask)
