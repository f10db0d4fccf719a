"""Retraining ground truth and rank correlation against closed-form answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import mde
from mde.valuation import rank_correlation, retrain_utility


def test_retrain_utility_is_paired_and_exact_for_a_deterministic_model(digits):
    def factory(seed):
        return LogisticRegression(C=0.05, max_iter=3000)

    cands = [(digits.Xc[:100], digits.yc[:100])]
    mean, std = retrain_utility(
        factory, digits.Xtr, digits.ytr, digits.Xte, digits.yte, cands, seeds=2
    )
    labels = range(10)
    base = log_loss(
        digits.yte, factory(0).fit(digits.Xtr, digits.ytr).predict_proba(digits.Xte), labels=labels
    )
    more = factory(0).fit(
        np.vstack([digits.Xtr, digits.Xc[:100]]), np.r_[digits.ytr, digits.yc[:100]]
    )
    want = base - log_loss(digits.yte, more.predict_proba(digits.Xte), labels=labels)
    assert mean[0] == pytest.approx(want)
    assert std[0] == pytest.approx(0.0, abs=1e-12)


def _prior_problem():
    """A class-prior model (predicts its training labels' frequencies): D_tr holds 5 records
    of each class, D_te 8 of class 0 and 2 of class 1, candidate k adds k records of class 0
    and 10 - k of class 1. Its test log-loss is -(0.8 log p0 + 0.2 log(1 - p0)) with
    p0 = (5 + k) / 20, so the utility of each set is known in closed form."""
    X_train, y_train = np.zeros((10, 2)), np.r_[np.zeros(5, int), np.ones(5, int)]
    X_test, y_test = np.ones((10, 2)), np.r_[np.zeros(8, int), np.ones(2, int)]
    ks = [0, 3, 5, 10]
    cands = [
        (np.full((10, 2), float(k)), np.r_[np.zeros(k, int), np.ones(10 - k, int)]) for k in ks
    ]

    def loss(p0):
        return -(0.8 * np.log(p0) + 0.2 * np.log(1 - p0))

    utility = np.array([loss(0.5) - loss((5 + k) / 20) for k in ks])
    return (X_train, y_train, X_test, y_test, cands), ks, utility


def _prior_factory(seed):
    return DummyClassifier(strategy="prior")


def test_retrain_utility_of_a_class_prior_model_is_the_closed_form():
    data, ks, utility = _prior_problem()
    mean, std = retrain_utility(_prior_factory, *data, seeds=3)
    np.testing.assert_allclose(mean, utility, rtol=1e-12)
    np.testing.assert_allclose(std, np.zeros(len(ks)), atol=1e-15)  # the same fit every seed
    # D_te is mostly class 0: only sets that move the prior towards 0.8 help
    assert mean[0] < mean[1] < 0 < mean[3]
    assert mean[2] == pytest.approx(0.0, abs=1e-15)  # 5 and 5: the prior stays at 0.5
    assert np.all(np.diff(mean) > 0)  # more class-0 records, more value
    # error: the prior predicts class 0 (error 0.2) unless class 1 is the majority (error 0.8)
    err, _ = retrain_utility(_prior_factory, *data, metric="error", seeds=1)
    np.testing.assert_allclose(err, [-0.6, -0.6, 0.0, 0.0], atol=1e-12)
    with pytest.raises(mde.InputError, match="metric"):
        retrain_utility(_prior_factory, *data, metric="auc", seeds=1)
    with pytest.raises(mde.InputError, match="empty"):
        retrain_utility(_prior_factory, *data[:4], [], seeds=1)


def test_rank_correlation_matches_closed_forms():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    # one swap of neighbours twice: sum of squared rank differences 4, so
    # Spearman = 1 - 6 * 4 / (5 * (25 - 1)) = 0.8 (and Pearson too: the values are ranks)
    r = rank_correlation(a, [1.0, 3.0, 2.0, 5.0, 4.0])
    assert r["spearman"] == pytest.approx(0.8, rel=1e-12)
    assert r["pearson"] == pytest.approx(0.8, rel=1e-12)
    # monotone but not linear: Spearman 1; Pearson 200 / sqrt(10 * 7610) from the deviations
    # (-2, -1, 0, 1, 2) and (-21, -20, -19, -18, 78)
    r = rank_correlation(np.array(a), np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert r["spearman"] == pytest.approx(1.0, rel=1e-12)
    assert r["pearson"] == pytest.approx(200 / np.sqrt(76100), rel=1e-12)
    r = rank_correlation(a, [-x for x in a])
    assert r["spearman"] == pytest.approx(-1.0) and r["pearson"] == pytest.approx(-1.0)
    with pytest.raises(mde.InputError, match=">= 3"):
        rank_correlation([1.0, 2.0], [2.0, 1.0])
    with pytest.raises(mde.InputError):
        rank_correlation(a, a[:4])


def test_rank_correlation_of_the_prior_model_utilities_with_the_records_of_class_0():
    data, ks, utility = _prior_problem()
    mean, _ = retrain_utility(_prior_factory, *data, seeds=1)
    r = rank_correlation(ks, mean)
    assert r["spearman"] == pytest.approx(1.0, rel=1e-12)
    k = np.array(ks, float)
    dk, du = k - k.mean(), utility - utility.mean()
    assert r["pearson"] == pytest.approx(dk @ du / np.sqrt((dk @ dk) * (du @ du)), rel=1e-10)
