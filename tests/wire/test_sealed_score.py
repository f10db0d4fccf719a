"""The sealed-score format: a wire envelope of ``ct_<i>.ckks`` members; every damaged,
padded, truncated or mislabelled score is refused with SealedScoreError."""

from __future__ import annotations

import io
import zipfile

import pytest

import mde
from mde.wire import read_message
from mde.wire.envelope import Envelope
from mde.wire.messages import PartialResult
from mde.wire.sealed_score import SealedHeader, SealedScore
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key

FORMAT = "mde-sealed-score"


@pytest.fixture(scope="module")
def sealed(artifact, digits) -> SealedScore:
    # 300 records per record: two ciphertexts (254 records each)
    return mde.load_artifact(artifact).score(digits.Xc, digits.yc, per_record=True)


def _parts(sealed: SealedScore) -> tuple[dict, dict[str, bytes]]:
    env = Envelope.from_bytes(sealed.to_bytes(), FORMAT, mde.SealedScoreError)
    return dict(env.header), dict(env.members)


def test_round_trip_and_layout(sealed, artifact):
    blob = sealed.to_bytes()
    back = SealedScore.from_bytes(blob)
    assert back.header == sealed.header and back.ciphertexts == sealed.ciphertexts
    assert back.to_bytes() == blob
    assert back.header.n_ciphertexts == len(sealed.ciphertexts) > 1
    assert back.header.manifest_sha256 == mde.load_artifact(artifact).manifest_sha256
    assert (back.n_records, back.header.per_record) == (300, True)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = zf.namelist()
    assert names == ["envelope.json", "envelope.sig"] + [
        f"ct_{i:07d}.ckks" for i in range(len(sealed.ciphertexts))
    ]
    # no magic bytes: the format is named in the envelope header
    assert isinstance(read_message(blob), SealedScore)


def test_corrupt_sealed_bytes_are_refused(sealed):
    blob = sealed.to_bytes()
    for bad in (
        blob[:-10],
        blob[:-100] + bytes([blob[-100] ^ 1]) + blob[-99:],
        b"garbage",
        blob[:20],
        blob + b"\0",
        b"",
    ):
        with pytest.raises(mde.SealedScoreError):
            SealedScore.from_bytes(bad)
        with pytest.raises(mde.SealedScoreError):
            read_message(bad)


def test_truncated_padded_and_renamed_ciphertext_lists_are_refused(sealed):
    header, members = _parts(sealed)
    names = sorted(members)
    cases = {
        "dropped last": {k: members[k] for k in names[:-1]},
        "dropped first": {k: members[k] for k in names[1:]},
        "extra": {**members, f"ct_{len(names):07d}.ckks": members[names[0]]},
        "renamed": {**{k: members[k] for k in names[:-1]}, "ct_9999999.ckks": members[names[-1]]},
        "foreign name": {**{k: members[k] for k in names[:-1]}, "payload.py": members[names[-1]]},
    }
    for edited in cases.values():
        with pytest.raises(mde.SealedScoreError, match="truncated or padded"):
            SealedScore.from_bytes(Envelope(FORMAT, header, edited).signed(FORGER).to_bytes())
    # the header announcing another count
    for n in (len(names) - 1, len(names) + 1):
        with pytest.raises(mde.SealedScoreError, match="truncated or padded"):
            SealedScore.from_bytes(
                Envelope(FORMAT, {**header, "n_ciphertexts": n}, members).signed(FORGER).to_bytes()
            )


def test_invalid_headers_are_refused(sealed):
    header, members = _parts(sealed)
    for edit in (
        {"n_records": 0},
        {"n_records": 70.5},
        {"per_record": "maybe"},
        {"commitment": "g" * 64},
        {"manifest_sha256": "0" * 63},
        {"artifact_id": ""},
        {"n_ciphertexts": 0},
        {"extra": 1},
    ):
        with pytest.raises(mde.SealedScoreError, match="header is invalid"):
            SealedScore.from_bytes(
                Envelope(FORMAT, {**header, **edit}, members).signed(FORGER).to_bytes()
            )
    missing = {k: v for k, v in header.items() if k != "commitment"}
    with pytest.raises(mde.SealedScoreError, match="header is invalid"):
        SealedScore.from_bytes(Envelope(FORMAT, missing, members).signed(FORGER).to_bytes())


def test_other_formats_are_not_sealed_scores(sealed, artifact):
    header, members = _parts(sealed)
    with pytest.raises(mde.SealedScoreError, match="expected an MDE mde-sealed-score"):
        SealedScore.from_bytes(open(artifact, "rb").read())
    with pytest.raises(mde.SealedScoreError, match="expected an MDE mde-sealed-score"):
        SealedScore.from_bytes(
            Envelope("mde-encrypted-records", header, members).signed(FORGER).to_bytes()
        )
    # read_message tells the two final messages apart by their declared format
    partial = PartialResult(artifact_id="a", request_id="b", result_id="c", value=1.5).signed(
        FORGER
    )
    assert read_message(partial.to_bytes()) == partial
    with pytest.raises(mde.SealedScoreError, match="mde-sealed-score or mde-partial-result"):
        read_message(open(artifact, "rb").read())
    # and a sealed score is not an artifact
    with pytest.raises(mde.ArtifactError, match="expected an MDE"):
        mde.load_artifact(sealed.to_bytes())


def test_header_and_ciphertext_count_must_agree():
    header = SealedHeader(
        artifact_id="a",
        manifest_sha256="0" * 64,
        n_records=3,
        per_record=False,
        commitment="1" * 64,
        n_ciphertexts=2,
    )
    with pytest.raises(mde.SealedScoreError, match="announces 2"):
        SealedScore(header, [b"only one"])
    built = SealedScore.build(
        artifact_id="a",
        manifest_sha256="0" * 64,
        n_records=3,
        per_record=False,
        commitment="1" * 64,
        ciphertexts=[b"x", b"y"],
        key=FORGER,
    )
    assert built.header == header and built.ciphertexts == [b"x", b"y"]
    assert built.check_signature(FORGER.public_hex) == FORGER.public_hex
    # the signature binds the count and the order of the ciphertexts
    built.header = header.model_copy(update={"n_records": 4})
    with pytest.raises(mde.SealedScoreError, match="does not verify"):
        built.check_signature()
    built.header, built.ciphertexts = header, [b"y", b"x"]
    with pytest.raises(mde.SealedScoreError, match="does not verify"):
        built.check_signature()
