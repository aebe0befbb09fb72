"""The fast path split over several devices (CPU cores as host devices) gives the same values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.getcwd())
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    from fedcoin.ml.utility import utility_jit
    from miners.shapley import fl_game, paper_alg1, permutation_marginals, sample_permutations, coalition_table
    sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
    from shapley_fixtures import MLP_SMALL, make_round
    game = make_round(MLP_SMALL, 5, n_val=50)
    key = jax.random.key(4)
    S, _ = paper_alg1(lambda m: utility_jit(game, jnp.asarray(m)), 5, key=key, n_iter=3)
    sharded = fl_game(game, row_chunk=8, perm_batch=2, coalition_batch=8)
    single = fl_game(game, row_chunk=8, perm_batch=2, coalition_batch=8, devices=jax.devices()[:1])
    marg = np.asarray(permutation_marginals(sharded, sample_permutations(3, 5, key=key)), np.float64)
    print(json.dumps({
        "n_devices": len(jax.devices()),
        "alg1_diff": float(np.abs(marg.mean(0) - S).max()),
        "table_diff": float(np.abs(coalition_table(sharded, batch_size=32) - coalition_table(single, batch_size=32)).max()),
    }))
    """
)


def test_row_chunks_split_over_two_host_devices_give_algorithm_1_values():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["n_devices"] == 2
    assert r["alg1_diff"] < 2e-5
    assert r["table_diff"] < 2e-5
