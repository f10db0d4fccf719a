"""Order-2 head proxies: the pairwise term against finite differences, the line search
against brute force, and the sealed protocol end to end."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.influence import head_test_loss
from mde.report import second_order_efficacy
from mde.sealing import pairwise_products, pairwise_values


@pytest.fixture(scope="module")
def proxy2(digits, model):
    return mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, order=2,
                           random_state=0)


def test_pairwise_packing_is_the_quadratic_form():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(7, 7))
    Q, s = A + A.T, rng.normal(size=7)
    assert pairwise_values(Q) @ pairwise_products(s) == pytest.approx(s @ Q @ s, rel=1e-12)
    assert len(pairwise_values(Q)) == 7 * 8 // 2


def test_line_search_matches_brute_force():
    ts = np.linspace(0.0, 1.0, 200001)
    rng = np.random.default_rng(1)
    pairs = list(zip(rng.normal(size=40), 3 * np.abs(rng.normal(size=40))))
    for A, B in [*pairs, (0.3, 0.0), (-0.2, 0.5), (1.0, 1.0), (1.0, 4.0)]:
        if A > 0:  # useful data: the best point of the quadratic model on the step
            expected = np.max(ts * A - ts**2 * B / 2)
        else:  # harmful data keeps the full step (t = 1), so it is priced below zero
            expected = A - B / 2
        assert second_order_efficacy(float(A), float(B)) == pytest.approx(expected, abs=1e-9)


def test_terms_are_the_taylor_coefficients_of_the_head_test_loss(proxy2, digits):
    """Along the influence step d = -H^-1 s / n, L_test(theta + t d) has slope -A and
    curvature B at t = 0 (central finite differences of the exact test log-loss)."""
    X, y = digits.Xc[:60], digits.yc[:60]
    A, B = proxy2.efficacy_terms(X, y)
    Xa, yi = proxy2._validate(X, y)
    s = proxy2._psi_total(Xa, yi)
    Xt, yt = proxy2._validate(digits.Xte, digits.yte)
    phi_t = proxy2._phi(Xt)
    from mde.influence import head_hessian

    H = head_hessian(proxy2._phi(proxy2._validate(digits.Xtr, digits.ytr)[0]), proxy2.theta_, proxy2.l2)
    d = -np.linalg.solve(H, s).reshape(proxy2.theta_.shape) / len(digits.ytr)

    def L(t: float) -> float:
        return head_test_loss(phi_t, proxy2.theta_ + t * d, yt)

    h = 1e-3
    assert -(L(h) - L(-h)) / (2 * h) == pytest.approx(A, rel=1e-5)
    assert (L(h) - 2 * L(0.0) + L(-h)) / h**2 == pytest.approx(B, rel=1e-4)
    assert B > 0
    assert proxy2.efficacy(X, y) == pytest.approx(second_order_efficacy(A, B))
    assert proxy2.record_scores(X, y).sum() == pytest.approx(A)  # record scores stay first order


def test_second_order_discounts_large_sets_where_first_order_grows_linearly(proxy2, digits):
    X, y = digits.Xc, digits.yc
    big_X, big_y = np.vstack([X] * 8), np.tile(y, 8)  # 2,400 records, 8x D_tr
    A1, B1 = proxy2.efficacy_terms(X, y)
    A8, B8 = proxy2.efficacy_terms(big_X, big_y)
    assert A8 == pytest.approx(8 * A1, rel=1e-9) and B8 == pytest.approx(64 * B1, rel=1e-9)
    assert proxy2.efficacy(big_X, big_y) < 8 * proxy2.efficacy(X, y)
    assert proxy2.efficacy(big_X, big_y) >= proxy2.efficacy(X, y)  # the line search never overshoots


@pytest.mark.parametrize("per_record", [False, True])
def test_sealed_order_two_equals_plaintext_and_verifies(proxy2, digits, tmp_path, per_record):
    X, y = digits.Xc[:120], digits.yc[:120]
    path = tmp_path / "a.mde"
    proxy2.export(path)
    scorer = mde.load_artifact(path)
    assert scorer.manifest.pairwise_layout is not None and "q_0.ckks" in scorer.manifest.members
    report = proxy2.open(scorer.score(X, y, per_record=per_record))
    A, B = proxy2.efficacy_terms(X, y)
    assert report.first_order == pytest.approx(A, rel=1e-3)
    assert report.pairwise == pytest.approx(B, rel=1e-3)
    assert report.efficacy == pytest.approx(proxy2.efficacy(X, y), rel=1e-3)
    if per_record:
        np.testing.assert_allclose(report.record_scores, proxy2.record_scores(X, y), atol=1e-4)
    proxy2.verify_delivery(X, y, report)
    forged = report.model_copy(update={"pairwise": report.pairwise * 0.5,
                                       "efficacy": second_order_efficacy(report.first_order, report.pairwise * 0.5)})
    with pytest.raises(mde.DeliveryError, match="pairwise"):
        proxy2.verify_delivery(X, y, forged)
    with pytest.raises(mde.DeliveryError, match="combination"):
        proxy2.verify_delivery(X, y, report.model_copy(update={"efficacy": report.first_order}))


def test_sealed_score_without_its_pairwise_part_is_refused(proxy2, digits, tmp_path):
    X, y = digits.Xc[:50], digits.yc[:50]
    path = tmp_path / "a.mde"
    proxy2.export(path)
    sealed = mde.load_artifact(path).score(X, y)
    n_q = mde.load_artifact(path).manifest.pairwise_layout.chunks
    w_only = mde.SealedScore.build(artifact_id=sealed.artifact_id, manifest_sha256=sealed.header.manifest_sha256,
                                   n_records=50, per_record=False, commitment=sealed.commitment,
                                   ciphertexts=sealed.ciphertexts[:-n_q])
    with pytest.raises(mde.SealedScoreError):
        proxy2.open(w_only, allow_repeat=True)
    swapped = mde.SealedScore.build(artifact_id=sealed.artifact_id, manifest_sha256=sealed.header.manifest_sha256,
                                    n_records=50, per_record=False, commitment=sealed.commitment,
                                    ciphertexts=sealed.ciphertexts[::-1])
    with pytest.raises(mde.SealedScoreError):
        proxy2.open(swapped, allow_repeat=True)


def test_order_survives_save_and_load(proxy2, digits, tmp_path):
    proxy2.save(tmp_path / "p.zip")
    back = mde.load_proxy(tmp_path / "p.zip")
    assert back.order_ == 2
    assert back.efficacy(digits.Xc, digits.yc) == pytest.approx(proxy2.efficacy(digits.Xc, digits.yc), rel=1e-12)


def test_student_order_two_terms_match_its_head(model, digits):
    st = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="student", order=2,
                         epochs=5, n_samples=200, random_state=0)
    A, B = st.efficacy_terms(digits.Xc, digits.yc)
    assert A == pytest.approx(st.record_scores(digits.Xc, digits.yc).sum()) and B > 0


def test_bad_order_is_refused(model, digits):
    for bad in (3, 0, True, 1.5):
        with pytest.raises(mde.InputError, match="order"):
            mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, order=bad)
    with pytest.raises(mde.InputError, match="order"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", order=2)
    first = mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0)
    with pytest.raises(mde.InputError, match="order=2"):
        first.efficacy_terms(digits.Xc, digits.yc)


def test_rehashed_manifest_with_another_pairwise_layout_is_refused(proxy2, tmp_path):
    import hashlib
    import json
    import zipfile

    from mde.artifact import write_zip

    proxy2.export(tmp_path / "a.mde")
    with zipfile.ZipFile(tmp_path / "a.mde") as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    manifest["pairwise_layout"]["tiles"] = 3  # would mask blocks that are not the pairwise total
    mbytes = json.dumps(manifest).encode()
    write_zip(tmp_path / "b.mde", {**files, "manifest.json": mbytes,
                                   "manifest.sha256": hashlib.sha256(mbytes).hexdigest().encode()})
    with pytest.raises(mde.ArtifactError, match="pairwise layout"):
        mde.load_artifact(tmp_path / "b.mde")
