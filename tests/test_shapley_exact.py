"""Exact Shapley: closed-form games, the axioms on FL rounds, and the fast coalition path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.ml.utility import utility_jit
from miners.shapley import (
    additive_game,
    additive_shapley,
    airport_game,
    airport_shapley,
    coalition_table,
    exact_shapley,
    fl_game,
    from_coalition_fn,
)
from shapley_fixtures import LOGREG_SMALL, MLP_SMALL, make_round, with_updates

ARCHS = [LOGREG_SMALL, MLP_SMALL]


def test_additive_game_values_are_the_weights():
    w = np.array([0.5, -1.25, 2.0, 0.0, 3.5])
    np.testing.assert_allclose(exact_shapley(additive_game(w)), additive_shapley(w), atol=1e-6)


def test_airport_game_matches_littlechild_owen():
    costs = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    np.testing.assert_allclose(exact_shapley(airport_game(costs)), airport_shapley(costs), atol=1e-5)


def test_any_coalition_function_is_accepted():
    # A symmetric game v(C) = |C|^2: every player gets K.
    game = from_coalition_fn(6, lambda data, m: jnp.sum(m.astype(jnp.float32), axis=1) ** 2)
    np.testing.assert_allclose(exact_shapley(game), np.full(6, 6.0), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.id)
@pytest.mark.parametrize("metric", ["neg_cross_entropy", "accuracy"])
def test_fast_coalition_values_equal_the_reference_utility(arch, metric):
    game = make_round(arch, 5, metric=metric, n_val=50)
    fast = fl_game(game, row_chunk=16, coalition_batch=8)  # 50 rows: 4 chunks, 14 padded rows
    table = coalition_table(fast, batch_size=32)
    ints = np.arange(32)
    masks = ((ints[:, None] >> np.arange(5)[None, :]) & 1).astype(bool)
    ref = np.array([float(utility_jit(game, jnp.asarray(m))) for m in masks])
    np.testing.assert_allclose(table, ref, rtol=1e-6, atol=3e-6)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.id)
def test_exact_values_are_efficient(arch):
    game = make_round(arch, 6)
    phi = exact_shapley(fl_game(game, row_chunk=32))
    v_all = float(utility_jit(game, jnp.ones(6, bool)))
    assert phi.sum() == pytest.approx(v_all, abs=1e-5)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.id)
def test_identical_updates_get_equal_values_and_a_zero_update_gets_zero(arch):
    game = make_round(arch, 5, aggregation="fedavg-uniform")
    # client 1 := client 3 (symmetry; uniform weights so their data costs do not differ),
    # client 4 := 0 ... is *not* a null player under FedAvg (it dilutes the average), so the
    # null-player check uses an additive game below and a zero-weight-free formulation here:
    upd = {n: u.at[1].set(u[3]) for n, u in game.updates.items()}
    phi = exact_shapley(fl_game(with_updates(game, upd), row_chunk=32))
    assert phi[1] == pytest.approx(phi[3], abs=1e-6)


def test_a_null_player_gets_zero():
    # In the FL game a zero update still changes the average (it dilutes the others); the null
    # player axiom is checked on a game where a player never changes any coalition's value.
    game = from_coalition_fn(
        5, lambda w, m: jnp.max(jnp.where(m[:, :4], w[None, :], jnp.zeros((), jnp.float32)), axis=1),
        jnp.array([1.0, 3.0, 2.0, 5.0]),
    )
    phi = exact_shapley(game)
    assert phi[4] == pytest.approx(0.0, abs=1e-7)
    assert phi.sum() == pytest.approx(5.0, abs=1e-6)


def test_exact_enumeration_checks_its_limit():
    with pytest.raises(ValueError, match="K <= 25"):
        exact_shapley(additive_game(np.ones(26)))

