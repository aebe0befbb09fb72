"""The pairwise control variate: exact offset, interpolation of v, unbiasedness, null players."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from shapley_fixtures import MLP_SMALL, make_round

from miners.shapley import (
    block_size,
    exact_shapley,
    fl_game,
    from_coalition_fn,
    init_state,
    monte_carlo,
    shapley_from_table,
    step,
)
from miners.shapley.control import _q_coalition, _q_prefix_of, pairwise_shapley, with_pairwise_control_variate
from miners.shapley.fl import PAIRWISE_MAX_K
from miners.shapley.game import prefix_masks


def _all_masks(K):
    ints = np.arange(1 << K)
    return ((ints[:, None] >> np.arange(K)[None, :]) & 1).astype(bool)


@pytest.mark.parametrize("K", [1, 2, 3, 6, 9])
def test_closed_form_shapley_of_the_pairwise_game_equals_enumeration(K):
    rng = np.random.default_rng(K)
    M = rng.normal(size=(K, K))
    M = (M + M.T) / 2
    active = rng.random(K) < 0.7
    masks = _all_masks(K) & active[None]
    cnt = masks.sum(1)
    table = np.where(cnt > 0, np.einsum("bk,kl,bl->b", masks * 1.0, M, masks * 1.0) / np.maximum(cnt, 1) ** 2, 0.0)
    phi = pairwise_shapley(M, active)
    np.testing.assert_allclose(phi, shapley_from_table(table), atol=1e-12)
    assert (phi[~active] == 0).all()


def test_prefix_values_of_the_pairwise_game_equal_its_coalition_values():
    K, P = 7, 5
    rng = np.random.default_rng(0)
    M = rng.normal(size=(K, K)).astype(np.float32)
    data = {"M": jnp.asarray((M + M.T) / 2), "active": jnp.asarray([True, True, False, True, True, True, False])}
    perms = jnp.asarray(np.stack([rng.permutation(K) for _ in range(P)]), jnp.int32)
    pre = np.asarray(_q_prefix_of(data, perms))
    coal = np.asarray(_q_coalition(data, prefix_masks(perms).reshape(P * K, K))).reshape(P, K)
    np.testing.assert_allclose(pre, coal, atol=1e-5)


def test_the_pairwise_game_matches_v_on_every_singleton_and_pair_and_keeps_exact_values():
    K = 7
    rg = make_round(MLP_SMALL, K)
    fast = fl_game(rg, row_chunk=32)
    cv = fl_game(rg, row_chunk=32, control_variate="pairwise")
    assert cv.name.endswith("+pcv")
    small = _all_masks(K)
    small = small[(small.sum(1) >= 1) & (small.sum(1) <= 2)]
    v = np.asarray(fast.coalition_values(jnp.asarray(small)))
    resid = np.asarray(cv.coalition_values(jnp.asarray(small)))  # v − q on those coalitions
    assert np.abs(v).max() > 1e-2  # the check below is not vacuous
    np.testing.assert_allclose(resid, 0.0, atol=2e-6)
    # a 3-coalition is not interpolated: q is a model of v, not v
    assert abs(float(cv.coalition_values(jnp.asarray([[True, True, True] + [False] * (K - 3)]))[0])) > 0
    exact = exact_shapley(fast)
    np.testing.assert_allclose(exact_shapley(cv) + np.asarray(cv.offset), exact, atol=2e-5 * np.abs(exact).max())


def test_pairwise_is_unbiased_and_beats_the_linear_control_variate_at_equal_budget():
    K = 8
    rg = make_round(MLP_SMALL, K)
    exact = exact_shapley(fl_game(rg, row_chunk=32))
    var, err = {}, {}
    for kind in ("linear", "pairwise"):
        game = fl_game(rg, row_chunk=32, control_variate=kind)
        s = init_state(K, offset=game.offset)
        key = jax.random.key(5)
        for _ in range(40):
            key, sub = jax.random.split(key)
            s = step(game, s, key=sub, n_perms=block_size("antithetic_stratified", K), sampler="antithetic_stratified")
        var[kind] = float(np.sum(np.asarray(s.m2, np.float64))) / (int(s.n_blocks) - 1)
        phi = np.asarray(s.mean, np.float64) + np.asarray(game.offset, np.float64)
        err[kind] = float(np.linalg.norm(phi - exact) / np.linalg.norm(exact))
        # within 4 standard errors of the exact values: no bias the sampling does not explain
        se = np.sqrt(np.asarray(s.m2, np.float64) / (int(s.n_blocks) - 1) / int(s.n_blocks))
        assert (np.abs(phi - exact) <= 4 * se + 1e-6).all(), kind
    print(f"K={K}: per-block Σ Var linear {var['linear']:.3g}, pairwise {var['pairwise']:.3g} "
          f"({var['linear'] / var['pairwise']:.1f}x less); rel err {err['linear']:.4f} vs {err['pairwise']:.4f}")
    assert var["pairwise"] < 0.5 * var["linear"]


@pytest.mark.parametrize("sampler", ["plain", "antithetic_stratified"])
def test_the_pairwise_control_variate_keeps_a_null_player_exactly_at_zero(sampler):
    # player 4 never changes any coalition's value
    w = jnp.array([1.0, 3.0, 2.0, 5.0])
    game = from_coalition_fn(
        5, lambda w, m: jnp.max(jnp.where(m[:, :4], w[None, :], jnp.zeros((), jnp.float32)), axis=1), w)
    eye = np.eye(5, dtype=bool)
    scores = np.asarray(game.coalition_values(jnp.asarray(eye)))
    pairs = np.asarray(game.coalition_values(jnp.asarray(eye[:, None, :] | eye[None, :, :]).reshape(25, 5))).reshape(5, 5)
    cv = with_pairwise_control_variate(game, scores=scores, pair_values=pairs)
    est = monte_carlo(cv, key=jax.random.key(0), n_perms=200, sampler=sampler)
    assert est.phi[4] == 0.0
    assert est.phi.sum() == pytest.approx(5.0, rel=1e-6)
    np.testing.assert_allclose(exact_shapley(cv) + np.asarray(cv.offset), exact_shapley(game), atol=1e-5)


def test_control_variate_choice():
    rg = make_round(MLP_SMALL, 4)
    assert fl_game(rg, row_chunk=32, control_variate=True).name.endswith("+pcv")  # K <= PAIRWISE_MAX_K
    assert fl_game(rg, row_chunk=32, control_variate="linear").name.endswith("+cv")
    assert fl_game(rg, row_chunk=32, control_variate="none").offset is None
    assert PAIRWISE_MAX_K >= 100
    with pytest.raises(ValueError, match="control_variate must be"):
        fl_game(rg, row_chunk=32, control_variate="quadratic")
