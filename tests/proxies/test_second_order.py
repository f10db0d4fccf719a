"""Order-2 head proxies: the pairwise term against finite differences, the line search
against brute force, and the sealed protocol end to end."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.crypto.sealing import aggregate_exponent, pairwise_products, pairwise_values
from mde.data_owner.ledger import DataOwnerLedger
from mde.errors import ArtifactError
from mde.proxies.heads import fit_softmax_head, head_hessian, head_psi, head_test_loss
from mde.proxies.second_order import second_order_efficacy
from mde.wire.artifact import read_artifact
from mde.wire.envelope import Envelope
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


@pytest.fixture(scope="module")
def proxy2(digits, model):
    return mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=8,
        order=2,
        random_state=0,
    )


def test_pairwise_packing_is_the_quadratic_form():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(7, 7))
    Q, s = A + A.T, rng.normal(size=7)
    assert pairwise_values(Q) @ pairwise_products(s) == pytest.approx(s @ Q @ s, rel=1e-12)
    assert len(pairwise_values(Q)) == 7 * 8 // 2


def test_second_order_efficacy_is_the_size_aware_quadratic():
    # r = n_train / (n_train + n_records): 300 / (300 + 100) = 0.75
    assert second_order_efficacy(0.4, 0.2, 100, 300) == pytest.approx(
        0.75 * 0.4 - 0.75**2 * 0.2 / 2, rel=1e-15
    )
    assert second_order_efficacy(-0.4, 0.2, 300, 300) == pytest.approx(
        0.5 * -0.4 - 0.25 * 0.1, rel=1e-15
    )
    # tiny sets: first order
    assert second_order_efficacy(0.4, 0.0, 1, 10**9) == pytest.approx(0.4, rel=1e-8)
    # data_curvature 0.5: the 100 records count as 50 -> r = 300 / 350
    assert second_order_efficacy(0.4, 0.2, 100, 300, 0.5) == pytest.approx(
        6 / 7 * 0.4 - (6 / 7) ** 2 * 0.1
    )


def test_data_curvature_is_the_mean_data_share_of_the_hessian_spectrum(proxy2, digits):
    H_data = head_hessian(proxy2.features(digits.Xtr), proxy2.theta_, 0.0)
    lam = np.linalg.eigvalsh(H_data)
    assert proxy2.data_curvature_ == pytest.approx(np.mean(lam / (lam + proxy2.l2)), rel=1e-8)
    assert 0 < proxy2.data_curvature_ < 1


def test_order_two_tracks_an_exact_refit_of_the_head_better_than_first_order(digits, model):
    """Ground truth: refit the head on D_tr (black-box soft labels) plus the set (its labels),
    each record weighted 1 / n_train as in the influence model, and take the exact change of
    the head's test log-loss."""
    p = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=8,
        order=2,
        exclude_known=False,
        random_state=0,
    )
    phi_tr = p.features(digits.Xtr)
    soft = model.predict_proba(digits.Xtr)
    Xt, yt = p.validate(digits.Xte, digits.yte)
    phi_t = p.features(Xt)
    base = head_test_loss(phi_t, p.theta_, yt)
    for k in (100, 300):
        X, y = digits.Xc[:k], digits.yc[:k]
        phi = np.vstack([phi_tr, p.features(X)])
        targets = np.vstack([soft, np.eye(10)[y]])
        theta = fit_softmax_head(phi, targets, p.l2, n=len(digits.ytr))
        exact = base - head_test_loss(phi_t, theta, yt)
        first = p.record_scores(X, y).sum()
        second = p.efficacy(X, y)
        assert abs(second - exact) < 0.25 * abs(first - exact), (k, exact, first, second)


def test_terms_are_the_taylor_coefficients_of_the_head_test_loss(proxy2, digits):
    """Along the influence step d = -H^-1 s / n, L_test(theta + t d) has slope -A and
    curvature B at t = 0 (central finite differences of the exact test log-loss)."""
    X, y = digits.Xc[:60], digits.yc[:60]
    A, B = proxy2.efficacy_terms(X, y)
    s = proxy2.psi_sum(X, y)
    Xt, yt = proxy2.validate(digits.Xte, digits.yte)
    phi_t = proxy2.features(Xt)
    H = head_hessian(proxy2.features(digits.Xtr), proxy2.theta_, proxy2.l2)
    d = -np.linalg.solve(H, s).reshape(proxy2.theta_.shape) / len(digits.ytr)

    def L(t: float) -> float:
        return head_test_loss(phi_t, proxy2.theta_ + t * d, yt)

    h = 1e-3
    assert -(L(h) - L(-h)) / (2 * h) == pytest.approx(A, rel=1e-5)
    assert (L(h) - 2 * L(0.0) + L(-h)) / h**2 == pytest.approx(B, rel=1e-4)
    assert B > 0
    assert proxy2.efficacy(X, y) == pytest.approx(
        second_order_efficacy(A, B, 60, len(digits.ytr), proxy2.data_curvature_)
    )
    assert proxy2.record_scores(X, y).sum() == pytest.approx(A)  # record scores stay first order


