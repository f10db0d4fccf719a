"""Benchmark helpers (pooled set values, candidate sets, scenarios, the CNN black box) and the
fidelity suite's --quick mode end to end (CI smoke test, fixed seeds). The permutation engine
the suite's TMC Data Shapley uses is tested in tests/valuation/test_shapley.py."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlxtend")


def test_pooled_set_values_count_a_shared_record_once_in_the_pool():
    from benchmarks.tmc import pooled_set_values

    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    # the third set holds record 2's x with another label
    sets = [(X[[0, 1, 2]], y[[0, 1, 2]]), (X[[2, 3]], y[[2, 3]]), (X[[2]], np.array([1]))]
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
    assert {
        "influence",
        "influence sealed",
        "tree",
        "gradient norm",
        "KNN-Shapley (sum)",
        TMC,
        "random",
    } <= methods
    by = {(r["scenario"], r["black box"], r["method"]): r for r in rows}
    for bb in ("logreg", "rf"):
        rho = {
            m: by[("label-noise", bb, m)]["rho"]
            for m in ("influence", "influence sealed", "gradient norm", TMC)
        }
        assert rho["influence"] > 0.5
        assert rho[TMC] > 0.5
        assert rho["gradient norm"] < 0  # seed 000: gradient norm is anti-correlated
        assert np.isclose(rho["influence sealed"], rho["influence"], atol=0.05)
        retrain = by[("redundancy", bb, "retrain (ground truth)")]
        # retraining: copies of D_tr are worth less than fresh data
        assert retrain["copies / fresh"] < 0.5
        assert retrain["per_set"] > 0
        # TMC over the pooled records: 4 truncated permutations, each cut short
        tmc = by[("label-noise", bb, TMC)]
        assert 0 < tmc["depth"] < 1 and 0 < tmc["evaluations"] <= 4 * tmc["n_records"]


def test_suite_rows_round_trip_through_json_with_calibration_choices():
    import json

    from benchmarks.suite import _jsonable

    row = {
        "method": "influence (self-calibrated)",
        "rho": np.float64(0.87),
        "n_sets": 10,
        "chosen": {"n_components": 16, "l2": np.float64(0.01)},
        "calibration rho": np.float32(0.5),
    }
    back = json.loads(json.dumps(_jsonable(row)))
    assert back == {
        "method": "influence (self-calibrated)",
        "rho": 0.87,
        "n_sets": 10.0,
        "chosen": {"n_components": 16.0, "l2": 0.01},
        "calibration rho": 0.5,
    }


def test_label_noise_candidates_flip_exactly_at_their_rates():
    from benchmarks.candidates import label_noise_candidates

    X = np.arange(40.0).reshape(20, 2)
    y = np.array([1, 7] * 10)
    clean, swapped = label_noise_candidates(
        X, y, n_sets=2, pair=(1, 7), rates=[0.0, 1.0], random_state=3
    )
    for Xc, yc in (clean, swapped):
        assert Xc.shape == (10, 2) and len(yc) == 10
    rows = {int(x[0]) // 2 for x in np.vstack([clean[0], swapped[0]])}
    assert rows == set(range(20))  # the two sets split the records
    np.testing.assert_array_equal(clean[1], y[clean[0][:, 0].astype(int) // 2])  # rate 0
    np.testing.assert_array_equal(swapped[1], 8 - y[swapped[0][:, 0].astype(int) // 2])  # 1 <-> 7
    # no pair: every flipped label becomes another class, never the same one
    classes = np.array([0, 1, 2] * 10)
    ((Xa, ya),) = label_noise_candidates(np.zeros((30, 1)), classes, n_sets=1, rates=[1.0])
    assert np.isin(ya, classes).all() and len(ya) == 30
    _, again = label_noise_candidates(X, y, n_sets=2, pair=(1, 7), rates=[0.0, 1.0], random_state=3)
    np.testing.assert_array_equal(again[0], swapped[0])  # seeded


def test_gradient_norm_is_the_norm_of_the_summed_loss_gradients(digits, proxy):
    from benchmarks.candidates import gradient_norm
    from mde.proxies.heads import head_psi

    X, y = digits.Xc[:50], digits.yc[:50]
    psi = head_psi(proxy.proxy.features(X), proxy.theta_, y)  # one gradient per record
    assert gradient_norm(proxy, X, y) == pytest.approx(np.linalg.norm(psi.sum(axis=0)), rel=1e-12)


@pytest.mark.parametrize(
    "make,n", [("label_noise", 10), ("redundancy", 10), ("irrelevance", 10), ("size", 4)]
)
def test_scenarios_are_seeded_and_well_formed(make, n):
    from benchmarks import scenarios

    a, b = getattr(scenarios, make)(seed=1), getattr(scenarios, make)(seed=1)
    assert len(a.candidates) == len(a.labels) == n
    assert a.X_train.shape == (500, 784) and a.X_test.shape == (1000, 784)
    for (Xa, ya), (Xb, yb) in zip(a.candidates, b.candidates):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
        assert Xa.shape[1] == 784 and len(ya) == len(Xa) and np.isin(ya, np.arange(10)).all()


def test_class_prior_scenario_has_the_stated_priors():
    from benchmarks import scenarios

    sc = scenarios.class_prior(seed=0, n_sets=4, repetitions=2, set_size=100)
    in_a = np.isin(sc.y_train, (0, 1, 2, 3, 4)).mean()
    assert in_a == pytest.approx(10 / 11, abs=0.01)
    assert np.isin(sc.y_test, (0, 1, 2, 3, 4)).mean() == pytest.approx(0.5)
    shares = [np.isin(y, (0, 1, 2, 3, 4)).mean() for _, y in sc.candidates]
    assert shares == pytest.approx([0.25, 0.5, 0.75, 1.0] * 2)


def test_redundancy_scenario_copies_come_from_the_training_set():
    from benchmarks import scenarios

    sc = scenarios.redundancy(seed=0)
    X0, _ = sc.candidates[0]  # 0% fresh, exact copies
    train_rows = {row.tobytes() for row in sc.X_train}
    assert all(row.tobytes() in train_rows for row in X0)
    Xf, _ = sc.candidates[sc.labels.index("100% fresh, rest copies")]
    assert not any(row.tobytes() in train_rows for row in Xf)
