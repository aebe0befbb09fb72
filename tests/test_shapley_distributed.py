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
    import psutil

    me = psutil.Process()
    pids = {me.pid} | {c.pid for c in me.children(recursive=True)}
    return {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids}


def ray_cluster_run(out: str) -> None:
    """The child process's body: a local Ray cluster of two workers through ``RayGame`` (what the
    miner holds per round with ``--ray``), its merged state written to ``out`` (npz)."""
    import ray

    from miners.shapley import distributed

    rg = make_round(MLP_SMALL, 6, n_val=40)
    key = jax.random.key(9)
    before = _listening()
    distributed.connect("auto", num_cpus=2)
    try:
        new = _listening() - before
        loopback = bool(new) and all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip, _ in new)
        rgame = distributed.RayGame(rg, "auto", n_workers=2, fl_kwargs={"row_chunk": 16})
        first = rgame.run_until(key=key, D=0.0, max_perms=24, sampler="antithetic", perms_per_step=12)
        pids = {ray.get(w.info.remote())["pid"] for w in rgame.workers}
        res = rgame.run_until(key=key, D=0.0, max_perms=48, sampler="antithetic", perms_per_step=12)
    finally:
        distributed.shutdown()
    np.savez(out, loopback=loopback, listening=str(sorted(new)), processes=len(pids), first=first.iterations,
             iterations=res.iterations, reason=res.reason, n_blocks=int(res.state.n_blocks),
             mean=np.asarray(res.state.mean), m2=np.asarray(res.state.m2), phi=np.asarray(res.phi))


def test_two_ray_workers_give_the_single_process_state_on_the_same_permutations(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    pytest.importorskip("ray")  # the `ray` extra: `make setup` installs it
    out = tmp_path / "ray.npz"
    here = os.path.dirname(__file__)
    # the cluster lives in its own process group: a hung cluster fails this test after the
    # timeout instead of blocking the suite (a blocked ray.get ignores pytest-timeout's signal)
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {here!r}); import test_shapley_distributed as t; "
                               f"t.ray_cluster_run({str(out)!r})"],
        cwd=os.path.dirname(here), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        log, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail("the local Ray cluster did not finish in 240 s:\n" + log[-3000:])
    assert proc.returncode == 0, log[-3000:]
    got = np.load(out)
    assert bool(got["loopback"]), got["listening"]  # the cluster listens on loopback only
    assert int(got["processes"]) == 2  # two worker processes
    assert (int(got["first"]), int(got["iterations"])) == (24, 48)  # the workers kept their states
    assert str(got["reason"]) == "max_perms"
    # worker w's step t draws worker_key(key, w, t): steps 0 and 1 of both workers, merged
    rg = make_round(MLP_SMALL, 6, n_val=40)
    single = sample_like_workers(fl_game(rg, row_chunk=16, control_variate=True), key=jax.random.key(9), n_workers=2,
                                 steps=2, n_perms=12, sampler="antithetic")
    assert int(got["n_blocks"]) == int(single.n_blocks) == 24
    np.testing.assert_allclose(got["mean"], np.asarray(single.mean), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["m2"], np.asarray(single.m2), rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(got["phi"], estimate(single).phi, rtol=1e-5, atol=1e-7)


def test_the_miner_cli_takes_a_ray_address():
    import argparse

    from miners.cli import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    assert parser.parse_args(["--ray", "auto"]).ray == "auto"
    assert parser.parse_args([]).ray is None  # default: sample in this process, Ray not imported
