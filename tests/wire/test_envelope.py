"""The wire envelope: canonical bytes, a stable digest, and refusal of every modification
with the error class the caller asked for."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile

import pytest

import mde
from mde.wire.envelope import Envelope, canonical_json
from mde.wire.signing import SigningKey
from mde.wire.versions import FORMAT_VERSIONS

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key

FMT = "mde-proxy"  # a format kept by one owner: unsigned envelopes (signing: see below)
ERRORS = [mde.ArtifactError, mde.StorageError, mde.SealedScoreError, mde.ProtocolError]
HEADER = {"n": 3, "name": "x", "values": [1.5, -2.0], "nested": {"b": True, "a": None}}
MEMBERS = {"ct_0000001.ckks": b"\x00\x01second", "ct_0000000.ckks": bytes(range(256)) * 4}


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    """A zip laid out like the envelope writes it (fixed timestamps, stored, 0644)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose below
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in files:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.create_system, info.external_attr = 3, 0o644 << 16
                zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


_CURRENT = object()


def _header_doc(header=HEADER, members=MEMBERS, fmt=FMT, version=_CURRENT, mde_version="1.2.3"):
    return {
        "format": fmt,
        "version": FORMAT_VERSIONS[fmt] if version is _CURRENT else version,
        "mde_version": mde_version,
        "header": header,
        "members": {k: hashlib.sha256(v).hexdigest() for k, v in members.items()},
    }


def _craft(doc: dict, members=MEMBERS, header_bytes: bytes | None = None) -> bytes:
    raw = canonical_json(doc) if header_bytes is None else header_bytes
    return _zip([("envelope.json", raw), *sorted(members.items())])


@pytest.fixture()
def env() -> Envelope:
    return Envelope(FMT, HEADER, MEMBERS, mde_version="1.2.3")


def test_the_helper_reproduces_the_writer(env):
    """The crafted files below differ from genuine ones only where each test says."""
    assert _craft(_header_doc()) == env.to_bytes()


def test_round_trip(env):
    data = env.to_bytes()
    back = Envelope.from_bytes(data, FMT, mde.SealedScoreError)
    assert back.format == FMT and back.mde_version == "1.2.3"
    assert dict(back.header) == HEADER
    assert dict(back.members) == MEMBERS
    assert back.to_bytes() == data and back.digest == env.digest
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
    assert names == ["envelope.json", *sorted(MEMBERS)]  # header first, members in name order
    # a tuple of accepted formats
    assert Envelope.from_bytes(data, ("mde-artifact", FMT), mde.ArtifactError).format == FMT


def test_digest_is_stable_and_covers_every_member(env):
    # the digest is SHA-256 of the canonical header, recomputed here independently
    doc = json.dumps(_header_doc(), sort_keys=True, separators=(",", ":")).encode()
    assert env.digest == hashlib.sha256(doc).hexdigest()
    with zipfile.ZipFile(io.BytesIO(env.to_bytes())) as zf:
        assert zf.read("envelope.json") == doc
    # the same content built in another insertion order: same bytes, same digest
    shuffled = Envelope(
        FMT,
        dict(reversed(list(HEADER.items()))),
        dict(reversed(list(MEMBERS.items()))),
        mde_version="1.2.3",
    )
    assert shuffled.to_bytes() == env.to_bytes() and shuffled.digest == env.digest
    # any change of a member, the header, the format or the writer's version changes it
    changed = [
        Envelope(
            FMT, HEADER, {**MEMBERS, "ct_0000001.ckks": b"\x00\x01secone"}, mde_version="1.2.3"
        ),
        Envelope(FMT, {**HEADER, "n": 4}, MEMBERS, mde_version="1.2.3"),
        Envelope("mde-artifact", HEADER, MEMBERS, mde_version="1.2.3"),
        Envelope(FMT, HEADER, MEMBERS, mde_version="1.2.4"),
        Envelope(FMT, HEADER, {**MEMBERS, "extra": b""}, mde_version="1.2.3"),
    ]
    assert len({env.digest, *(e.digest for e in changed)}) == 1 + len(changed)


def test_reserved_member_name_and_nan_cannot_be_written():
    with pytest.raises(ValueError, match="reserved"):
        Envelope(FMT, {}, {"envelope.json": b""}).signed(FORGER).to_bytes()
    with pytest.raises(ValueError):
        Envelope(FMT, {"x": float("nan")}).signed(FORGER).to_bytes()


