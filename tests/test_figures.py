"""The paper-figure scripts (``scripts/figure4.py``, ``scripts/figure6.py``) at a tiny scale.

The scripts are plain files, not a package, so they are imported by path. The data is the
bundled 8×8 digits (``fl_server.data.load_digits``), so nothing is downloaded or unpickled.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from fedcoin_testkit import load_script


@pytest.fixture(scope="module")
def digits():
    from fl_server.data import load_digits

    return load_digits()


def test_figure4_gives_one_finite_row_per_type_with_efficient_rounds(digits):
    fig4 = load_script("figure4")
    res = fig4.shapley_by_type(digits, clients=10, samples=40, valued_rounds=[1, 2], perms=40,
                               perms_per_step=20, val_size=100, log=lambda *_: None)
    types = res["types"]
    assert [r["type"] for r in types] == [f"T{j}" for j in range(10)]
    for r in types:
        assert r["clients"] == 1 and r["n_values"] == 2 and r["rounds"] == 2
        for k in ("mean_shapley", "std_shapley", "mc_se_mean", "mean_round1", "mean_round2"):
            assert math.isfinite(r[k])
        assert r["std_shapley"] >= 0 and 0 <= r["frac_positive"] <= 1
        assert r["min_shapley"] <= r["mean_shapley"] <= r["max_shapley"]
    assert len(res["clients"]) == 2 * 10
    for rr in res["rounds"]:
        assert rr["permutations"] >= 40 and rr["err2_bound_95"] >= 0 and math.isfinite(rr["err2_bound_95"])
        # every permutation estimator is exactly efficient: Σφ = v(all) up to float32 rounding
        phis = [c["shapley"] for c in res["clients"] if c["round"] == rr["round"]]
        assert math.isclose(sum(phis), rr["v_all"], rel_tol=1e-9, abs_tol=1e-9)


def test_figure4_main_writes_csv_with_the_documented_columns(tmp_path):
    fig4 = load_script("figure4")
    assert fig4.parse_rounds("1-3,5") == [1, 2, 3, 5]
    # the same shapes as the other tests, so the jitted functions are compiled once
    rc = fig4.main(["--data", "digits", "--clients", "10", "--samples", "40", "--rounds-valued", "2",
                    "--perms", "40", "--perms-per-step", "20", "--val-size", "100", "--out", str(tmp_path)])
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "figure4.csv")))
    assert len(rows) == 10
    for col in ("type", "mean_shapley", "std_shapley", "n_values", "frac_positive", "mc_se_mean", "mean_round2"):
        assert col in rows[0]
    assert (tmp_path / "figure4.png").stat().st_size > 0


def test_figure6_exact_reference_is_efficient_and_errors_are_nonnegative(digits):
    import jax

    from fedcoin.ml.utility import utility_jit

    fig6 = load_script("figure6")
    rg, types = fig6.round_game(digits, clients=10, samples=40, round=2, val_size=100)
    assert types == list(range(10))  # one client per type
    Ds = (1e-1, 1e-3, 1e-6)
    res = fig6.block_times(rg, Ds=Ds, miners=2, cap=120, trials=1, check_every=20, log=lambda *_: None)
    v_all = float(utility_jit(rg, jax.numpy.ones(10, bool)))
    assert math.isclose(res["v_all"], v_all, rel_tol=1e-4, abs_tol=1e-6)  # Σφ_exact = v(all)
    summary = res["summary"]
    assert len(summary) == 2 * len(Ds)
    for name in ("alg1", "miner"):
        rows = [r for r in summary if r["estimator"] == name]
        assert [r["D"] for r in rows] == list(Ds)  # one row per D
        for r in rows:
            assert math.isclose(r["neg_log10_D"], -math.log10(r["D"]))
            assert 0 < r["iterations_min"] <= r["iterations_median"] <= r["iterations_max"] <= r["cap"] + 20
            assert r["winner_rel_l2_median"] >= 0 and r["consensus_rel_l2_median"] >= 0
            assert math.isfinite(r["winner_rel_l2_median"])
            assert 0 <= r["capped"] <= r["trials"]
    for t in res["trials"]:
        # a found block's winner is within D of the consensus (the contract's p = 2 rule)
        if t["found"]:
            assert t["dist_to_consensus"] <= t["D"] * (1 + 1e-12)
        else:
            assert t["iterations"] >= 120
    # D = 1e-6 on this round is far below what 120 permutations can reach
    assert all(not t["found"] for t in res["trials"] if t["D"] == 1e-6)


def test_simulate_posap_needs_two_miners(digits):
    import jax

    from miners.shapley import additive_game

    fig6 = load_script("figure6")
    game = additive_game(np.array([1.0, 2.0, 3.0], np.float32))
    with pytest.raises(ValueError, match="at least 2 miners"):
        fig6.simulate_posap(game, np.array([1.0, 2.0, 3.0]), key=jax.random.key(0), miners=1)
