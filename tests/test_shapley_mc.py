"""Monte-Carlo estimators: Algorithm 1 vs the fast path, convergence, variance reduction, stopping."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.ml.utility import utility_jit
from miners.shapley import (
    SAMPLERS,
    airport_game,
    airport_shapley,
    block_size,
    error_bound,
    estimate,
    exact_shapley,
    fl_game,
    init_state,
    monte_carlo,
    paper_alg1,
    permutation_marginals,
    run_until,
    sample_blocks,
    sample_permutations,
    step,
)
from shapley_fixtures import LOGREG_SMALL, MLP_SMALL, make_round

ARCHS = [LOGREG_SMALL, MLP_SMALL]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.id)
def test_fast_path_equals_algorithm_1_on_the_same_permutations(arch):
    game = make_round(arch, 7, n_val=40)
    key = jax.random.key(11)
    S, iterations = paper_alg1(lambda m: utility_jit(game, jnp.asarray(m)), 7, key=key, n_iter=5)
    assert iterations == 5
    fast = fl_game(game, row_chunk=16, perm_batch=2)  # 5 perms: batches of 2 with padding
    marg = np.asarray(permutation_marginals(fast, sample_permutations(5, 7, key=key)), np.float64)
    np.testing.assert_allclose(marg.mean(axis=0), S, rtol=1e-5, atol=2e-6)
    # and the plain sampler in the incremental API draws exactly those permutations
    state = step(fast, init_state(7), key=key, n_perms=5, sampler="plain")
    np.testing.assert_allclose(estimate(state).phi, S, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_permutation_estimate_is_efficient(sampler):
    game = make_round(MLP_SMALL, 6)
    fast = fl_game(game, row_chunk=32)
    v_all = float(utility_jit(game, jnp.ones(6, bool)))
    est = monte_carlo(fast, key=jax.random.key(3), n_perms=24, sampler=sampler)
    assert est.phi.sum() == pytest.approx(v_all, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_draw_permutations(sampler):
    blocks = np.asarray(sample_blocks(sampler, 3, 5, key=jax.random.key(0)))
    assert blocks.shape == (3, block_size(sampler, 5), 5)
    assert (np.sort(blocks, axis=-1) == np.arange(5)).all()
    if sampler.endswith("stratified"):  # every client at every position once per K shifts
        for b in blocks:
            pos = np.argsort(b[:5], axis=-1)
            assert (np.sort(pos, axis=0) == np.arange(5)[:, None]).all()


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_monte_carlo_converges_to_exact_on_the_airport_game(sampler):
    costs = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0])
    est = monte_carlo(airport_game(costs), key=jax.random.key(5), n_perms=4000, sampler=sampler)
    # stated error: within 3% relative L2 of the closed form after 4,000 permutations
    truth = airport_shapley(costs)
    assert np.linalg.norm(est.phi - truth) / np.linalg.norm(truth) < 0.03


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.id)
def test_monte_carlo_converges_to_exact_on_an_fl_round(arch):
    K = 8
    game = make_round(arch, K)
    fast = fl_game(game, row_chunk=32)
    exact = exact_shapley(fast)
    for sampler in ("plain", "antithetic_stratified"):
        est = monte_carlo(fast, key=jax.random.key(7), n_perms=1600, sampler=sampler)
        rel = np.linalg.norm(est.phi - exact) / np.linalg.norm(exact)
        assert rel < 0.08, (sampler, rel)  # stated error: 8% rel-L2 at 1,600 permutations
        # the 95% bound on the 2-norm error covers the actual error
        assert np.linalg.norm(est.phi - exact) <= est.err_p


def test_stratified_sampling_beats_plain_at_equal_budget():
    K = 8
    fast = fl_game(make_round(MLP_SMALL, K), row_chunk=32)
    exact = exact_shapley(fast)
    errs = {s: [] for s in ("plain", "antithetic_stratified")}
    for seed in range(4):
        for s in errs:
            est = monte_carlo(fast, key=jax.random.key(seed), n_perms=160, sampler=s)
            errs[s].append(np.linalg.norm(est.phi - exact) / np.linalg.norm(exact))
    assert np.mean(errs["antithetic_stratified"]) <= 0.5 * np.mean(errs["plain"])


def test_steps_accumulate_and_the_state_reports_work_done():
    fast = fl_game(make_round(LOGREG_SMALL, 5), row_chunk=32)
    state = init_state(5)
    assert math.isinf(estimate(state).err_p)
    for i in range(3):
        state = step(fast, state, key=jax.random.key(i), n_perms=7, sampler="antithetic")
    phi, iterations, err = estimate(state, p=math.inf, confidence=0.9)
    assert iterations == 24  # 7 rounds up to 4 antithetic pairs, three times
    assert int(state.n_evals) == 24 * 5
    assert phi.shape == (5,) and 0 < err < math.inf


def test_run_until_stops_when_the_bound_is_below_D():
    costs = np.array([1.0, 2.0, 4.0, 8.0])
    seen = []
    res = run_until(airport_game(costs), key=jax.random.key(0), D=0.05, p=2, confidence=0.95,
                    sampler="antithetic", perms_per_step=64, max_perms=200_000, progress=seen.append)
    assert res.reason == "converged" and res.err_p <= 0.05
    assert len(seen) >= 1 and seen[-1].iterations == res.iterations
    assert np.linalg.norm(res.phi - airport_shapley(costs)) < 0.05


def test_run_until_respects_a_deadline_and_a_budget():
    game = airport_game(np.arange(1.0, 7.0))
    res = run_until(game, key=jax.random.key(0), D=0.0, deadline=time.time() - 1.0)
    assert res.reason == "deadline" and res.iterations == 0
    res = run_until(game, key=jax.random.key(0), D=0.0, max_perms=50, sampler="plain", perms_per_step=20)
    assert res.reason == "max_perms" and res.iterations == 50


@pytest.mark.parametrize("p", [1, 2, math.inf])
def test_error_bound_covers_gaussian_errors_at_its_confidence(p):
    rng = np.random.default_rng(0)
    se = rng.uniform(0.1, 2.0, size=20)
    bound = error_bound(se, p=p, confidence=0.9)
    e = rng.normal(size=(20000, 20)) * se
    norms = np.linalg.norm(e, ord=p, axis=1)
    assert 0.88 <= np.mean(norms <= bound) <= 0.99


def test_control_variate_keeps_exact_values_and_cuts_error():
    from miners.shapley import with_control_variate

    K = 8
    game = make_round(MLP_SMALL, K)
    fast = fl_game(game, row_chunk=32)
    cv = fl_game(game, row_chunk=32, control_variate=True)
    exact = exact_shapley(fast)
    # exact(v − u) + Shapley(u) = exact(v), K <= 18: the offset is exact
    np.testing.assert_allclose(exact_shapley(cv) + np.asarray(cv.offset), exact, atol=1e-5 * np.abs(exact).max())
    errs = {"plain": [], "cv": []}
    for seed in range(4):
        est = monte_carlo(fast, key=jax.random.key(seed), n_perms=160, sampler="plain")
        errs["plain"].append(np.linalg.norm(est.phi - exact))
        est = monte_carlo(cv, key=jax.random.key(seed), n_perms=159, sampler="antithetic_stratified")
        errs["cv"].append(np.linalg.norm(est.phi - exact))
        assert est.phi.sum() == pytest.approx(exact.sum(), rel=1e-4)  # still efficient
    assert np.mean(errs["cv"]) <= 0.5 * np.mean(errs["plain"])
    # a closed-form check of the offset: equal weights and scores s make u symmetric-additive-like
    u_only = with_control_variate(airport_game(np.ones(4)), scores=np.array([1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(np.asarray(u_only.offset), 0.25, atol=1e-6)