@pytest.mark.parametrize("error", ERRORS)
def test_wrong_format_is_refused(env, error):
    with pytest.raises(error, match="expected an MDE mde-artifact file, got 'mde-proxy'") as info:
        Envelope.from_bytes(env.to_bytes(), "mde-artifact", error)
    assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_wrong_version_is_refused(error):
    current = FORMAT_VERSIONS[FMT]
    for version in (current - 1, current + 1, 99, str(current), None):
        data = _craft(_header_doc(version=version))
        with pytest.raises(error, match="not supported") as info:
            Envelope.from_bytes(data, FMT, error)
        assert info.type is error
    missing = {k: v for k, v in _header_doc().items() if k != "version"}
    with pytest.raises(error, match="not supported") as info:
        Envelope.from_bytes(_craft(missing), FMT, error)
    assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_a_flipped_byte_in_a_member_is_refused(env, error):
    for name in MEMBERS:
        data = MEMBERS[name]
        for pos in (0, len(data) // 2, len(data) - 1):
            flipped = {**MEMBERS, name: data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]}
            # rebuilt with a valid zip CRC: only the member hash can catch it
            rebuilt = _craft(_header_doc(), members=flipped)
            with pytest.raises(error, match="do not match their hashes") as info:
                Envelope.from_bytes(rebuilt, FMT, error)
            assert info.type is error
    # the same flip in the raw file (zip CRC now wrong as well)
    raw = env.to_bytes()
    pos = raw.index(MEMBERS["ct_0000000.ckks"]) + 100
    with pytest.raises(error) as info:
        Envelope.from_bytes(raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1 :], FMT, error)
    assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_a_flipped_byte_in_the_header_is_refused(env, error):
    raw_header = canonical_json(_header_doc())
    # a member hash with one flipped hex digit
    digest = hashlib.sha256(MEMBERS["ct_0000000.ckks"]).hexdigest()
    pos = raw_header.index(digest.encode()) + 10
    bad_hash = raw_header[:pos] + bytes([raw_header[pos] ^ 0x01]) + raw_header[pos + 1 :]
    assert bad_hash != raw_header
    # a flipped structural byte (the JSON no longer parses)
    bad_json = b"[" + raw_header[1:]
    for header_bytes in (bad_hash, bad_json):
        with pytest.raises(error) as info:
            Envelope.from_bytes(_craft({}, header_bytes=header_bytes), FMT, error)
        assert info.type is error
    # every byte of envelope.json flipped in the raw file (zip CRC catches what JSON allows)
    raw = env.to_bytes()
    start = raw.index(raw_header)
    for pos in range(start, start + len(raw_header), 7):
        with pytest.raises(error) as info:
            Envelope.from_bytes(raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1 :], FMT, error)
        assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_an_extra_member_is_refused(error):
    extra = {**MEMBERS, "payload.py": b"print('hi')"}
    # not listed in the header's member hashes
    with pytest.raises(error, match="do not match their hashes") as info:
        Envelope.from_bytes(_craft(_header_doc(), members=extra), FMT, error)
    assert info.type is error
    # listed in the header but absent from the zip (a missing member)
    with pytest.raises(error, match="do not match their hashes") as info:
        Envelope.from_bytes(_craft(_header_doc(members=extra)), FMT, error)
    assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_a_duplicated_member_name_is_refused(error):
    name, data = "ct_0000000.ckks", MEMBERS["ct_0000000.ckks"]
    header = canonical_json(_header_doc())
    files = [("envelope.json", header), *sorted(MEMBERS.items())]
    for dup in (files + [(name, data)], files + [(name, b"other")], files + [(name, b"")]):
        with pytest.raises(error) as info:
            Envelope.from_bytes(_zip(dup), FMT, error)
        assert info.type is error
    # a second envelope header
    with pytest.raises(error) as info:
        Envelope.from_bytes(_zip(files + [("envelope.json", header)]), FMT, error)
    assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_non_canonical_json_header_is_refused(error):
    doc = _header_doc()
    spellings = [
        json.dumps(doc, sort_keys=True).encode(),  # spaces
        json.dumps(doc, separators=(",", ":")).encode(),  # unsorted keys
        json.dumps(doc, sort_keys=True, separators=(",", ":"), indent=1).encode(),
        canonical_json(doc) + b"\n",
        canonical_json(doc).replace(b'"name":"x"', b'"name":"\\u0078"'),  # an escaped "x"
        canonical_json(doc).replace(b'"values":[1.5,', b'"values":[15e-1,'),  # 1.5 spelt otherwise
        canonical_json(doc).replace(b'{"n":3,', b'{"n":3,"n":3,'),  # a duplicated key
        json.dumps(
            {**doc, "header": {**HEADER, "n": float("nan")}}, sort_keys=True, separators=(",", ":")
        ).encode(),  # NaN is not JSON
    ]
    for raw in spellings:
        assert raw != canonical_json(doc)
        with pytest.raises(error, match="modified outside its members") as info:
            Envelope.from_bytes(_craft({}, header_bytes=raw), FMT, error)
        assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_trailing_and_leading_bytes_are_refused(env, error):
    data = env.to_bytes()
    for bad in (data + b"\0", data + data, b"\0" + data, data[:-1]):
        with pytest.raises(error) as info:
            Envelope.from_bytes(bad, FMT, error)
        assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_non_zip_bytes_are_refused(env, error):
    plain_zip = _zip([("a.txt", b"hello")])  # a zip without an envelope header
    for bad in (
        b"",
        b"not a zip at all",
        b"PK\x03\x04" + b"\0" * 40,
        canonical_json(_header_doc()),
    ):
        with pytest.raises(error, match="not a readable") as info:
            Envelope.from_bytes(bad, FMT, error)
        assert info.type is error
    with pytest.raises(error, match="no envelope header") as info:
        Envelope.from_bytes(plain_zip, FMT, error)
    assert info.type is error
    with pytest.raises(error, match="expected the bytes") as info:
        Envelope.from_bytes(env.to_bytes().decode("latin-1"), FMT, error)  # type: ignore[arg-type]
    assert info.type is error


