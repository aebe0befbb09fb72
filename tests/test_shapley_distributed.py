"""Sampling over a local Ray cluster with two workers = one process drawing the same blocks."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from miners.shapley import estimate, fl_game, init_state, step
from miners.shapley.distributed import sample_like_workers, worker_key
from miners.shapley.incremental import merge_states
from shapley_fixtures import MLP_SMALL, make_round


def test_merged_states_equal_one_state_over_all_blocks():
    game = fl_game(make_round(MLP_SMALL, 6, n_val=40), row_chunk=16, control_variate=True)
    key = jax.random.key(3)
    a = step(game, init_state(6, offset=game.offset), key=worker_key(key, 0, 0), n_perms=12, sampler="antithetic")
    b = step(game, init_state(6, offset=game.offset), key=worker_key(key, 1, 0), n_perms=20, sampler="antithetic")
    merged = merge_states(a, b)
    # the same blocks folded into one state by step's own (device-side) merge
    one = step(game, init_state(6, offset=game.offset), key=worker_key(key, 0, 0), n_perms=12, sampler="antithetic")
    one = step(game, one, key=worker_key(key, 1, 0), n_perms=20, sampler="antithetic")
    assert int(merged.n_perms) == 32 and int(merged.n_blocks) == 16 and int(merged.n_evals) == 32 * 6
    np.testing.assert_allclose(np.asarray(merged.mean), np.asarray(one.mean), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(merged.m2), np.asarray(one.m2), rtol=1e-4, atol=1e-9)
    ea, eo = estimate(merged), estimate(one)
    np.testing.assert_allclose(ea.phi, eo.phi, rtol=1e-5, atol=1e-7)
    assert ea.err_p == pytest.approx(eo.err_p, rel=1e-4)
    with pytest.raises(ValueError, match="offsets"):
        merge_states(a, init_state(6))


def _listening() -> set:
    """Listening TCP sockets of this process and its children (the local Ray cluster's)."""
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    pids = {me.pid} | {c.pid for c in me.children(recursive=True)}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def test_two_ray_workers_give_the_single_process_state_on_the_same_permutations():
    ray = pytest.importorskip("ray")
    from miners.shapley import distributed

    rg = make_round(MLP_SMALL, 6, n_val=40)
    key = jax.random.key(9)
    before = _listening()
    distributed.connect("auto", num_cpus=2)
    try:
        new = _listening() - before
        assert new and all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip, _ in new), new  # loopback only
        workers = distributed.start_workers(rg, n_workers=2, sampler="antithetic", fl_kwargs={"row_chunk": 16})
        pids = {ray.get(w.info.remote())["pid"] for w in workers}
        assert len(pids) == 2  # two processes
        res = distributed.run_until(rg, key=key, D=0.0, workers=workers, max_perms=48, perms_per_step=12,
                                    sampler="antithetic")
        # what the miner loop holds per round with --ray: starts its workers once, then resumes
        rgame = distributed.RayGame(rg, "auto", n_workers=2)
        first = rgame.run_until(key=key, D=0.0, max_perms=8, sampler="antithetic", perms_per_step=4)
        again = rgame.run_until(key=jax.random.key(1), D=0.0, max_perms=16, sampler="antithetic", perms_per_step=4)
        assert (first.iterations, again.iterations) == (8, 16)  # the workers kept their states
    finally:
        distributed.shutdown()
    assert res.iterations == 48 and res.reason == "max_perms"
    single = sample_like_workers(fl_game(rg, row_chunk=16, control_variate=True), key=key, n_workers=2, steps=2,
                                 n_perms=12, sampler="antithetic")
    assert int(res.state.n_blocks) == int(single.n_blocks) == 24
    np.testing.assert_allclose(np.asarray(res.state.mean), np.asarray(single.mean), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(res.state.m2), np.asarray(single.m2), rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(res.phi, estimate(single).phi, rtol=1e-5, atol=1e-7)


def test_the_miner_cli_takes_a_ray_address():
    import argparse

    from miners.cli import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    assert parser.parse_args(["--ray", "auto"]).ray == "auto"
    assert parser.parse_args([]).ray is None  # default: sample in this process, Ray not imported
