"""Data owner, hidden mode: the client encrypts under its own key, sends no secret, decrypts
one result per request only, and keeps its key file safe."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.wire.artifact import read_artifact
from mde.wire.commitment import commit
from mde.wire.envelope import Envelope
from mde.wire.messages import DataOwnerKey, EncryptedRecords, MaskedResult


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


def test_the_request_holds_encrypted_columns_a_public_context_and_a_commitment(flow, digits):
    import tenseal as ts

    path, client = flow
    assert isinstance(client, mde.HiddenClient) and client.mode == "hidden"
    assert client.manifest_sha256 == read_artifact(path).digest
    slots = client.manifest.ckks.slots
    X, y = digits.Xc[:40], digits.yc[:40]
    request = client.encrypt(X, y)
    assert (request.n_records, request.n_batches) == (40, 1) and slots > 40
    assert set(request.blobs) == {"context.tenseal", "b0_X", "b0_Y"}
    assert (
        request.artifact_id == client.artifact_id
        and request.manifest_sha256 == client.manifest_sha256
    )
    seed = client.ledger.seed(request.commitment)  # the salt seed stays in its ledger
    assert request.commitment == commit(X.astype(np.float32), y, seed)
    assert request.check_signature() == client.identity.public_hex
    ctx = ts.context_from(request.blobs["context.tenseal"])
    assert not ctx.is_private()
    # the request is a wire envelope and survives the round trip
    assert EncryptedRecords.from_bytes(request.to_bytes()) == request
    # every request gets a new id and key
    again = client.encrypt(X, y)
    assert again.request_id != request.request_id and again.blobs["b0_X"] != request.blobs["b0_X"]


def test_bad_records_are_refused(flow, digits):
    _, client = flow
    with pytest.raises(mde.InputError):
        client.encrypt(digits.Xc[:5, :10], digits.yc[:5])
    with pytest.raises(mde.LabelError):
        client.encrypt(digits.Xc[:5], np.full(5, 42))
    assert not client.awaiting_reply  # nothing was encrypted


def test_decrypt_refuses_results_for_another_request(poly, flow, digits):
    path, client = flow
    with pytest.raises(mde.ProtocolError, match="encrypted nothing"):
        client.decrypt(
            MaskedResult(
                artifact_id=client.artifact_id, request_id="r", result_id="s", ciphertext=b"x"
            ).signed(poly.identity)
        )
    first = client.encrypt(digits.Xc[:20], digits.yc[:20])
    result = poly.evaluate_hidden(first)
    second = client.encrypt(digits.Xc[:20], digits.yc[:20])  # a new request replaces the first
    assert second.request_id != first.request_id
    with pytest.raises(mde.ProtocolError, match="another request"):
        client.decrypt(result)
    with pytest.raises(mde.ProtocolError, match="another request"):
        client.decrypt(
            result.model_copy(
                update={"request_id": second.request_id, "artifact_id": "a" * 32}
            ).signed(poly.identity)
        )
    # right ids, but a ciphertext that is not one under this key
    with pytest.raises(mde.ProtocolError, match="does not belong"):
        client.decrypt(
            result.model_copy(
                update={"request_id": second.request_id, "ciphertext": b"\0" * 64}
            ).signed(poly.identity)
        )
    # a tampered or foreign message is refused before any decryption
    raw = result.to_bytes()
    with pytest.raises(mde.ProtocolError):
        client.decrypt(raw[:-1])
    with pytest.raises(mde.ProtocolError, match="expected an MDE mde-masked-result"):
        client.decrypt(second.to_bytes())


def test_one_decryption_per_request(poly, flow, digits):
    """A second decryption would give a second noisy look at the same slots: refused, even
    for a different result of the same request."""
    _, client = flow
    request = client.encrypt(digits.Xc[:20], digits.yc[:20])
    first = poly.evaluate_hidden(request)
    other = poly.evaluate_hidden(request, allow_repeat=True)
    assert other.result_id != first.result_id
    partial = client.decrypt(first, random_state=0)
    assert (partial.request_id, partial.result_id) == (request.request_id, first.result_id)
    for again in (first, other, other.to_bytes()):
        with pytest.raises(mde.ProtocolError, match="already decrypted"):
            client.decrypt(again)
    # a failed decryption does not count as one
    fresh = client.encrypt(digits.Xc[:20], digits.yc[:20])
    good = poly.evaluate_hidden(fresh, allow_repeat=True)
    with pytest.raises(mde.ProtocolError):
        client.decrypt(good.model_copy(update={"ciphertext": b"\0" * 64}).signed(poly.identity))
    assert client.decrypt(good).result_id == good.result_id


def test_decryption_adds_flooding_noise(poly, flow, digits, tmp_path):
    """The number sent back is never the exact decryption: two copies of one key decrypting
    the same result with different seeds differ by exactly their Gaussian draws."""
    path, client = flow
    request = client.encrypt(digits.Xc[:20], digits.yc[:20])
    client.save_key(tmp_path / "key.bin")
    result = poly.evaluate_hidden(request)
    sigma = client.manifest.flood_sigma
    assert sigma >= 2.0**-12
    a = client.decrypt(result, random_state=1)
    twin = mde.load_artifact(path)  # the same data owner, same ledger: refused
    twin.load_key(tmp_path / "key.bin")
    with pytest.raises(mde.ProtocolError, match="already decrypted"):
        twin.decrypt(result, random_state=2)
    # only a data owner who keeps a second ledger could decrypt again (its own choice)
    twin = mde.load_artifact(path, ledger=tmp_path / "second.sqlite")
    twin.load_key(tmp_path / "key.bin")
    b = twin.decrypt(result, random_state=2)
    draws = [np.random.default_rng(seed).normal(0.0, sigma) for seed in (1, 2)]
    assert a.value != b.value
    assert a.value - b.value == pytest.approx(draws[0] - draws[1], abs=1e-7)
    report = poly.open(a)
    assert report.efficacy == pytest.approx(
        float(poly.record_scores(digits.Xc[:20], digits.yc[:20], exclude=False).sum()), rel=1e-3
    )


def test_key_file_round_trip_and_message_types(poly, flow, digits, tmp_path):
    path, client = flow
    X, y = digits.Xc[:30], digits.yc[:30]
    with pytest.raises(mde.ProtocolError, match="nothing was encrypted"):
        client.save_key(tmp_path / "none.bin")
    request = EncryptedRecords.from_bytes(client.encrypt(X, y).to_bytes())
    client.save_key(tmp_path / "key.bin")
    result = MaskedResult.from_bytes(poly.evaluate_hidden(request).to_bytes())
    later = mde.load_artifact(path)
    later.load_key(tmp_path / "key.bin")
    assert later.awaiting_reply
    partial = later.decrypt(result)
    report = poly.open(partial)
    assert report.efficacy == pytest.approx(
        float(poly.record_scores(X, y, exclude=False).sum()), rel=1e-2, abs=1e-3
    )
    # the key file remembers the decryption once saved again
    later.save_key(tmp_path / "key.bin")
    third = mde.load_artifact(path)
    third.load_key(tmp_path / "key.bin")
    assert not third.awaiting_reply
    with pytest.raises(mde.ProtocolError, match="already decrypted"):
        third.decrypt(result)


def test_damaged_or_foreign_key_files_are_refused(poly, flow, digits, tmp_path):
    path, client = flow
    client.encrypt(digits.Xc[:10], digits.yc[:10])
    client.save_key(tmp_path / "key.bin")
    raw = (tmp_path / "key.bin").read_bytes()
    key = DataOwnerKey.from_bytes(raw)
    other_path = tmp_path / "other.mde"
    poly.export(other_path, mode="hidden")
    with pytest.raises(mde.ProtocolError, match="another artifact"):
        mde.load_artifact(other_path).load_key(tmp_path / "key.bin")
    bad = tmp_path / "bad.bin"
    for blob in (
        raw[:-5],
        raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 1]) + raw[len(raw) // 2 + 1 :],
    ):
        bad.write_bytes(blob)
        with pytest.raises(mde.ProtocolError):
            mde.load_artifact(path).load_key(bad)
    # a well-formed key file whose context holds no secret key
    public = (
        mde.load_artifact(path).encrypt(digits.Xc[:10], digits.yc[:10]).blobs["context.tenseal"]
    )
    bad.write_bytes(key.model_copy(update={"secret_context": public}).to_bytes())
    with pytest.raises(mde.ProtocolError, match="no secret key"):
        mde.load_artifact(path).load_key(bad)
    bad.write_bytes(
        Envelope(
            "mde-data-owner-key",
            key.model_dump(mode="json", exclude={"secret_context"}),
            {"context.secret.tenseal": b"junk"},
        ).to_bytes()
    )
    with pytest.raises(mde.ProtocolError, match="cannot be loaded"):
        mde.load_artifact(path).load_key(bad)
    with pytest.raises(mde.ProtocolError, match="does not exist"):
        mde.load_artifact(path).load_key(tmp_path / "missing.bin")
