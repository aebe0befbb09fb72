"""GTG-Shapley (the FL baseline): guided permutations, truncation, the loop as published vs the
jitted form on the fast evaluator; and the control variate's exact null player."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.ml.utility import utility_jit
from miners.shapley import exact_shapley, fl_game, from_coalition_fn, monte_carlo, with_control_variate
from miners.shapley.gtg import (
    converged,
    gtg_marginals,
    gtg_shapley,
    guided_permutations,
    truncate_prefix_values,
)
from shapley_fixtures import MLP_SMALL, make_round


def test_guided_permutations_rotate_the_first_client():
    perms = np.asarray(guided_permutations(14, 5, key=jax.random.key(0), start=3))
    assert (np.sort(perms, axis=1) == np.arange(5)).all()
    assert perms[:, 0].tolist() == [(3 + t) % 5 for t in range(14)]


def test_within_round_truncation_freezes_the_tail():
    values = jnp.array([[0.5, 0.9995, 0.7, 1.0], [0.2, 0.4, 0.6, 1.0]], jnp.float32)
    out, evaluated = truncate_prefix_values(values, jnp.float32(1.0), eps=1e-3)
    # row 0: after v(S_2) = 0.9995 is within 1e-3 of v(N), positions 3 and 4 are not evaluated
    np.testing.assert_allclose(np.asarray(out[0]), [0.5, 0.9995, 0.9995, 0.9995])
    assert np.asarray(evaluated).tolist() == [[True, True, False, False], [True, True, True, True]]
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(values[1]))


def test_published_loop_equals_the_fast_form_on_the_same_permutations():
    K = 6
    rg = make_round(MLP_SMALL, K, n_val=40)
    fast = fl_game(rg, row_chunk=16, perm_batch=2)
    u = lambda m: utility_jit(rg, jnp.asarray(m))  # noqa: E731
    v_all = float(u(np.ones(K, bool)))
    eps = 0.2 * abs(v_all)  # large enough that some permutations truncate
    key = jax.random.key(5)
    res = gtg_shapley(u, K, key=key, max_perms=9, eps=eps, stop_when_converged=False)
    marg, evals = gtg_marginals(fast, key=key, n=9, start=0, v_all=v_all, eps=eps)
    np.testing.assert_allclose(np.asarray(marg, np.float64).mean(axis=0), res.phi, rtol=1e-4, atol=1e-6)
    assert int(evals) + 1 == res.evaluations < 9 * K + 1  # truncation skipped some evaluations
    assert res.permutations == 9


def test_gtg_is_biased_where_truncation_bites_and_the_miner_is_not():
    K = 6
    rg = make_round(MLP_SMALL, K, n_val=40)
    fast = fl_game(rg, row_chunk=16)
    exact = exact_shapley(fast)
    v_all = float(exact.sum())
    marg, _ = gtg_marginals(fast, key=jax.random.key(1), n=6000, start=0, v_all=v_all, eps=0.2 * abs(v_all))
    gtg_err = np.linalg.norm(np.asarray(marg, np.float64).mean(axis=0) - exact) / np.linalg.norm(exact)
    cv = fl_game(rg, row_chunk=16, control_variate=True)
    ours = monte_carlo(cv, key=jax.random.key(1), n_perms=6000 - 1)
    our_err = np.linalg.norm(ours.phi - exact) / np.linalg.norm(exact)
    assert our_err < 0.01 and gtg_err > 3 * our_err  # 6,000 permutations: GTG's error is its bias


def test_gtg_stopping_rule():
    flat = np.ones((40, 5))
    assert converged(flat)
    assert not converged(flat[:20])  # fewer than max(30, K) permutations
    noisy = np.random.default_rng(0).normal(size=(40, 5))
    assert not converged(noisy)


def test_between_round_truncation_zeroes_a_round_without_improvement():
    res = gtg_shapley(lambda m: 0.0, 4, key=jax.random.key(0), max_perms=10)
    assert res.round_truncated and res.permutations == 0 and (res.phi == 0).all()


@pytest.mark.parametrize("sampler", ["plain", "antithetic_stratified"])
def test_control_variate_keeps_a_null_player_exactly_at_zero(sampler):
    # player 4 never changes any coalition's value; before the fix it got ~0.01-0.02 here
    game = from_coalition_fn(
        5, lambda w, m: jnp.max(jnp.where(m[:, :4], w[None, :], jnp.zeros((), jnp.float32)), axis=1),
        jnp.array([1.0, 3.0, 2.0, 5.0]),
    )
    cv = with_control_variate(game)
    est = monte_carlo(cv, key=jax.random.key(0), n_perms=200, sampler=sampler)
    assert est.phi[4] == 0.0
    assert est.phi.sum() == pytest.approx(5.0, rel=1e-6)  # still exactly efficient
    np.testing.assert_allclose(exact_shapley(cv) + np.asarray(cv.offset), exact_shapley(game), atol=1e-5)
