"""Data-cost inflation (scripts/rr_inflation.py) in --quick mode: digits, K = 5, 100 rows each."""

from __future__ import annotations

import numpy as np
import pytest

from fedcoin_testkit import load_script


rr = load_script("rr_inflation")
FACTOR = 10.0


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    out = tmp_path_factory.mktemp("rr_inflation")
    r = rr.main(["--quick", "--factor", str(FACTOR), "--seed", "0", "--out", str(out)])
    r["csv"] = out / "rr_inflation.csv"
    return r


def _rows(res, **kw):
    return [r for r in res["rows"] if all(r[k] == v for k, v in kw.items())]


def test_data_cost_share_is_arithmetic_on_declared_n(res):
    n = res["n"]
    for r in _rows(res, rule="data-cost"):
        k, f = r["inflater"], r["declared_factor"]
        others = int(n.sum() - n[k])
        assert r["inflated_share"] == pytest.approx(f * n[k] / (f * n[k] + others), abs=1e-12)
        assert r["honest_share"] == pytest.approx(n[k] / n.sum(), abs=1e-12)
    # without a cap the inflater's R&R share grows whatever its data is worth
    assert all(r["gain"] > 3 for r in _rows(res, rule="data-cost", mitigation="none"))


def test_shares_are_a_sub_division_of_train_price(res):
    for r in res["rows"]:
        for s in (r["_shares_honest"], r["_shares_inflated"]):
            assert np.all(s >= 0) and s.sum() <= 1.0 + 1e-15
        if r["rule"] == "data-cost-gated":
            assert (r["inflated_share"] > 0) == (r["inflated_phi"] > 0)


def test_weighted_model_moves_uniform_model_does_not(res):
    rd, n = res["round"], res["n"]
    cache = res["results"]
    for case, k in res["inflaters"].items():
        d = n.copy()
        d[k] = int(round(FACTOR * n[k]))
        hw, iw = cache[(tuple(n.tolist()), rr.WEIGHTED)], cache[(tuple(d.tolist()), rr.WEIGHTED)]
        hu, iu = cache[(tuple(n.tolist()), rr.UNIFORM)], cache[(tuple(d.tolist()), rr.UNIFORM)]
        assert any(not np.array_equal(np.asarray(hw["model"][p]), np.asarray(iw["model"][p])) for p in rd.w0), case
        assert all(np.array_equal(np.asarray(hu["model"][p]), np.asarray(iu["model"][p])) for p in rd.w0), case
        np.testing.assert_array_equal(hu["phi"], iu["phi"])  # n is not in the uniform game at all
        assert not np.allclose(hw["phi"], iw["phi"])  # ... but it is in the weighted one
    # the cap at 1.0x real n leaves everything as honest
    for r in _rows(res, mitigation="cap-1x"):
        assert r["inflated_share"] == r["honest_share"] and r["inflated_val_acc"] == r["honest_val_acc"]


def test_csves_th_cannot_see_the_declared_n(res):
    rd, n = res["round"], res["n"]
    for k in res["inflaters"].values():
        honest, inflated = rr.registered_update(rd, k, n[k]), rr.registered_update(rd, k, int(FACTOR * n[k]))
        assert honest[0] == inflated[0] and honest[1] != inflated[1]
        assert rr.csves_th_of_registration(rd, k, honest, seed=0) == rr.csves_th_of_registration(rd, k, inflated, seed=0)
    for r in res["rows"]:
        assert r["csves_th_error_honest"] == r["csves_th_error_inflated"]
        assert r["csves_th_honest"] == r["csves_th_inflated"]


def test_csv_has_every_case_rule_and_mitigation(res):
    text = res["csv"].read_text().splitlines()
    assert text[0].split(",") == list(rr.CSV_FIELDS)
    assert len(text) - 1 == 2 * 4 * 3  # 2 inflaters × 4 mitigations × 3 rules
