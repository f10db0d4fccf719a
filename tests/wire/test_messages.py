"""Hidden-mode messages: each a wire envelope with exactly its own members; anything else is
refused with ProtocolError."""

from __future__ import annotations

import pytest

import mde
from mde.wire.envelope import Envelope
from mde.wire.messages import (
    DataOwnerKey,
    EncryptedRecords,
    MaskedResult,
    PartialResult,
    join_blobs,
    split_blobs,
)
from mde.wire.signing import SigningKey

HEX = "ab" * 32
KEY = SigningKey.generate()
MESSAGES = [
    EncryptedRecords(
        artifact_id="a",
        manifest_sha256=HEX,
        request_id="r",
        n_records=3,
        n_batches=1,
        commitment=HEX,
        blobs={"context.tenseal": b"ctx", "b0_X": b"x", "b0_Y": b"y"},
    ).signed(KEY),
    MaskedResult(artifact_id="a", request_id="r", result_id="s", ciphertext=b"\x00ct").signed(KEY),
    PartialResult(artifact_id="a", request_id="r", result_id="s", value=-1.25).signed(KEY),
    DataOwnerKey(
        artifact_id="a",
        request_id="r",
        decrypted=["s"],
        commitment=HEX,
        dataset=HEX,
        n_records=3,
        secret_context=b"secret",
    ),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.format)
def test_round_trip(message):
    data = message.to_bytes()
    back = type(message).from_bytes(data)
    assert back == message and back.to_bytes() == data
    env = Envelope.from_bytes(data, message.format, mde.ProtocolError)
    assert env.format == message.format


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.format)
def test_other_kinds_and_damage_are_refused(message):
    data = message.to_bytes()
    for other in MESSAGES:
        if type(other) is not type(message):
            with pytest.raises(mde.ProtocolError, match="expected an MDE"):
                type(other).from_bytes(data)
    for bad in (data[:-1], data + b"\0", b"garbage"):
        with pytest.raises(mde.ProtocolError):
            type(message).from_bytes(bad)


def test_members_must_be_exactly_the_declared_ones():
    masked, partial, key = MESSAGES[1], MESSAGES[2], MESSAGES[3]
    header = masked.model_dump(mode="json", exclude={"ciphertext"})
    for members in ({}, {"score.ckks": b"x", "extra": b"y"}, {"other.ckks": b"x"}):
        with pytest.raises(mde.ProtocolError, match="exactly member 'score.ckks'"):
            MaskedResult.from_bytes(
                Envelope(MaskedResult.format, header, members).signed(KEY).to_bytes()
            )
    with pytest.raises(mde.ProtocolError, match="no members"):
        PartialResult.from_bytes(
            Envelope(PartialResult.format, partial.model_dump(mode="json"), {"x": b""})
            .signed(KEY)
            .to_bytes()
        )
    key_header = key.model_dump(mode="json", exclude={"secret_context"})
    with pytest.raises(mde.ProtocolError, match="exactly member"):
        DataOwnerKey.from_bytes(Envelope(DataOwnerKey.format, key_header).to_bytes())


def test_invalid_fields_are_refused():
    partial = MESSAGES[2].model_dump(mode="json")
    for edit in (
        {"value": "inf"},
        {"value": "nan"},
        {"value": "x"},
        {"request_id": ""},
        {"extra": 1},
        {"artifact_id": "a" * 65},
    ):
        with pytest.raises(mde.ProtocolError, match="invalid"):
            PartialResult.from_bytes(
                Envelope(PartialResult.format, {**partial, **edit}).signed(KEY).to_bytes()
            )
    records = MESSAGES[0]
    header = records.model_dump(mode="json", exclude={"blobs"})
    for edit in ({"n_records": 0}, {"n_batches": 0}, {"commitment": "xyz"}):
        with pytest.raises(mde.ProtocolError, match="invalid"):
            EncryptedRecords.from_bytes(
                Envelope(EncryptedRecords.format, {**header, **edit}, records.blobs)
                .signed(KEY)
                .to_bytes()
            )


def test_blob_lists_split_back_and_refuse_truncation():
    blobs = [b"", b"a", b"\x00" * 300, b"xyz"]
    joined = join_blobs(blobs)
    assert split_blobs(joined) == blobs
    assert split_blobs(b"") == []
    for bad in (joined[:-1], joined[:5], joined + b"\x01"):
        with pytest.raises(mde.ProtocolError, match="truncated"):
            split_blobs(bad)


@pytest.mark.parametrize("message", MESSAGES[:3], ids=lambda m: m.format)
def test_messages_between_owners_must_be_signed_and_unchanged(message):
    unsigned = type(message).model_validate(message.model_dump())  # same fields, no signature
    with pytest.raises(mde.ProtocolError, match="not signed"):
        type(message).from_bytes(unsigned._envelope().to_bytes())
    assert message.check_signature(KEY.public_hex) == KEY.public_hex
    field = "request_id"
    edited = message.model_copy(update={field: "other"})  # keeps the old signature
    with pytest.raises(mde.ProtocolError, match="does not verify"):
        edited.check_signature()
    with pytest.raises(mde.IdentityError, match="pinned key"):
        message.check_signature(SigningKey.generate().public_hex)
