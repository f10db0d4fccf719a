"""The influence proxy against exact answers: finite differences and brute-force refits."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.numerics import softmax
from mde.proxies.heads import fit_softmax_head, head_hessian, head_psi
from mde.proxies.registry import proxy_class


def _toy(seed=0, n=60, q=4, k=3):
    rng = np.random.default_rng(seed)
    phi = np.hstack([rng.normal(size=(n, q - 1)), np.ones((n, 1))])
    targets = softmax(rng.normal(size=(n, k)) * 2)
    return phi, targets


def _objective(theta, phi, targets, l2):
    logp = np.log(softmax(phi @ theta.T))
    return -(targets * logp).sum() / len(phi) + 0.5 * l2 * (theta**2).sum()


def test_psi_is_the_loss_gradient():
    phi, _ = _toy()
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(3, 4))
    y = rng.integers(0, 3, len(phi))
    psi = head_psi(phi, theta, y)
    eps = 1e-6
    for i in (0, 7):
        num = np.zeros(theta.size)
        for j in range(theta.size):
            d = np.zeros(theta.size)
            d[j] = eps
            lp = -np.log(softmax(phi[i : i + 1] @ (theta + d.reshape(theta.shape)).T)[0, y[i]])
            lm = -np.log(softmax(phi[i : i + 1] @ (theta - d.reshape(theta.shape)).T)[0, y[i]])
            num[j] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(psi[i], num, atol=1e-6)


def test_head_fit_is_stationary_and_hessian_matches_finite_differences():
    phi, targets = _toy()
    l2 = 0.05
    theta = fit_softmax_head(phi, targets, l2)
    grad = (softmax(phi @ theta.T) - targets).T @ phi / len(phi) + l2 * theta
    assert np.abs(grad).max() < 1e-7
    H = head_hessian(phi, theta, l2, chunk=7)  # chunking must not change the result
    eps = 1e-5
    num = np.zeros_like(H)
    for j in range(theta.size):
        d = np.zeros(theta.size)
        d[j] = eps

        def g(t):
            t = t.reshape(theta.shape)
            return ((softmax(phi @ t.T) - targets).T @ phi / len(phi) + l2 * t).ravel()

        num[:, j] = (g(theta.ravel() + d) - g(theta.ravel() - d)) / (2 * eps)
    np.testing.assert_allclose(H, num, atol=1e-7)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_record_score_equals_refit_derivative():
    """<w, psi(z)> = d/d eps of the test-loss reduction when z is up-weighted by eps (refit)."""
    phi, targets = _toy(n=80)
    rng = np.random.default_rng(2)
    phi_te = np.hstack([rng.normal(size=(40, 3)), np.ones((40, 1))])
    y_te = rng.integers(0, 3, 40)
    l2 = 0.1
    theta = fit_softmax_head(phi, targets, l2)
    H = head_hessian(phi, theta, l2)
    w = np.linalg.solve(H, head_psi(phi_te, theta, y_te).mean(0)) / len(phi)

    def test_loss(t):
        return -np.log(softmax(phi_te @ t.T)[np.arange(40), y_te]).mean()

    for z_phi, z_y in [(phi[:1] * 2.0, 1), (np.array([[0.5, -1.0, 2.0, 1.0]]), 2)]:
        predicted = head_psi(z_phi, theta, np.array([z_y])) @ w
        eps = 1e-3
        onehot = np.eye(3)[[z_y]]
        t_eps = fit_softmax_head(
            np.vstack([phi, z_phi]),
            np.vstack([targets, onehot]),
            l2,
            sample_weight=np.r_[np.ones(80), eps],
            n=80,
        )
        actual = (test_loss(theta) - test_loss(t_eps)) / eps
        np.testing.assert_allclose(predicted[0], actual, rtol=2e-2)


def test_record_scores_sum_to_efficacy_and_match_psi_dot_w(proxy, digits):
    scores = proxy.record_scores(digits.Xc, digits.yc)
    assert scores.shape == (len(digits.yc),)
    np.testing.assert_allclose(scores.sum(), proxy.efficacy(digits.Xc, digits.yc), rtol=1e-12)
    np.testing.assert_allclose(
        scores, proxy.psi(digits.Xc, digits.yc) @ proxy.w_, rtol=1e-9, atol=1e-15
    )
    # batching does not change anything
    np.testing.assert_allclose(proxy.record_scores(digits.Xc, digits.yc, batch_size=7), scores)


def test_noisy_labels_are_worth_less(proxy, digits):
    rng = np.random.default_rng(0)
    noisy = rng.permutation(digits.yc)
    clean_eff = proxy.efficacy(digits.Xc, digits.yc)
    assert clean_eff > 0
    assert proxy.efficacy(digits.Xc, noisy) < 0 < clean_eff


def test_fidelity_and_summary(proxy, digits, model):
    agree = np.mean(proxy.predict(digits.Xte) == model.predict(digits.Xte))
    assert proxy.fidelity_ == pytest.approx(agree)
    assert proxy.fidelity_ > 0.8
    s = proxy.summary()
    assert s["kind"] == "influence" and s["psi_dim"] == 10 * 17


def test_random_projection_option(digits, model):
    p = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        compression="random",
        n_components=12,
        random_state=3,
    )
    assert p.psi_dim_ == 10 * 13
    q = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        compression="random",
        n_components=12,
        random_state=3,
    )
    np.testing.assert_array_equal(p.w_, q.w_)  # reproducible with a seed


def test_bad_options(digits, model):
    with pytest.raises(mde.InputError, match="l2"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, l2=0.0)
    with pytest.raises(mde.InputError, match="compression"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, compression="svd")
    with pytest.raises(mde.InputError, match="unknown proxy kind"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="oracle")
    with pytest.raises(mde.InputError, match="bad option"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_comp=3)
    with pytest.raises(mde.InputError, match="bad option"):  # only the student projects psi
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, projection_dim=20)
    with pytest.raises(mde.NotFittedError):
        proxy_class("influence")().efficacy(digits.Xc, digits.yc)