def test_projected_student_terms_are_the_taylor_coefficients(model, digits):
    """With projection_dim the step is d = -R (R^T H R)^-1 R^T s / n; check A and B along it."""
    st = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="student",
        order=2,
        hidden=12,
        projection_dim=40,
        epochs=5,
        n_samples=200,
        exclude_known=False,
        random_state=0,
    )
    X, y = digits.Xc[:60], digits.yc[:60]
    A, B = st.efficacy_terms(X, y)
    Xa, yi = st.validate(X, y)
    s_full = head_psi(st.features(Xa), st.theta_, yi).sum(axis=0)
    R = st.R_
    H = head_hessian(st.features(digits.Xtr), st.theta_, st.l2)
    d = -(R @ np.linalg.solve(R.T @ H @ R, R.T @ s_full)).reshape(st.theta_.shape) / len(digits.ytr)
    Xt, yt = st.validate(digits.Xte, digits.yte)
    phi_t = st.features(Xt)

    def L(t: float) -> float:
        return head_test_loss(phi_t, st.theta_ + t * d, yt)

    h = 1e-3
    assert -(L(h) - L(-h)) / (2 * h) == pytest.approx(A, rel=1e-5)
    assert (L(h) - 2 * L(0.0) + L(-h)) / h**2 == pytest.approx(B, rel=1e-4)


def test_second_order_discounts_large_sets_where_first_order_grows_linearly(digits, model):
    # no sketch: the shifted blocks below are near-copies, which a sketch would count once
    plain = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=8,
        order=2,
        exclude_known=False,
        random_state=0,
    )
    X, y = digits.Xc, digits.yc
    # 2,400 distinct records, 8x D_tr: each block shifted by a thousandth of a grey level
    big_X, big_y = np.vstack([X + 1e-3 * k for k in range(8)]), np.tile(y, 8)
    A1, B1 = plain.efficacy_terms(X, y)
    A8, B8 = plain.efficacy_terms(big_X, big_y)
    assert A8 == pytest.approx(8 * A1, rel=1e-2) and B8 == pytest.approx(64 * B1, rel=2e-2)
    # exact copies inside one offer count once
    assert plain.efficacy_terms(np.vstack([X] * 8), big_y) == pytest.approx((A1, B1), rel=1e-12)
    assert 0 < plain.efficacy(big_X, big_y) < 8 * plain.efficacy(X, y)


def test_near_copies_count_once_with_a_sketch(proxy2, digits):
    X, y = digits.Xc, digits.yc
    shifted, big_y = np.vstack([X + 1e-3 * k for k in range(8)]), np.tile(y, 8)
    assert proxy2.efficacy_terms(shifted, big_y) == pytest.approx(
        proxy2.efficacy_terms(X, y), rel=1e-12
    )


@pytest.mark.parametrize("per_record", [False, True])
def test_sealed_order_two_equals_plaintext_and_verifies(proxy2, digits, tmp_path, per_record):
    X, y = digits.Xc[:120], digits.yc[:120]
    path = tmp_path / "a.mde"
    proxy2.export(path)
    scorer = mde.load_artifact(path)
    assert scorer.manifest.pairwise_layout is not None and "q_0.ckks" in read_artifact(path).members
    report = proxy2.open(scorer.score(X, y, per_record=per_record))
    A, B = proxy2.efficacy_terms(X, y)
    assert report.first_order == pytest.approx(A, rel=1e-3)
    rec = proxy2.session.sealed(report.artifact_id, mde.SealedScoreError)
    flood = rec.sigmas().pairwise * rec.pairwise.scale * 4.0 ** aggregate_exponent(len(y))
    assert report.pairwise == pytest.approx(B, rel=1e-6, abs=8 * flood)  # the block's flooding
    assert report.efficacy == pytest.approx(proxy2.efficacy(X, y), rel=1e-3)
    if per_record:
        np.testing.assert_allclose(report.record_scores, proxy2.record_scores(X, y), atol=1e-4)
    proxy2.verify_delivery(X, y, report, seed=_seed(report))
    n = len(digits.ytr)
    half = report.pairwise * 0.5
    forged = report.model_copy(
        update={
            "pairwise": half,
            "efficacy": second_order_efficacy(
                report.first_order, half, len(y), n, proxy2.data_curvature_
            ),
        }
    )
    with pytest.raises(mde.DeliveryError, match="pairwise"):
        proxy2.verify_delivery(X, y, forged, seed=_seed(forged))
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        proxy2.verify_delivery(
            X,
            y,
            report.model_copy(update={"efficacy": report.efficacy * 1.5}),
            seed=_seed(report.model_copy(update={"efficacy": report.efficacy * 1.5})),
        )
    with pytest.raises(mde.DeliveryError, match="terms"):
        proxy2.verify_delivery(
            X,
            y,
            report.model_copy(update={"first_order": None, "pairwise": None}),
            seed=_seed(report.model_copy(update={"first_order": None, "pairwise": None})),
        )


