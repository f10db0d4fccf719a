"""Model owner, hidden mode: the encrypted evaluation equals the clear one, nothing secret
travels, and tampered, mismatched, replayed or unsafe messages are refused."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import mde
from mde.crypto.context import new_context, public_context_bytes
from mde.crypto.params import hidden_params
from mde.data_owner.ledger import DataOwnerLedger
from mde.wire.envelope import Envelope
from mde.wire.messages import DataOwnerKey, EncryptedRecords, MaskedResult, PartialResult
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


@pytest.fixture(scope="module")
def poly(digits, model):
    return mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", random_state=0
    )


@pytest.fixture()
def flow(poly, tmp_path):
    """A fresh hidden artifact and its client."""
    path = tmp_path / "hidden.mde"
    poly.export(path, mode="hidden")
    return path, mde.load_artifact(path)


def _plain(poly, X, y) -> float:
    """The clear total the encrypted score graph computes (no membership sketch in hidden mode)."""
    return float(poly.record_scores(X, y, exclude=False).sum())


def test_poly_influence_matches_a_brute_force_refit(poly, model, digits):
    """First-order influence of the squared-loss head against re-solving the ridge problem."""
    from adapters import wrap
    from mde.validation import encode_labels

    phi, phi_te = poly.features(digits.Xtr), poly.features(digits.Xte)
    n, l2 = len(phi), poly.l2
    # targets = the black box's probabilities (what the head was fitted to)
    targets = wrap(model).predict_proba(digits.Xtr)
    yte = np.eye(10)[encode_labels(digits.yte, list(range(10)))]

    def test_loss(theta):
        return 0.5 * np.mean(np.sum((phi_te @ theta.T - yte) ** 2, axis=1))

    def refit(extra_phi, extra_t, eps):
        G = (phi.T @ phi + eps * extra_phi.T @ extra_phi) / n + l2 * np.eye(phi.shape[1])
        return np.linalg.solve(G, (phi.T @ targets + eps * extra_phi.T @ extra_t) / n).T

    base = test_loss(refit(phi[:0], targets[:0], 0.0))
    np.testing.assert_allclose(refit(phi[:0], targets[:0], 0.0), poly.theta_, atol=1e-10)
    X, y = digits.Xc[:5], digits.yc[:5]
    eps = 1e-4
    for i in range(5):
        f = poly.features(X[i : i + 1])
        change = (base - test_loss(refit(f, np.eye(10)[[y[i]]], eps))) / eps
        assert poly.record_scores(X[i : i + 1], y[i : i + 1])[0] == pytest.approx(
            change, rel=1e-3, abs=1e-9
        )


def test_hidden_round_trip_equals_plaintext_and_verifies(poly, flow, digits):
    path, client = flow
    X, y = digits.Xc, digits.yc
    request = client.encrypt(X, y)
    result = poly.evaluate_hidden(request.to_bytes(), random_state=0)
    assert poly.opened_[client.artifact_id] == 1
    partial = client.decrypt(result.to_bytes(), random_state=0)
    report = poly.open(partial.to_bytes())
    assert report.efficacy == pytest.approx(_plain(poly, X, y), rel=1e-3)
    assert (report.n_records, report.artifact_id, report.commitment) == (
        len(y),
        client.artifact_id,
        request.commitment,
    )
    assert report.units.startswith("predicted reduction of the proxy's mean squared")
    poly.verify_delivery(X, y, report, seed=_seed(report))
    with pytest.raises(mde.DeliveryError):
        poly.verify_delivery(X, (y + 1) % 10, report, seed=_seed(report))
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        poly.verify_delivery(
            X,
            y,
            report.model_copy(update={"efficacy": report.efficacy + 1.0}),
            seed=_seed(report.model_copy(update={"efficacy": report.efficacy + 1.0})),
        )
    with pytest.raises(mde.ProtocolError, match="waiting for"):  # opened once
        poly.open(partial)


def test_nothing_secret_and_no_weights_travel(poly, flow, digits):
    path, client = flow
    artifact = open(path, "rb").read()
    request = client.encrypt(digits.Xc[:100], digits.yc[:100])
    result = poly.evaluate_hidden(request)
    messages = [artifact, result.to_bytes()]
    # the model owner's messages: no weights in float64 or float32, in any orientation
    scale = poly.session.artifacts[client.artifact_id].scale
    weights = [poly.w_, poly.theta_.ravel(), poly.P_.ravel(), poly.c_, poly.w_ * scale]
    for blob in messages:
        for arr in weights:
            for v in arr[np.abs(arr) > 1e-6][:50]:
                assert np.float64(v).tobytes() not in blob
                assert np.float32(v).tobytes() not in blob
    # the hidden artifact is the envelope header only; the result one ciphertext
    with zipfile.ZipFile(io.BytesIO(artifact)) as zf:
        assert zf.namelist() == ["envelope.json", "envelope.sig"]
    with zipfile.ZipFile(io.BytesIO(result.to_bytes())) as zf:
        assert zf.namelist() == ["envelope.json", "envelope.sig", "score.ckks"]
    # the data owner's context travels without its secret key; the model owner cannot decrypt
    # the result ciphertext
    import tenseal as ts

    ctx = ts.context_from(request.blobs["context.tenseal"])
    assert not ctx.is_private()
    with pytest.raises(ValueError):
        ts.ckks_vector_from(ctx, result.ciphertext).decrypt()


def test_tampered_and_mismatched_requests_are_refused(poly, flow, digits, tmp_path):
    path, client = flow
    request = client.encrypt(digits.Xc[:50], digits.yc[:50])
    raw = request.to_bytes()
    for bad in (
        raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 1]) + raw[len(raw) // 2 + 1 :],
        raw[:-1],
        raw + b"\0",
        b"garbage",
    ):
        with pytest.raises(mde.ProtocolError):
            poly.evaluate_hidden(bad)
    with pytest.raises(mde.ProtocolError, match="expected an MDE mde-encrypted-records file"):
        poly.evaluate_hidden(
            PartialResult(artifact_id="a", request_id="b", result_id="c", value=1.0).to_bytes()
        )
    # a request carrying the data owner's secret key is refused (it would expose the records)
    client.save_key(tmp_path / "key.bin")
    secret = DataOwnerKey.from_bytes((tmp_path / "key.bin").read_bytes()).secret_context
    leaky = request.model_copy(
        update={"blobs": {**request.blobs, "context.tenseal": secret}}
    ).signed(FORGER)
    with pytest.raises(mde.ProtocolError, match="secret key"):
        poly.evaluate_hidden(leaky.to_bytes())
    # a public context with other CKKS parameters
    other_params = public_context_bytes(
        new_context(hidden_params(3), symmetric=True), relin_keys=True
    )
    with pytest.raises(mde.ProtocolError, match="other parameters"):
        poly.evaluate_hidden(
            request.model_copy(
                update={"blobs": {**request.blobs, "context.tenseal": other_params}}
            ).signed(FORGER)
        )
    # missing, extra or miscounted batches
    blobs = request.blobs
    shapes = [
        {k: v for k, v in blobs.items() if k != "b0_Y"},
        {**blobs, "b1_X": blobs["b0_X"], "b1_Y": blobs["b0_Y"]},
        {**blobs, "payload": b"x"},
    ]
    for edited in shapes:
        with pytest.raises(mde.ProtocolError, match="expected 1 batches"):
            poly.evaluate_hidden(request.model_copy(update={"blobs": edited}).signed(FORGER))
    with pytest.raises(mde.ProtocolError, match="record count"):
        poly.evaluate_hidden(request.model_copy(update={"n_records": 10**6}).signed(FORGER))
    # a batch with one feature ciphertext too few, or junk instead of ciphertexts
    from mde.wire.messages import join_blobs, split_blobs

    short = join_blobs(split_blobs(blobs["b0_X"])[:-1])
    with pytest.raises(mde.ProtocolError, match="63 feature"):
        poly.evaluate_hidden(
            request.model_copy(update={"blobs": {**blobs, "b0_X": short}}).signed(FORGER)
        )
    junk = join_blobs([b"\0" * 64] * 64)
    with pytest.raises(mde.ProtocolError, match="do not load"):
        poly.evaluate_hidden(
            request.model_copy(update={"blobs": {**blobs, "b0_X": junk}}).signed(FORGER)
        )
    with pytest.raises(mde.ProtocolError, match="truncated"):
        poly.evaluate_hidden(
            request.model_copy(update={"blobs": {**blobs, "b0_X": blobs["b0_X"][:-3]}}).signed(
                FORGER
            )
        )
    # a request against a modified copy of the artifact, or for a sealed-value artifact
    with pytest.raises(mde.ProtocolError, match="modified copy"):
        poly.evaluate_hidden(
            request.model_copy(update={"manifest_sha256": "0" * 64}).signed(FORGER)
        )
    sealed_id = poly.export(tmp_path / "sealed.mde")
    with pytest.raises(mde.ProtocolError, match="hidden mode"):
        poly.evaluate_hidden(request.model_copy(update={"artifact_id": sealed_id}).signed(FORGER))
    # none of the refusals spent the evaluation: the genuine request still goes through, once
    assert client.artifact_id not in poly.opened_
    poly.evaluate_hidden(raw)
    with pytest.raises(mde.ReplayError):
        poly.evaluate_hidden(raw)


def test_ciphertexts_from_another_key_decrypt_to_garbage_and_are_refused(poly, flow, digits):
    """A batch encrypted under another data owner's key evaluates under the request's keys
    but decrypts to values far outside the CKKS range: the client returns no number."""
    path, client = flow
    request = client.encrypt(digits.Xc[:50], digits.yc[:50])
    other = mde.load_artifact(path)
    foreign = other.encrypt(digits.Xc[:50], digits.yc[:50])
    mixed = request.model_copy(
        update={"blobs": {**request.blobs, "b0_X": foreign.blobs["b0_X"]}}
    ).signed(FORGER)
    result = poly.evaluate_hidden(mixed, allow_repeat=True)
    with pytest.raises(mde.ProtocolError, match="outside the CKKS range"):
        client.decrypt(result)
    # the masked result of a request is refused by any other client
    with pytest.raises(mde.ProtocolError, match="another request"):
        other.decrypt(poly.evaluate_hidden(request, allow_repeat=True))


def test_partial_results_must_answer_a_pending_result(poly, flow, digits, model):
    path, client = flow
    X, y = digits.Xc[:40], digits.yc[:40]
    result = poly.evaluate_hidden(client.encrypt(X, y))
    partial = client.decrypt(result)
    for edit in ({"result_id": "f" * 32}, {"request_id": "e" * 32}, {"artifact_id": "d" * 32}):
        with pytest.raises(mde.ProtocolError):
            poly.open(partial.model_copy(update=edit).signed(client.identity))
    # another proxy (same data, same settings) waits for no such result
    twin = mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", random_state=0
    )
    with pytest.raises(mde.ProtocolError):
        twin.open(partial)
    # a non-finite or non-numeric value is not a partial result
    raw = (
        Envelope("mde-partial-result", {**partial.model_dump(mode="json"), "value": "nan"})
        .signed(FORGER)
        .to_bytes()
    )
    with pytest.raises(mde.SealedScoreError):
        poly.open(b"not an envelope")
    with pytest.raises(mde.ProtocolError, match="valid number"):
        PartialResult.from_bytes(raw)
    # an altered value opens (the mask hides it) but fails delivery
    report = poly.open(
        partial.model_copy(update={"value": partial.value + 50.0}).signed(client.identity)
    )
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        poly.verify_delivery(X, y, report, seed=_seed(report))
    assert poly.session.pending(client.artifact_id) == []


def test_hidden_export_is_only_for_polynomial_proxies(proxy, poly, tmp_path):
    with pytest.raises(mde.InputError, match="influence-poly"):
        proxy.export(tmp_path / "h.mde", mode="hidden")
    with pytest.raises(mde.InputError, match="do not pass ckks"):
        poly.export(tmp_path / "h.mde", mode="hidden", ckks=mde.CKKSParams())
    with pytest.raises(mde.InputError, match="mode must be"):
        poly.export(tmp_path / "h.mde", mode="clear")
    aid = poly.export(tmp_path / "ok.mde", mode="hidden")
    record = poly.session.artifacts[aid]
    assert record.mode == "hidden" and poly.session.pending(aid) == []
    assert record.manifest_sha256 == mde.load_artifact(tmp_path / "ok.mde").manifest_sha256


def test_pending_masks_live_in_the_ledger_not_the_proxy_file(poly, flow, digits, tmp_path):
    path, client = flow
    X, y = digits.Xc[:30], digits.yc[:30]
    poly.save(tmp_path / "p.mdeproxy")  # before the evaluation: its mask is not in the file
    result = MaskedResult.from_bytes(
        poly.evaluate_hidden(
            EncryptedRecords.from_bytes(client.encrypt(X, y).to_bytes())
        ).to_bytes()
    )
    loaded = mde.load_proxy(tmp_path / "p.mdeproxy", ledger=poly.ledger)
    report = loaded.open(client.decrypt(result))
    assert report.efficacy == pytest.approx(_plain(poly, X, y), rel=1e-2, abs=1e-3)
    loaded.verify_delivery(X, y, report, seed=_seed(report))
    with pytest.raises(mde.ReplayError):
        loaded.evaluate_hidden(client.encrypt(X, y))
