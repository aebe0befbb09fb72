"""Where the fast path's time goes: the inner loop of ``miners.shapley.fl`` by ablation.

Runs the per-chunk scan over K positions (the fast path's inner loop, same layout: D chunk
``[K, H, c]`` transposed, ``perm_batch`` permutations vmapped) with stages switched on one at a
time, and prints one JSON line per stage with the time per (permutation, prefix) and the
projected ms per permutation at ``--rows`` validation rows:

* ``running_sum``: s += ω·D[π_j] (the cumsum over clients, in cache),
* ``+second_layer``: z = s/Ω_j + z_t, relu, the skinny product W1_jᵀ [C, H] @ relu(z) [H, c],
* ``+cross_entropy``: log-softmax over C classes and the label pick (the full step).

Usage: ``python benchmarks/shapley_profile.py [--hidden 128] [--rows 10000]``.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--row-chunk", type=int, default=256)
    ap.add_argument("--perm-batch", type=int, default=8)
    ap.add_argument("--rows", type=int, default=10_000)
    a = ap.parse_args()
    K, H, C, c, P = a.K, a.hidden, a.classes, a.row_chunk, a.perm_batch
    rng = np.random.default_rng(0)
    d = jnp.asarray(rng.normal(size=(K, H, c)).astype(np.float32) * 0.1)
    z = jnp.asarray(rng.normal(size=(H, c)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(P, K, C, H)).astype(np.float32) * 0.1)
    b = jnp.asarray(rng.normal(size=(P, K, C)).astype(np.float32) * 0.1)
    oh = jax.nn.one_hot(jnp.asarray(rng.integers(0, C, size=(c,))), C, dtype=jnp.float32, axis=0)
    inv = jnp.asarray((1.0 / np.arange(1, K + 1)).astype(np.float32))
    perms = jnp.asarray(np.stack([rng.permutation(K) for _ in range(P)]).astype(np.int32))

    def run(stage):
        @jax.jit
        def f(perms):
            def step(s, j):
                s = s + d[perms[:, j]]
                if stage == "running_sum":
                    return s, jnp.sum(s[:, 0, :8], axis=-1)
                h = jax.nn.relu(s * inv[j] + z[None])
                lg = jnp.einsum("poh,phc->poc", w[:, j], h) + b[:, j][:, :, None]
                if stage == "+second_layer":
                    return s, jnp.sum(lg[:, 0, :], axis=-1)
                m = jnp.max(lg, axis=1, keepdims=True)
                lse = jnp.log(jnp.sum(jnp.exp(lg - m), axis=1)) + m[:, 0, :]
                return s, jnp.sum(lse - jnp.sum(lg * oh[None], axis=1), axis=-1)

            return jax.lax.scan(step, jnp.zeros((P, H, c), jnp.float32), jnp.arange(K, dtype=jnp.int32), unroll=2)[1]

        f(perms).block_until_ready()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(10):
                f(perms).block_until_ready()
            best = min(best, (time.perf_counter() - t0) / 10)
        return best / (P * K)

    load = open("/proc/loadavg").read().split()[:3]
    prev = 0.0
    for stage in ("running_sum", "+second_layer", "+cross_entropy"):
        t = run(stage)
        print(json.dumps({
            "stage": stage, "K": K, "hidden": H, "row_chunk": c, "perm_batch": P, "rows": a.rows,
            "us_per_perm_prefix": round(1e6 * t, 2), "stage_us": round(1e6 * (t - prev), 2),
            "ms_per_perm_projected": round(1e3 * t * K * a.rows / c, 1),
            # FLOP rate of the skinny product over its own stage time (relu/scale included)
            "second_layer_gflops": round(2 * c * H * C / (t - prev) / 1e9, 1) if stage == "+second_layer" else None,
            "loadavg": load, "device": jax.devices()[0].platform,
        }), flush=True)
        prev = t


if __name__ == "__main__":
    main()
