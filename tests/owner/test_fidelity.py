"""The fidelity check before publishing: a proxy's efficacy against retraining."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import mde
from mde.owner import FidelityReport, fidelity_report
from mde.valuation import rank_correlation, retrain_utility


class _ClassZeroCount:
    """An appraiser (anything with ``efficacy(X, y)``) that counts a set's class-0 records."""

    def efficacy(self, X, y):
        return float(np.sum(np.asarray(y) == 0))


def test_fidelity_report_of_a_monotone_appraiser_is_exact():
    """A class-prior model on D_tr (5 + 5 records) tested on 8 records of class 0 and 2 of
    class 1: adding k class-0 records out of 10 moves its prior to (5 + k) / 20 < 0.8, so the
    retraining utility rises with k. Counting class-0 records ranks the sets exactly
    (Spearman 1, in every bootstrap resample too); Pearson is the closed form."""
    X_train, y_train = np.zeros((10, 2)), np.r_[np.zeros(5, int), np.ones(5, int)]
    X_test, y_test = np.ones((10, 2)), np.r_[np.zeros(8, int), np.ones(2, int)]
    ks = np.array([0, 2, 3, 6, 8, 10])
    cands = [
        (np.full((10, 2), float(k)), np.r_[np.zeros(k, int), np.ones(10 - k, int)]) for k in ks
    ]

    def loss(p0):
        return -(0.8 * np.log(p0) + 0.2 * np.log(1 - p0))

    utility = loss(0.5) - loss((5 + ks) / 20)
    rep = fidelity_report(
        _ClassZeroCount(),
        lambda s: DummyClassifier(strategy="prior"),
        X_train,
        y_train,
        X_test,
        y_test,
        cands,
        seeds=2,
        n_boot=100,
    )
    assert isinstance(rep, FidelityReport) and rep.seeds == 2 and rep.metric == "log_loss"
    assert rep.efficacy == ks.tolist()
    np.testing.assert_allclose(rep.utility, utility, rtol=1e-12)
    np.testing.assert_allclose(rep.utility_std, 0.0, atol=1e-15)
    assert rep.spearman == pytest.approx(1.0, rel=1e-12)
    assert rep.spearman_ci == pytest.approx((1.0, 1.0), rel=1e-12)
    dk, du = ks - ks.mean(), utility - utility.mean()
    assert rep.pearson == pytest.approx(dk @ du / np.sqrt((dk @ dk) * (du @ du)), rel=1e-10)
    assert rep.pearson < 1.0  # the utility is concave in k: not a straight line
    lo, hi = rep.pearson_ci
    assert lo <= rep.pearson <= hi <= 1.0


def test_fidelity_report_on_digits_label_noise(digits, model):
    from benchmarks.candidates import label_noise_candidates

    X = np.vstack([digits.Xc, digits.Xte[:200]])
    y = np.r_[digits.yc, digits.yte[:200]]
    cands = label_noise_candidates(X, y, n_sets=6, random_state=0)
    Xte, yte = digits.Xte[200:], digits.yte[200:]
    proxy = mde.build_proxy(model, digits.Xtr, digits.ytr, Xte, yte, random_state=0)

    def factory(seed):
        return LogisticRegression(C=0.05, max_iter=3000)

    rep = fidelity_report(
        proxy, factory, digits.Xtr, digits.ytr, Xte, yte, cands, seeds=1, n_boot=200
    )
    assert rep.efficacy == pytest.approx([proxy.efficacy(Xc, yc) for Xc, yc in cands], rel=1e-12)
    truth, _ = retrain_utility(factory, digits.Xtr, digits.ytr, Xte, yte, cands, seeds=1)
    np.testing.assert_allclose(rep.utility, truth, rtol=1e-12)
    r = rank_correlation(rep.efficacy, rep.utility)
    assert rep.spearman == r["spearman"] and rep.pearson == r["pearson"]
    assert rep.spearman > 0.8  # the influence proxy ranks label noise like retraining
    lo, hi = rep.spearman_ci
    assert lo <= rep.spearman <= hi
    assert len(rep.efficacy) == len(rep.utility) == 6