@pytest.mark.parametrize("error", ERRORS)
def test_malformed_envelope_fields_are_refused(error):
    for doc in (
        {**_header_doc(), "header": [1]},
        {**_header_doc(), "members": None},
        {**_header_doc(), "mde_version": 3},
    ):
        with pytest.raises(error, match="malformed") as info:
            Envelope.from_bytes(_craft(doc), FMT, error)
        assert info.type is error


def test_a_file_from_another_mde_version_reads_fine():
    """Only the format version gates reading; the writer's MDE version is informational."""
    for version in ("0.0.1", "99.0.0", "1.0.0rc1+local"):
        data = Envelope(FMT, HEADER, MEMBERS, mde_version=version).signed(FORGER).to_bytes()
        back = Envelope.from_bytes(data, FMT, mde.SealedScoreError)
        assert back.mde_version == version and dict(back.members) == MEMBERS
        assert back.to_bytes() == data


def test_signed_formats_are_refused_unsigned_and_after_any_edit():
    """Formats that cross between the owners must be signed; the signature covers the
    header bytes, so an edited header field, a changed member or a reordered member fails."""
    fmt = "mde-sealed-score"
    with pytest.raises(mde.SealedScoreError, match="not signed"):
        Envelope.from_bytes(Envelope(fmt, HEADER, MEMBERS).to_bytes(), fmt, mde.SealedScoreError)
    signed = Envelope(fmt, HEADER, MEMBERS).signed(FORGER)
    back = Envelope.from_bytes(signed.to_bytes(), fmt, mde.SealedScoreError)
    assert back.signer == FORGER.public_hex and back.signature_valid
    names = sorted(MEMBERS)
    swapped = {names[0]: MEMBERS[names[1]], names[1]: MEMBERS[names[0]]}
    for edit in (
        Envelope(
            fmt, {**HEADER, "n": 4}, MEMBERS, signer=signed.signer, signature=signed.signature
        ),
        Envelope(
            fmt, HEADER, {**MEMBERS, **swapped}, signer=signed.signer, signature=signed.signature
        ),
    ):
        with pytest.raises(mde.SealedScoreError, match="does not verify"):
            Envelope.from_bytes(edit.to_bytes(), fmt, mde.SealedScoreError)
    other = SigningKey.generate()
    with pytest.raises(mde.IdentityError, match="pinned key"):
        back.check_signature(mde.SealedScoreError, other.public_hex)


def test_private_files_are_readable_by_their_owner_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import stat

    env = Envelope("mde-report", {"a": 1}, {})
    env.write(tmp_path / "public.bin")
    env.write(tmp_path / "secret.bin", private=True)
    env.write(tmp_path / "secret.bin", private=True)  # replacing keeps it private
    assert stat.S_IMODE((tmp_path / "secret.bin").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "public.bin").stat().st_mode) & 0o044  # others may read
