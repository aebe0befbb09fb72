"""The Class-Sampled Validation-Error Scheme (``fedcoin.ml.csves``) and its table script.

The class-sampled set is consensus-critical (every miner must rebuild the same rows from the
committed seed), so its derivation is checked against an independent re-implementation of the
documented recipe and pinned to one known output.
"""

from __future__ import annotations

import csv
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from eth_utils import keccak

from fedcoin.ml import csves
from fedcoin.ml.models import Arch, init_params
from fedcoin_testkit import load_script

POOL = np.arange(40) % 4  # ten rows of each of the classes 0..3


# ------------------------------------------------------------------------- declared classes


def test_declared_classes_are_the_sorted_distinct_labels():
    assert csves.declared_classes(np.array([7, 3, 3, 1, 7], np.int32), 10) == (1, 3, 7)
    assert csves.declared_classes(np.zeros(0, np.int32), 10) == ()


def test_declared_classes_refuse_labels_outside_the_task():
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        csves.declared_classes(np.array([1, 10]), 10)


# ------------------------------------------------------------------------- the class-sampled set


def _reference(pool, classes, m, seed32):
    """The documented recipe, written again from the docstring."""
    out = []
    for c in sorted(classes):
        p = [j for j, lab in enumerate(pool) if lab == c]
        if len(p) > m:
            for t in range(m):
                r = int.from_bytes(keccak(seed32 + c.to_bytes(32, "big") + t.to_bytes(32, "big")), "big")
                j = t + r % (len(p) - t)
                p[t], p[j] = p[j], p[t]
            p = p[:m]
        out += p
    return out


def test_class_sampled_set_follows_the_documented_recipe_and_a_pinned_value():
    idx = csves.class_sampled_indices(POOL, (3, 1), 3, seed=0)
    assert idx.dtype == np.int64
    assert idx.tolist() == [29, 17, 13, 23, 39, 31]  # pinned: changing the derivation splits miners
    seed = bytes(range(32))
    assert csves.class_sampled_indices(POOL, (0, 2, 3), 4, seed).tolist() == _reference(POOL, (0, 2, 3), 4, seed)


def test_class_sampled_set_is_deterministic_in_the_seed():
    a = csves.class_sampled_indices(POOL, (1, 2), 3, seed=5)
    assert np.array_equal(a, csves.class_sampled_indices(POOL, (2, 1), 3, seed=5))
    assert not np.array_equal(a, csves.class_sampled_indices(POOL, (1, 2), 3, seed=6))
    # an int, its 32 big-endian bytes and its 0x-hex are one seed
    s = (5).to_bytes(32, "big")
    assert np.array_equal(a, csves.class_sampled_indices(POOL, (1, 2), 3, seed=s))
    assert np.array_equal(a, csves.class_sampled_indices(POOL, (1, 2), 3, seed="0x" + s.hex()))


def test_class_sampled_set_holds_m_distinct_rows_of_each_declared_class_only():
    idx = csves.class_sampled_indices(POOL, (0, 3), 4, seed="0x" + "ab" * 32)
    labels = POOL[idx]
    assert labels.tolist() == [0] * 4 + [3] * 4
    assert len(set(idx.tolist())) == 8


def test_a_class_with_fewer_than_m_rows_contributes_all_of_them():
    pool = np.array([0, 1, 1, 0, 2, 1, 0, 0, 0, 0])
    idx = csves.class_sampled_indices(pool, (0, 2), 3, seed=1)
    assert len(set(idx[:3].tolist())) == 3 and set(pool[idx[:3]]) == {0}  # class 0 has 6 rows: 3 of them
    assert idx[3:].tolist() == [4]  # class 2 has one row: it alone
    assert csves.class_sampled_indices(pool, (1,), 5, seed=1).tolist() == [1, 2, 5]  # all, ascending
    assert csves.class_sampled_indices(pool, (7,), 5, seed=1).tolist() == []  # no rows at all