def test_sealed_score_without_its_pairwise_part_is_refused(proxy2, digits, tmp_path):
    X, y = digits.Xc[:50], digits.yc[:50]
    path = tmp_path / "a.mde"
    proxy2.export(path)
    sealed = mde.load_artifact(path).score(X, y)
    n_q = 1  # the seller sums the pairwise chunks into one ciphertext
    common = {
        "artifact_id": sealed.artifact_id,
        "manifest_sha256": sealed.header.manifest_sha256,
        "n_records": 50,
        "per_record": False,
        "commitment": sealed.commitment,
    }
    assert n_q >= 1 and len(sealed.ciphertexts) > n_q
    w_only = mde.SealedScore.build(key=FORGER, **common, ciphertexts=sealed.ciphertexts[:-n_q])
    with pytest.raises(mde.SealedScoreError):
        proxy2.open(w_only, allow_repeat=True)
    swapped = mde.SealedScore.build(key=FORGER, **common, ciphertexts=sealed.ciphertexts[::-1])
    with pytest.raises(mde.SealedScoreError):
        proxy2.open(swapped, allow_repeat=True)


def test_order_survives_save_and_load(proxy2, digits, tmp_path):
    proxy2.save(tmp_path / "p.zip")
    back = mde.load_proxy(tmp_path / "p.zip")
    assert back.order_ == 2
    want = proxy2.efficacy(digits.Xc, digits.yc)
    assert back.efficacy(digits.Xc, digits.yc) == pytest.approx(want, rel=1e-12)


def test_student_order_two_terms_match_its_head(model, digits):
    st = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="student",
        order=2,
        epochs=5,
        n_samples=200,
        random_state=0,
    )
    A, B = st.efficacy_terms(digits.Xc, digits.yc)
    assert A == pytest.approx(st.record_scores(digits.Xc, digits.yc).sum()) and B > 0


def test_bad_order_is_refused(model, digits):
    for bad in (3, 0, True, 1.5):
        with pytest.raises(mde.InputError, match="order"):
            mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, order=bad)
    with pytest.raises(mde.InputError, match="order"):
        mde.build_proxy(
            model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", order=2
        )
    first = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0
    )
    with pytest.raises(mde.InputError, match="order=2"):
        first.efficacy_terms(digits.Xc, digits.yc)


def test_rehashed_manifest_with_another_pairwise_layout_is_refused(proxy2, tmp_path):
    """A forged artifact whose envelope is re-hashed (so every member hash and the canonical
    encoding check out) but whose pairwise layout was edited is still refused."""
    proxy2.export(tmp_path / "a.mde")
    env = Envelope.from_bytes((tmp_path / "a.mde").read_bytes(), "mde-artifact", ArtifactError)
    header = dict(env.header)
    assert header["pairwise_layout"]["segment"] == 4
    # would make the seller sum other positions than the pairwise total's
    header["pairwise_layout"] = {**header["pairwise_layout"], "segment": 8}
    forged = Envelope("mde-artifact", header, dict(env.members)).signed(FORGER).to_bytes()
    # a well-formed envelope: only the manifest's own check can refuse it
    assert Envelope.from_bytes(forged, "mde-artifact", ArtifactError).header == header
    with pytest.raises(mde.ArtifactError, match="pairwise layout"):
        mde.load_artifact(forged)


@pytest.mark.parametrize(
    "kind,options",
    [
        ("influence", {}),
        ("influence-poly", {}),
        ("student", {"hidden": 8, "epochs": 3, "n_samples": 100, "projection_dim": 20}),
    ],
)
def test_fast_psi_sum_equals_the_sum_of_psi(model, digits, kind, options):
    p = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind=kind, random_state=0, **options
    )
    # fresh records and copies of training records, which the membership sketch excludes
    X, y = np.vstack([digits.Xc, digits.Xtr[:60]]), np.r_[digits.yc, digits.ytr[:60]]
    psi = p.psi(X, y)
    keep = ~p.excluded(X, y)
    assert not keep[len(digits.yc) :].any() and keep[: len(digits.yc)].mean() > 0.9
    np.testing.assert_allclose(p.psi_sum(X, y), psi[keep].sum(axis=0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        p.psi_sum(X, y, batch_size=7), psi[keep].sum(axis=0), rtol=1e-10, atol=1e-10
    )
    # the proxy's own weighted fast path (no psi materialised), with arbitrary weights
    Xa, yi = p.validate(X, y)
    weight = (np.arange(len(yi)) % 3) / 2.0
    np.testing.assert_allclose(
        p.proxy._psi_sum(Xa, yi, weight), weight @ psi, rtol=1e-10, atol=1e-10
    )
