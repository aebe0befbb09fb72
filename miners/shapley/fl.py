"""The fast path: the FedAvg round game with prefix values computed the cheap way.

For a permutation π the K prefix models are FedAvg of growing coalitions. Three facts make
all K of them cheap (``docs/shapley.md`` has the derivation and the profile):

1. Prefix aggregates are running sums: with ω-scaled updates, Σ_{i<=j} ω_{π_i} Δ_{π_i} is the
   previous prefix's sum plus one term, and the coefficient is 1/Ω_j, Ω_j = Σ_{i<=j} ω_{π_i}.
2. The first layer is linear in its weights, so the prefix model's first-layer pre-activations
   on the validation set are z_t + (Σ_{i<=j} ω_{π_i} D_{π_i}) / Ω_j with D_k = X ΔW0_k + Δb0_k
   computed once per client (:func:`fl_game`), never X · W0 per prefix.
3. Only the later layers (for the default MLP, one [H, C] matrix) are re-aggregated per prefix,
   and their cost is the skinny product relu(z_j)ᵀ W1_j over the rows.

Layout: rows are split into chunks of ``row_chunk`` and stored transposed, ``D [n_chunks, K,
H, c]``, so the running sum over a chunk ``[P, H, c]`` stays in cache while the scan walks the
K positions, and the second-layer product is ``[C, H] @ [H, c]`` with the long axis innermost.
Permutations are processed ``perm_batch`` at a time (vmapped) so one chunk of D read from
memory serves several permutations; memory is bounded by D itself (K·n·H float32) plus one
chunk of accumulators.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fedcoin.ml.utility import RoundGame, aggregation_weights
from miners.shapley.game import Game


@dataclasses.dataclass(frozen=True)
class _Config:
    n_layers: int
    metric: str
    perm_batch: int
    coalition_batch: int
    unroll: int


def _row_metric(cfg: _Config, logits: jax.Array, onehot: jax.Array) -> jax.Array:
    """Per-row loss (cross-entropy) or correctness (accuracy).

    Args:
        logits: ``[B, C, c]`` (classes on axis 1, rows last).
        onehot: ``[C, c]`` float32 one-hot labels.

    Returns:
        ``[B, c]`` float32.
    """
    if cfg.metric == "neg_cross_entropy":
        m = jnp.max(logits, axis=1, keepdims=True)
        lse = jnp.log(jnp.sum(jnp.exp(logits - m), axis=1)) + m[:, 0, :]
        return lse - jnp.sum(logits * onehot[None], axis=1)
    pred = jnp.argmax(logits, axis=1)
    label = jnp.argmax(onehot, axis=0)
    return (pred == label[None, :]).astype(jnp.float32)


def _finish_layers(cfg: _Config, z: jax.Array, weights: list[tuple[jax.Array, jax.Array]]) -> jax.Array:
    """Logits ``[B, C, c]`` from first-layer pre-activations ``z [B, H, c]``.

    ``weights``: per later layer, ``(Wᵀ [B, out, in], b [B, out])``.
    """
    h = z
    for wt, b in weights:
        h = jnp.einsum("boh,bhc->boc", wt, jax.nn.relu(h)) + b[:, :, None]
    return h


def _value_from_rows(cfg: _Config, total: jax.Array, n: jax.Array) -> jax.Array:
    """Σ_rows (row metric − base row metric) → v: minus for losses, plus for accuracy."""
    if cfg.metric == "neg_cross_entropy":
        return -total / n
    return total / n


def _prefix_batch(cfg: _Config, data: dict, perms: jax.Array) -> jax.Array:
    """Prefix values of ``perms [pb, K]`` → ``[pb, K]`` float32."""
    pb, K = perms.shape
    omega = data["omega"][perms]  # [pb, K]
    inv = 1.0 / jax.lax.associative_scan(jnp.add, omega, axis=1)  # 1/Ω_j
    layers = []
    for wt, b, dwt, db in data["later"]:
        gw = jax.lax.associative_scan(jnp.add, dwt[perms], axis=1)  # [pb, K, out, in]
        gb = jax.lax.associative_scan(jnp.add, db[perms], axis=1)  # [pb, K, out]
        layers.append((wt[None, None] + gw * inv[:, :, None, None], b[None, None] + gb * inv[:, :, None]))

    def chunk(acc, xs):
        dc, zc, oh, rw, base = xs  # [K, H, c], [H, c], [C, c], [c], [c]

        def position(s, j):
            s = s + dc[perms[:, j]]  # [pb, H, c] running ω-weighted sum
            z = s * inv[:, j][:, None, None] + zc[None]
            logits = _finish_layers(cfg, z, [(w[:, j], bb[:, j]) for w, bb in layers])
            rows = _row_metric(cfg, logits, oh)  # [pb, c]
            return s, jnp.sum((rows - base[None]) * rw[None], axis=1)

        s0 = jnp.zeros((pb, *zc.shape), jnp.float32)
        _, per_pos = jax.lax.scan(position, s0, jnp.arange(K, dtype=jnp.int32), unroll=cfg.unroll)
        return acc + per_pos.T, None

    xs = (data["d"], data["z"], data["onehot"], data["row_w"], data["base"])
    total, _ = jax.lax.scan(chunk, jnp.zeros((pb, K), jnp.float32), xs)
    return _value_from_rows(cfg, total, data["n"])


def _batched(fn, batch: int, items: jax.Array) -> jax.Array:
    """Apply ``fn`` to ``items [N, ...]`` in batches of ``batch`` (padding with item 0)."""
    N = items.shape[0]
    nb = -(-N // batch)
    pad = nb * batch - N
    if pad:
        items = jnp.concatenate([items, jnp.broadcast_to(items[:1], (pad, *items.shape[1:]))], axis=0)
    out = jax.lax.map(fn, items.reshape(nb, batch, *items.shape[1:]))
    return out.reshape(nb * batch, *out.shape[2:])[:N]


_CHUNKED = ("d", "z", "onehot", "row_w", "base")  # data entries with a leading row-chunk axis


def _over_rows(mesh: Mesh | None, fn, data: dict, items: jax.Array) -> jax.Array:
    """``fn(data, items)``, or its sum over the row shards of ``mesh`` (values are row sums)."""
    if mesh is None:
        return fn(data, items)
    specs = {k: PartitionSpec("rows") if k in _CHUNKED else PartitionSpec() for k in data}
    local = lambda d, x: jax.lax.psum(fn(d, x), "rows")  # noqa: E731
    return jax.shard_map(local, mesh=mesh, in_specs=(specs, PartitionSpec()), out_specs=PartitionSpec(),
                         check_vma=False)(data, items)


@dataclasses.dataclass(frozen=True)
class _PrefixFn:
    cfg: _Config
    mesh: Mesh | None = None

    def __call__(self, data: dict, perms: jax.Array) -> jax.Array:
        fn = lambda d, ps: _batched(lambda p: _prefix_batch(self.cfg, d, p), self.cfg.perm_batch, ps)  # noqa: E731
        return _over_rows(self.mesh, fn, data, perms)


def _coalition_batch(cfg: _Config, data: dict, masks: jax.Array) -> jax.Array:
    """v of ``masks [B, K]`` bool → ``[B]`` float32 (same arithmetic as the prefix path)."""
    omega = data["omega"]
    mf = masks.astype(jnp.float32)
    tot = mf @ omega  # [B]
    coef = mf / jnp.where(tot > 0, tot, jnp.ones((), jnp.float32))[:, None]  # on ω-scaled deltas
    layers = [
        (wt[None] + jnp.einsum("bk,koi->boi", coef, dwt), b[None] + coef @ db)
        for wt, b, dwt, db in data["later"]
    ]

    def chunk(acc, xs):
        dc, zc, oh, rw, base = xs
        z = zc[None] + jnp.einsum("bk,khc->bhc", coef, dc)
        rows = _row_metric(cfg, _finish_layers(cfg, z, layers), oh)
        return acc + jnp.sum((rows - base[None]) * rw[None], axis=1), None

    xs = (data["d"], data["z"], data["onehot"], data["row_w"], data["base"])
    total, _ = jax.lax.scan(chunk, jnp.zeros((masks.shape[0],), jnp.float32), xs)
    v = _value_from_rows(cfg, total, data["n"])
    return jnp.where(jnp.any(masks, axis=1), v, jnp.zeros((), jnp.float32))


@dataclasses.dataclass(frozen=True)
class _CoalitionFn:
    cfg: _Config
    mesh: Mesh | None = None

    def __call__(self, data: dict, masks: jax.Array) -> jax.Array:
        fn = lambda d, ms: _batched(lambda m: _coalition_batch(self.cfg, d, m), self.cfg.coalition_batch, ms)  # noqa: E731
        return _over_rows(self.mesh, fn, data, masks)


def _singleton_batch(cfg: _Config, data: dict, ks: jax.Array) -> jax.Array:
    """v({k}) for clients ``ks [B]`` int32 → ``[B]`` float32, without the K-wide coalition mix.

    A singleton's aggregate is w_t + Δ_k, so its pre-activations are z_t + D_k (D is ω-scaled:
    divide by ω_k), O(B·H·c) per chunk instead of the coalition path's O(B·K·H·c).
    """
    inv = 1.0 / data["omega"][ks]  # [B]
    layers = [(wt[None] + dwt[ks] * inv[:, None, None], b[None] + db[ks] * inv[:, None])
              for wt, b, dwt, db in data["later"]]

    def chunk(acc, xs):
        dc, zc, oh, rw, base = xs
        z = zc[None] + dc[ks] * inv[:, None, None]
        rows = _row_metric(cfg, _finish_layers(cfg, z, layers), oh)
        return acc + jnp.sum((rows - base[None]) * rw[None], axis=1), None

    xs = (data["d"], data["z"], data["onehot"], data["row_w"], data["base"])
    total, _ = jax.lax.scan(chunk, jnp.zeros(ks.shape, jnp.float32), xs)
    return _value_from_rows(cfg, total, data["n"])


@dataclasses.dataclass(frozen=True)
class _SingletonFn:
    cfg: _Config
    mesh: Mesh | None = None

    def __call__(self, data: dict, ks: jax.Array) -> jax.Array:
        fn = lambda d, x: _batched(lambda b: _singleton_batch(self.cfg, d, b), self.cfg.coalition_batch, x)  # noqa: E731
        return _over_rows(self.mesh, fn, data, ks)


@partial(jax.jit, static_argnums=0)
def _singletons(fn: _SingletonFn, data: dict, ks: jax.Array) -> jax.Array:
    return fn(data, ks)


def _pair_rows_batch(cfg: _Config, data: dict, ks: jax.Array) -> jax.Array:
    """v({k, l}) for clients ``ks [B]`` and every l → ``[B, K]`` float32 (l = k gives v({k})).

    One row k is all K pairs at once: z_t + (D_k + D_l)/(ω_k + ω_l) reads the chunk of D as it
    lies. It evaluates each pair twice (rows k and l) and is still 5× faster (K = 100, 1,000 rows:
    2.2 s vs 11.3 s) than evaluating the K(K−1)/2 pairs once each the singletons' way, which
    gathers a [B, 2, H, c] block per batch; per evaluation it is within 1.1× of a prefix step.
    (A half-circle window per row, each pair once, measured slower: its dynamic slices.)
    """
    omega = data["omega"]
    inv = 1.0 / (omega[ks][:, None] + omega[None, :])  # [B, K]
    layers = [(wt[None, None] + (dwt[ks][:, None] + dwt[None]) * inv[:, :, None, None],
               b[None, None] + (db[ks][:, None] + db[None]) * inv[:, :, None])
              for wt, b, dwt, db in data["later"]]

    def chunk(acc, xs):
        dc, zc, oh, rw, base = xs  # [K, H, c], [H, c], [C, c], [c], [c]

        def row(_, i):
            z = zc[None] + (dc[ks[i]][None] + dc) * inv[i][:, None, None]  # [K, H, c]
            rows = _row_metric(cfg, _finish_layers(cfg, z, [(w[i], bb[i]) for w, bb in layers]), oh)
            return None, jnp.sum((rows - base[None]) * rw[None], axis=1)

        _, per = jax.lax.scan(row, None, jnp.arange(ks.shape[0]))
        return acc + per, None

    xs = (data["d"], data["z"], data["onehot"], data["row_w"], data["base"])
    total, _ = jax.lax.scan(chunk, jnp.zeros((ks.shape[0], omega.shape[0]), jnp.float32), xs)
    return _value_from_rows(cfg, total, data["n"])


def _pair_values(fn: "_PairRowsFn", data: dict, K: int) -> np.ndarray:
    """``[K, K]`` float64 v({k, l}) for k ≠ l (0 on the diagonal), symmetric (the mean of rows k and l)."""
    full = np.asarray(_pair_rows(fn, data, jnp.arange(K, dtype=jnp.int32)), np.float64)
    out = (full + full.T) / 2
    np.fill_diagonal(out, 0.0)
    return out


@dataclasses.dataclass(frozen=True)
class _PairRowsFn:
    cfg: _Config
    mesh: Mesh | None = None

    def __call__(self, data: dict, ks: jax.Array) -> jax.Array:
        fn = lambda d, x: _batched(lambda b: _pair_rows_batch(self.cfg, d, b), 4, x)  # noqa: E731
        return _over_rows(self.mesh, fn, data, ks)


@partial(jax.jit, static_argnums=0)
def _pair_rows(fn: _PairRowsFn, data: dict, ks: jax.Array) -> jax.Array:
    return fn(data, ks)


#: ``control_variate=True`` picks the pairwise game up to this K (its K² pair-row evaluations
#: cost about K permutations), the weighted-mean game above it.
PAIRWISE_MAX_K = 300

#: the names ``fl_game``'s ``control_variate`` takes besides ``True``/``False`` (and the miner's CLI offers)
CONTROL_VARIATES = ("auto", "pairwise", "linear", "none")


def _control_variate_kind(control_variate, n_players: int) -> str | None:
    if control_variate is False or control_variate is None or control_variate == "none":
        return None
    if control_variate is True or control_variate == "auto":
        return "pairwise" if n_players <= PAIRWISE_MAX_K else "linear"
    if control_variate in ("pairwise", "linear"):
        return control_variate
    raise ValueError(f"control_variate must be a bool or one of {', '.join(CONTROL_VARIATES)}; got {control_variate!r}")


def default_sampler(control_variate, n_players: int) -> str:
    """The sampler that suits ``fl_game(..., control_variate=...)`` for K = ``n_players``.

    ``"plain"`` for the pairwise game: its residual v − q has no position effect left for
    strata to remove, and cyclic shifts (which keep each client's neighbours) and reversals
    correlate the residuals inside a block — on the K = 100 benchmark round antithetic-stratified
    blocks needed 4.5× the permutations of plain ones at equal error (docs/shapley.md).
    ``"antithetic_stratified"`` otherwise, where positions carry most of the variance.
    """
    return "plain" if _control_variate_kind(control_variate, n_players) == "pairwise" else "antithetic_stratified"


def _with_control_variate(game: Game, kind: str, cfg: _Config, mesh: Mesh | None, data: dict,
                          omega: jax.Array) -> Game:
    from miners.shapley.control import with_control_variate, with_pairwise_control_variate

    K = game.n_players
    scores = _singletons(_SingletonFn(cfg, mesh), data, jnp.arange(K, dtype=jnp.int32))
    if kind == "linear":
        return with_control_variate(game, weights=omega, scores=scores)
    pv = _pair_values(_PairRowsFn(cfg, mesh), data, K)  # every pair, inactive ones too (ignored)
    return with_pairwise_control_variate(game, scores=scores, pair_values=pv)


@jax.jit
def _first_layer(x_chunks: jax.Array, w0: jax.Array, b0: jax.Array, dw0: jax.Array, db0: jax.Array,
                 omega: jax.Array):
    """Per-chunk base and ω-scaled per-client first-layer pre-activations, transposed."""

    def one(xc):  # [c, d]
        z = (xc @ w0).T + b0[:, None]  # [H, c]
        d = jnp.einsum("kdh,cd->khc", dw0, xc) + db0[:, :, None]  # [K, H, c]
        return z, d * omega[:, None, None]

    return jax.lax.map(one, x_chunks)


def fl_game(
    game: RoundGame,
    *,
    row_chunk: int = 256,
    perm_batch: int = 8,
    coalition_batch: int = 256,
    unroll: int = 2,
    control_variate: bool | str = False,
    devices: Sequence[jax.Device] | None = None,
) -> Game:
    """The round's game with the fast prefix and coalition functions.

    Precomputes, once per round, the base pre-activations z_t and each client's ω-scaled
    first-layer pre-activation delta ω_k (X ΔW0_k + Δb0_k): K·n·d1 float32 (K = 100, n = 10,000,
    d1 = 200: 800 MB; this is the dominant memory), costing K·n·d0·d1 multiply-adds once.

    Args:
        game: the round (:class:`fedcoin.ml.utility.RoundGame`).
        row_chunk: validation rows per chunk (padded rows carry weight 0). Pick it so
            ``perm_batch · d1 · row_chunk`` float32 accumulators stay in L2 cache.
        perm_batch: permutations evaluated together per chunk of D.
        coalition_batch: coalitions per batch in the exact path.
        unroll: unrolling of the scan over positions.
        control_variate: sample v minus a cheap game with exactly known Shapley values, which
            are added back (unbiased). ``"pairwise"``: the game through every singleton and pair
            (:func:`miners.shapley.control.with_pairwise_control_variate`; K + K² extra
            evaluations, about K permutations' worth; on real rounds about 30× less variance
            than ``"linear"``). ``"linear"``: the weighted mean of singletons
            (:func:`miners.shapley.control.with_control_variate`; K evaluations). ``True`` or
            ``"auto"``: pairwise up to :data:`PAIRWISE_MAX_K` clients, else linear.
            ``False`` or ``"none"``: v itself.
        devices: devices to split the row chunks over (default ``jax.devices()``). With more
            than one, each holds its share of D and the per-prefix row sums are ``psum``-ed:
            several GPUs, or the cores of a CPU exposed as host devices with
            ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before JAX starts (XLA
            runs one device's loop on one core). Results equal the single-device ones up to
            float32 summation order.

    Returns:
        A :class:`miners.shapley.game.Game` (prefix and coalition functions).
    """
    arch = game.arch
    n = game.n_val
    devices = list(jax.devices() if devices is None else devices)
    n_dev = len(devices)
    c = int(min(row_chunk, -(-n // n_dev)))
    n_chunks = -(-(-(-n // c)) // n_dev) * n_dev  # whole chunks, a multiple of the device count
    pad = n_chunks * c - n
    x = jnp.concatenate([game.x, jnp.zeros((pad, game.x.shape[1]), jnp.float32)]) if pad else game.x
    y = jnp.concatenate([game.y, jnp.zeros((pad,), jnp.int32)]) if pad else game.y
    row_w = (jnp.arange(n_chunks * c) < n).astype(jnp.float32).reshape(n_chunks, c)
    omega = aggregation_weights(game)
    mesh = Mesh(np.array(devices), ("rows",)) if n_dev > 1 else None
    first = (game.params["w0"], game.params["b0"], game.updates["w0"], game.updates["b0"], omega)
    x_chunks = x.reshape(n_chunks, c, -1)
    if mesh is None:
        z, d = _first_layer(x_chunks, *first)
    else:
        # each device computes its own row chunks of D, so D never exists whole on one device
        # (K = 1000, 10,000 rows, H = 200: 8 GB, which a second copy would double)
        per = n_chunks // n_dev
        parts = [_first_layer(*jax.device_put((x_chunks[i * per:(i + 1) * per], *first), dev))
                 for i, dev in enumerate(devices)]
        rows = NamedSharding(mesh, PartitionSpec("rows"))
        z, d = (jax.make_array_from_single_device_arrays((n_chunks, *parts[0][j].shape[1:]), rows,
                                                         [p[j] for p in parts]) for j in (0, 1))
        del parts
    later = []
    for i in range(1, arch.n_layers):
        later.append((
            game.params[f"w{i}"].T,
            game.params[f"b{i}"],
            jnp.swapaxes(game.updates[f"w{i}"], 1, 2) * omega[:, None, None],
            game.updates[f"b{i}"] * omega[:, None],
        ))
    onehot = jnp.swapaxes(jax.nn.one_hot(y.reshape(n_chunks, c), arch.num_classes, dtype=jnp.float32), 1, 2)
    cfg = _Config(arch.n_layers, game.metric, int(perm_batch), int(coalition_batch), int(unroll))
    base_layers = [(wt[None], b[None]) for wt, b, _, _ in later]
    base = jax.vmap(lambda zc, oh: _row_metric(cfg, _finish_layers(cfg, zc[None], base_layers), oh)[0])(z, onehot)
    data = {
        "d": d,
        "z": z,
        "onehot": onehot,
        "row_w": row_w,
        "base": base,
        "omega": omega,
        "later": later,
        "n": jnp.asarray(n, jnp.float32),
    }
    if mesh is not None:
        data = {
            k: jax.device_put(v, NamedSharding(mesh, PartitionSpec("rows") if k in _CHUNKED else PartitionSpec()))
            for k, v in data.items()
        }
    out = Game(game.n_players, data, _PrefixFn(cfg, mesh), _CoalitionFn(cfg, mesh), name=f"fl-{arch.id}")
    kind = _control_variate_kind(control_variate, game.n_players)
    if kind is not None:
        out = _with_control_variate(out, kind, cfg, mesh, data, omega)
    return out


def preactivation_bytes(n_players: int, n_val: int, hidden: int) -> int:
    """Bytes of the per-client pre-activation table D (the fast path's memory floor)."""
    return 4 * n_players * n_val * hidden


__all__ = ["CONTROL_VARIATES", "PAIRWISE_MAX_K", "default_sampler", "fl_game", "preactivation_bytes"]
