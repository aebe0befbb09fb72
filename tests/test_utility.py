"""The round utility v(C) = m(A(w_t, C)) − m(w_t), against a NumPy transcription of DESIGN."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from fedcoin.ml.models import apply
from fedcoin.ml.utility import RoundGame, aggregate, game_coefficients, utility_jit
from shapley_fixtures import LOGREG_SMALL, MLP_SMALL, make_round


def _numpy_utility(game: RoundGame, mask: np.ndarray) -> float:
    if not mask.any():
        return 0.0
    w = np.asarray(game.n_k, np.float64) if game.aggregation == "fedavg-weighted" else np.ones(game.n_players)
    a = np.where(mask, w, 0.0) / np.where(mask, w, 0.0).sum()
    agg = {n: np.asarray(game.params[n], np.float64) + np.tensordot(a, np.asarray(game.updates[n], np.float64), 1)
           for n in game.params}
    x, y = np.asarray(game.x, np.float64), np.asarray(game.y)

    def metric(p):
        h = x @ p["w0"] + p["b0"]
        for i in range(1, game.arch.n_layers):
            h = np.maximum(h, 0) @ p[f"w{i}"] + p[f"b{i}"]
        if game.metric == "accuracy":
            return float(np.mean(h.argmax(1) == y))
        m = h.max(1, keepdims=True)
        logp = h - m - np.log(np.exp(h - m).sum(1, keepdims=True))
        return float(np.mean(logp[np.arange(len(y)), y]))

    base = {n: np.asarray(v, np.float64) for n, v in game.params.items()}
    return metric(agg) - metric(base)


@pytest.mark.parametrize("arch", [LOGREG_SMALL, MLP_SMALL], ids=lambda a: a.id)
@pytest.mark.parametrize("aggregation", ["fedavg-weighted", "fedavg-uniform"])
@pytest.mark.parametrize("metric", ["neg_cross_entropy", "accuracy"])
def test_utility_matches_the_definition(arch, aggregation, metric):
    game = make_round(arch, 4, aggregation=aggregation, metric=metric)
    for bits in range(16):
        mask = np.array([(bits >> k) & 1 for k in range(4)], bool)
        got = float(utility_jit(game, jnp.asarray(mask)))
        assert got == pytest.approx(_numpy_utility(game, mask), abs=2e-5)


def test_empty_coalition_is_worth_exactly_zero():
    game = make_round(MLP_SMALL, 3)
    assert float(utility_jit(game, jnp.zeros(3, bool))) == 0.0


def test_fedavg_weights_by_data_cost():
    game = make_round(LOGREG_SMALL, 3)
    a = game_coefficients(game, jnp.array([True, False, True]))
    n = np.asarray(game.n_k)
    np.testing.assert_allclose(np.asarray(a), [n[0] / (n[0] + n[2]), 0.0, n[2] / (n[0] + n[2])], rtol=1e-6)


def test_grand_coalition_model_is_fedavg_of_all_updates():
    game = make_round(LOGREG_SMALL, 3)
    agg = aggregate(game.params, game.updates, game_coefficients(game, jnp.ones(3, bool)))
    n = game.n_k / jnp.sum(game.n_k)
    expected = game.params["w0"] + jnp.einsum("k,kij->ij", n, game.updates["w0"])
    np.testing.assert_allclose(np.asarray(agg["w0"]), np.asarray(expected), atol=1e-6)
    assert apply(game.arch, agg, game.x).shape == (game.n_val, 10)


def test_create_rejects_bad_inputs_with_the_field_name():
    game = make_round(LOGREG_SMALL, 2)
    with pytest.raises(ValueError, match="aggregation"):
        RoundGame.create(game.arch, game.params, game.updates, game.n_k, game.x, game.y, aggregation="median")
    with pytest.raises(ValueError, match="n_k"):
        RoundGame.create(game.arch, game.params, game.updates, jnp.array([1.0, 0.0]), game.x, game.y)
    with pytest.raises(ValueError, match=r"updates\['w0'\]"):
        bad = dict(game.updates, w0=game.updates["w0"][:1])
        RoundGame.create(game.arch, game.params, bad, game.n_k, game.x, game.y)
