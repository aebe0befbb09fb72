"""FedAvg: the aggregation maths on its own, local SGD under jit/vmap, and real training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.ml.models import Arch, init_params
from fl_server.data import load_digits
from fedcoin.ml.fedavg import RULES, Aggregation, aggregate_all, init_key, round_key, stack
from fedcoin.ml.utility import RoundGame, aggregate, game_coefficients
from fl_server.fedavg import ClientBatch, FedAvg, local_sgd, local_updates, run_fedavg
from fl_server.partition import partition

ARCH = Arch("mlp", (64, 16, 10))


def _deltas(k, seed=0):
    keys = jax.random.split(jax.random.key(seed), k)
    return [init_params(ARCH, key=kk) for kk in keys]


@pytest.mark.parametrize("n_k", [[1, 1, 1], [10, 30, 60], [500, 1, 7]])
def test_weighted_fedavg_equals_the_weighted_mean(n_k):
    w = init_params(ARCH, key=jax.random.key(9))
    ds = _deltas(3)
    out = aggregate_all(w, ds, jnp.asarray(n_k), rule="fedavg-weighted")
    for name in w:
        ref = np.asarray(w[name], np.float64) + sum(
            n * np.asarray(d[name], np.float64) for n, d in zip(n_k, ds)) / sum(n_k)
        np.testing.assert_allclose(np.asarray(out[name]), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rule", RULES)
def test_the_servers_aggregate_is_the_utilitys_grand_coalition_bit_for_bit(rule):
    w = init_params(ARCH, key=jax.random.key(3))
    ds = stack(_deltas(5, seed=4))
    n_k = jnp.asarray([17.0, 3.0, 250.0, 1.0, 64.0])
    server = FedAvg(ARCH, rule=rule).aggregate_fit(0, w, ds, n_k)
    x = jnp.zeros((2, 64), jnp.float32)
    game = RoundGame.create(ARCH, w, ds, n_k, x, jnp.zeros(2, jnp.int32), aggregation=rule)
    grand = jax.jit(lambda g: aggregate(g.params, g.updates, game_coefficients(g, jnp.ones(5, bool))))(game)
    for name in w:
        assert np.array_equal(np.asarray(server[name]), np.asarray(grand[name])), name


def test_uniform_rule_ignores_data_costs():
    w = init_params(ARCH, key=jax.random.key(1))
    ds = _deltas(2)
    a = aggregate_all(w, ds, jnp.asarray([1, 1000]), rule="fedavg-uniform")
    b = aggregate_all(w, ds, jnp.asarray([5, 5]), rule="fedavg-weighted")
    for name in w:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), rtol=1e-6, atol=1e-7)


def test_rule_names_map_to_the_contracts_codes():
    assert [Aggregation.from_rule(r) for r in RULES] == [Aggregation.WEIGHTED, Aggregation.UNIFORM]
    assert Aggregation.UNIFORM.rule == "fedavg-uniform" and int(Aggregation.WEIGHTED) == 0
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        Aggregation.from_rule("median")


def test_one_client_gets_its_own_update_and_bad_input_is_refused():
    w = init_params(ARCH, key=jax.random.key(1))
    (d,) = _deltas(1)
    out = aggregate_all(w, [d], jnp.asarray([42]))
    for name in w:
        np.testing.assert_allclose(np.asarray(out[name]), np.asarray(w[name] + d[name]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="positive"):
        aggregate_all(w, [d], jnp.asarray([0]))
    with pytest.raises(ValueError, match="unknown aggregation rule"):
        aggregate_all(w, [d], jnp.asarray([1]), rule="median")
    with pytest.raises(ValueError, match="expected"):
        stack([d, {"w0": d["w0"]}])


def test_round_keys_do_not_depend_on_the_number_of_rounds_and_differ_per_round():
    key = jax.random.key(7)
    k3 = [jax.random.key_data(round_key(key, r)) for r in range(3)]
    assert np.array_equal(np.asarray(k3[2]), np.asarray(jax.random.key_data(round_key(key, 2))))
    assert len({bytes(np.asarray(k)) for k in k3}) == 3
    assert not np.array_equal(np.asarray(jax.random.key_data(init_key(key))), np.asarray(k3[0]))


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
    assert hist.accuracy[-1] > 0.8
    assert hist.accuracy[-1] > hist.accuracy[0] + 0.1  # it learned over the rounds, not at init
    assert hist.loss[-1] < hist.loss[0]
    assert params["w0"].dtype == jnp.float32