def test_every_row_of_a_class_gets_drawn_about_equally_often():
    pool = np.zeros(10, np.int64)
    counts = np.zeros(10)
    for s in range(300):
        counts[csves.class_sampled_indices(pool, (0,), 3, seed=s)] += 1
    assert counts.sum() == 900 and counts.min() > 50 and counts.max() < 130  # 90 expected


@pytest.mark.parametrize("seed", [b"short", "0x1234", -1, 2**256, True])
def test_malformed_seeds_are_refused(seed):
    with pytest.raises(ValueError):
        csves.class_sampled_indices(POOL, (1,), 2, seed=seed)


def test_duplicate_classes_and_zero_m_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        csves.class_sampled_indices(POOL, (1, 1), 2, seed=0)
    with pytest.raises(ValueError, match="m must be"):
        csves.class_sampled_indices(POOL, (1,), 0, seed=0)


# ------------------------------------------------------------------------- the acceptance rules


def test_csves_tr_accepts_a_falling_trajectory_only():
    ok, slope = csves.csves_tr([0.5, 0.4, 0.42, 0.3, 0.2])
    assert ok and slope < 0
    ok, slope = csves.csves_tr([0.2, 0.3, 0.25, 0.4])
    assert not ok and slope > 0


def test_csves_tr_rejects_a_flat_trajectory_with_slope_exactly_zero():
    assert csves.csves_tr([0.1] * 7) == (False, 0.0)


def test_csves_tr_slope_is_least_squares_over_the_given_times():
    ok, slope = csves.csves_tr([3.0, 1.0], times=[0.0, 2.0])
    assert ok and slope == -1.0
    t = np.array([0.0, 1.0, 3.0, 7.0])
    v = np.array([0.9, 0.7, 0.6, 0.1])
    assert math.isclose(csves.csves_tr(v, t)[1], np.polyfit(t, v, 1)[0], rel_tol=1e-12)


@pytest.mark.parametrize("v, times", [([0.3], None), ([], None), ([0.3, 0.2], [1.0, 1.0])])
def test_csves_tr_without_a_line_is_not_accepted(v, times):
    ok, slope = csves.csves_tr(v, times)
    assert not ok and math.isnan(slope)


def test_csves_th_is_strict_at_the_threshold():
    assert csves.csves_th(0.1, tau=0.1) is False
    assert csves.csves_th(0.0999, tau=0.1) is True
    assert csves.csves_th([0.05, 0.5]) is False and csves.csves_th([0.5, 0.05]) is True  # the last entry
    assert csves.csves_th([]) is False and csves.csves_th(float("nan")) is False


# ------------------------------------------------------------------------- errors and training

TOY = Arch("logreg", (2, 2))


def _toy(n: int, seed: int):
    """Two separable blobs in R², labels 0/1."""
    r = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int32)
    x = (r.normal(0.0, 0.3, (n, 2)) + np.where(y[:, None] == 1, 2.0, -2.0)).astype(np.float32)
    return x, y


def test_validation_error_is_an_exact_ratio_that_meets_the_threshold_exactly():
    x = np.eye(2, dtype=np.float32)[np.r_[np.zeros(90, int), np.ones(10, int)]]
    params = {"w0": jnp.eye(2, dtype=jnp.float32), "b0": jnp.zeros(2, jnp.float32)}
    y = np.zeros(100, np.int32)  # the ten rows of class 1 are wrong
    err = csves.validation_error(params, TOY, x, y)
    assert err == 0.1 and csves.csves_th(err, tau=0.1) is False


