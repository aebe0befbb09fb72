"""FedAvg: the aggregation maths on its own, local SGD under jit/vmap, and real training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.models import Arch, init_params
from fl_server.data import load_digits
from fl_server.fedavg import (
    ClientBatch,
    FedAvg,
    aggregate,
    local_sgd,
    local_updates,
    run_fedavg,
    stack,
    weighted_mean,
)
from fl_server.partition import partition

ARCH = Arch("mlp", (64, 16, 10))


def _deltas(k, seed=0):
    keys = jax.random.split(jax.random.key(seed), k)
    return [init_params(ARCH, key=kk) for kk in keys]


@pytest.mark.parametrize("n_k", [[1, 1, 1], [10, 30, 60], [500, 1, 7]])
def test_weighted_fedavg_equals_the_weighted_mean(n_k):
    w = init_params(ARCH, key=jax.random.key(9))
    ds = _deltas(3)
    out = aggregate(w, ds, jnp.asarray(n_k), rule="fedavg-weighted")
    for name in w:
        ref = np.asarray(w[name], np.float64) + sum(
            n * np.asarray(d[name], np.float64) for n, d in zip(n_k, ds)) / sum(n_k)
        np.testing.assert_allclose(np.asarray(out[name]), ref, rtol=1e-5, atol=1e-6)


def test_uniform_rule_ignores_data_costs():
    w = init_params(ARCH, key=jax.random.key(1))
    ds = _deltas(2)
    a = aggregate(w, ds, jnp.asarray([1, 1000]), rule="fedavg-uniform")
    b = aggregate(w, ds, jnp.asarray([5, 5]), rule="fedavg-weighted")
    for name in w:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), rtol=1e-6, atol=1e-7)


def test_one_client_gets_its_own_update_and_bad_input_is_refused():
    w = init_params(ARCH, key=jax.random.key(1))
    (d,) = _deltas(1)
    out = aggregate(w, [d], jnp.asarray([42]))
    for name in w:
        np.testing.assert_allclose(np.asarray(out[name]), np.asarray(w[name] + d[name]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="positive"):
        aggregate(w, [d], jnp.asarray([0]))
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        aggregate(w, [d], jnp.asarray([1]), rule="median")
    with pytest.raises(ValueError, match="expected"):
        stack([d, {"w0": d["w0"]}])


def test_weighted_mean_is_jitted_and_linear():
    st = stack(_deltas(4))
    a = weighted_mean(st, jnp.asarray([1.0, 2.0, 3.0, 4.0], jnp.float32))
    b = weighted_mean(st, jnp.asarray([2.0, 4.0, 6.0, 8.0], jnp.float32))
    for name in a:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), rtol=1e-6, atol=1e-7)


def test_vmapped_local_updates_match_one_client_at_a_time():
    s = load_digits()
    part = partition(s.train, num_clients=3, samples_per_client=[20, 30, 25], seed=0)
    batch = ClientBatch.from_clients(part.clients)
    w = init_params(ARCH, key=jax.random.key(0))
    key = jax.random.key(5)
    lr = jnp.float32(0.3)
    deltas = local_updates(ARCH, w, jnp.asarray(batch.x), jnp.asarray(batch.y), jnp.asarray(batch.n), lr,
                           key=key, steps=5, batch_size=8)
    for i, k in enumerate(jax.random.split(key, 3)):
        local = local_sgd(ARCH, w, jnp.asarray(batch.x[i]), jnp.asarray(batch.y[i]), jnp.asarray(batch.n[i]), lr,
                          key=k, steps=5, batch_size=8)
        for name in w:
            np.testing.assert_allclose(np.asarray(deltas[name][i]), np.asarray(local[name] - w[name]), atol=1e-6)


def test_local_sgd_never_reads_padding_rows():
    s = load_digits()
    x = np.zeros((10, 64), np.float32)
    y = np.zeros(10, np.int32)
    x[:4], y[:4] = s.train.x[:4], s.train.y[:4]
    w = init_params(ARCH, key=jax.random.key(0))
    args = (jnp.int32(4), jnp.float32(0.5))
    a = local_sgd(ARCH, w, jnp.asarray(x), jnp.asarray(y), *args, key=jax.random.key(1), steps=6, batch_size=5)
    x[4:], y[4:] = 123.0, 7  # garbage in the padding must not matter
    b = local_sgd(ARCH, w, jnp.asarray(x), jnp.asarray(y), *args, key=jax.random.key(1), steps=6, batch_size=5)
    for name in a:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name]))


def test_fedavg_learns_real_digits_and_records_per_round_metrics():
    s = load_digits()
    part = partition(s.train, num_clients=10, samples_per_client=60, seed=0)
    strategy = FedAvg(Arch("logreg", (64, 10)), lr=0.5, local_steps=20, batch_size=20)
    params, hist = run_fedavg(strategy, part.clients, rounds=8, key=jax.random.key(0), eval_data=s.test)
    assert [r["round"] for r in hist.rounds] == list(range(8))
    assert hist.accuracy[-1] > 0.8 > hist.accuracy[0] - 0.3
    assert hist.loss[-1] < hist.loss[0]
    assert params["w0"].dtype == jnp.float32