def test_train_with_trajectory_lowers_the_error_on_a_separable_problem():
    x, y = _toy(40, 0)
    xv, yv = _toy(20, 1)
    w_bad = {"w0": jnp.asarray([[1.0, -1.0], [1.0, -1.0]], jnp.float32), "b0": jnp.zeros(2, jnp.float32)}
    new, v_E = csves.train_with_trajectory(TOY, w_bad, x, y, xv, yv, key=jax.random.key(0), epochs=3,
                                           batch_size=5, lr=0.5, every=4)
    assert v_E.shape == (1 + 3 * 8 // 4,) and v_E.dtype == np.float64
    assert v_E[0] == 1.0 and v_E[-1] == 0.0  # the reversed model is always wrong, the trained one never
    assert csves.csves_tr(v_E)[0] and csves.csves_th(v_E)
    assert csves.validation_error(new, TOY, xv, yv) == v_E[-1]


def test_every_must_divide_the_number_of_steps():
    x, y = _toy(20, 0)
    with pytest.raises(ValueError, match="must divide"):
        csves.train_with_trajectory(TOY, init_params(TOY, key=jax.random.key(0)), x, y, x, y,
                                    key=jax.random.key(1), epochs=1, batch_size=5, every=3)


def test_train_many_equals_a_loop_of_train_with_trajectory():
    # the shapes and settings of the test above, so the single-device function is compiled once
    D = 3
    data = [_toy(40, 10 + i) for i in range(D)]
    val = [_toy(20, 20 + i) for i in range(D)]
    xs, ys = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    ys[2] = 1 - ys[2]  # one device with every label flipped
    xv, yv = np.stack([v[0] for v in val]), np.stack([v[1] for v in val])
    vm = np.ones((D, 20), bool)
    vm[1, 15:] = False  # a padded set of 15 rows
    params = init_params(TOY, key=jax.random.key(7))
    keys = jax.random.split(jax.random.key(8), D)
    kw = dict(epochs=3, batch_size=5, lr=0.5, every=4)
    many, v_many = csves.train_many(TOY, params, xs, ys, xv, yv, vm, keys=keys, **kw)
    assert v_many.shape == (D, 7)
    for i in range(D):
        one, v_one = csves.train_with_trajectory(TOY, params, xs[i], ys[i], xv[i], yv[i], vm[i], key=keys[i], **kw)
        np.testing.assert_array_equal(v_many[i], v_one)
        for name in params:
            np.testing.assert_allclose(many[name][i], one[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(many["w0"][0], params["w0"])  # it did train
    assert np.array_equal(v_many[1] * 15, np.round(v_many[1] * 15))  # device 1's errors are k/15
    assert v_many[0, -1] == 0.0 and v_many[2, -1] > 0.5  # clean labels learnt, flipped ones learnt wrong


# ------------------------------------------------------------------------- the table script


def test_rr_tables_quick_writes_the_documented_csv(tmp_path, capsys):
    rr = load_script("rr_tables")
    assert rr.main(["--quick", "--kinds", "valid,permuted", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "rr_tables.csv") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == rr.COLUMNS
        rows = list(reader)
    assert {(r["scheme"], r["data"]) for r in rows} == {(s, k) for s in rr.SCHEMES for k in ("valid", "permuted")}
    for r in rows:
        assert 0.0 <= float(r["rate"]) <= 1.0
        assert 0 <= int(r["accepted"]) <= int(r["devices"])
        assert math.isclose(float(r["rate"]), int(r["accepted"]) / int(r["devices"]), rel_tol=1e-5)
    alls = [r for r in rows if r["n_classes"] == "all"]
    assert len(alls) == 4 and all(int(r["devices"]) == 18 for r in alls)
    per = [r for r in rows if r["n_classes"] != "all" and r["scheme"] == "CSVES-Th" and r["data"] == "valid"]
    assert sum(int(r["devices"]) for r in per) == 18 and all(1 <= int(r["n_classes"]) <= 9 for r in per)
    # one class: a permutation of a single label is the identity, so the faulty kind equals the valid one
    one = {r["data"]: r for r in rows if r["n_classes"] == "1" and r["scheme"] == "CSVES-Th"}
    assert set(one) == {"valid", "permuted"}  # seed 0 draws one-class devices
    assert one["valid"]["accepted"] == one["permuted"]["accepted"]
    assert (tmp_path / "rr_tables.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "paper (overall)" in out and "wall time" in out and "load average" in out
