"""The public artifact: ONNX psi is exact, nothing inside decrypts, tampering is refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest

import mde
from mde.crypto.context import new_context, secret_context_bytes
from mde.wire.artifact import HiddenArtifact, SealedArtifact, read_artifact
from mde.wire.envelope import Envelope, canonical_json
from mde.wire.signing import SigningKey
from mde.wire.versions import FORMAT_VERSIONS

FORGER = SigningKey.generate()  # whoever crafts a message signs it with its own key

FORMAT = "mde-artifact"


def _zip(files, *, date_time=(1980, 1, 1, 0, 0, 0)) -> bytes:
    """A zip laid out like the envelope writes it (unless ``date_time`` says otherwise)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.create_system, info.external_attr = 3, 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def _entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(name, zf.read(name)) for name in zf.namelist()]


def _parts(artifact) -> tuple[dict, dict[str, bytes]]:
    """The manifest (as JSON) and the members of a genuine artifact."""
    art = read_artifact(artifact)
    return art.manifest.model_dump(mode="json"), dict(art.members)


def _reenvelope(header: dict, members: dict[str, bytes]) -> bytes:
    """A consistently re-hashed artifact (what anyone can make with the public format)."""
    return Envelope(FORMAT, header, members).signed(FORGER).to_bytes()


def _flip(data: bytes) -> bytes:
    pos = len(data) // 2
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def test_onnx_psi_equals_numpy_psi(proxy, artifact, digits):
    scorer = mde.load_artifact(artifact)
    got = scorer.psi(digits.Xc, digits.yc, batch_size=64)
    want = proxy.psi(digits.Xc, digits.yc)
    assert got.shape == want.shape == (len(digits.yc), proxy.psi_dim_)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_manifest_describes_shapes_not_weights(proxy, artifact):
    m = mde.load_artifact(artifact).manifest
    assert (m.proxy_kind, m.n_features, m.psi_dim) == ("influence", 64, proxy.psi_dim_)
    assert m.classes == list(range(10))
    assert m.mode == "sealed-value" and m.pairwise_layout is None
    art = read_artifact(artifact)
    assert isinstance(art, SealedArtifact)
    chunks = [f"w_{c}.ckks" for c in range(m.layout.chunks)]
    assert m.layout.chunks == 3  # psi_dim 170 over 64 segments
    assert set(art.members) == {"psi.onnx", "context.tenseal", "galois.seal", "known.npz", *chunks}
    # the file is the envelope: header first, then the members in name order
    assert [name for name, _ in _entries(open(artifact, "rb").read())] == [
        "envelope.json",
        "envelope.sig",
        "context.tenseal",
        "galois.seal",
        "known.npz",
        "psi.onnx",
        *chunks,
    ]


def test_nothing_inside_the_artifact_can_decrypt(artifact, proxy):
    import tenseal as ts

    members = read_artifact(artifact).members
    ctx = ts.context_from(members["context.tenseal"])
    assert not ctx.is_private()
    enc_w = ts.ckks_vector_from(ctx, members["w_0.ckks"])
    with pytest.raises(ValueError, match="secret"):
        enc_w.decrypt()
    # the plaintext w is nowhere in the file, in float64 or float32
    blob = open(artifact, "rb").read()
    for value in proxy.w_[:20]:
        assert np.float64(value).tobytes() not in blob
        assert np.float32(value / np.abs(proxy.w_).max()).tobytes() not in blob


@pytest.mark.parametrize(
    "member", ["psi.onnx", "context.tenseal", "galois.seal", "w_0.ckks", "known.npz"]
)
def test_one_flipped_byte_in_any_member_is_refused(artifact, tmp_path, member):
    """Rebuilt with valid zip CRCs, so only the envelope's hashes can catch it."""
    files = _entries(open(artifact, "rb").read())
    bad = tmp_path / "bad.mde"
    bad.write_bytes(_zip([(name, _flip(data) if name == member else data) for name, data in files]))
    with pytest.raises(mde.ArtifactError, match="do not match their hashes"):
        mde.load_artifact(bad)


def test_one_flipped_byte_in_the_envelope_header_is_refused(proxy, artifact, digits):
    """Rebuilt with valid zip CRCs. A flip in a member hash or in the JSON structure is
    refused on loading; a flip in a free-text field gives a different artifact digest, so
    the model owner refuses any score made against it."""
    files = _entries(open(artifact, "rb").read())
    raw = files[0][1]

    def flipped(needle: bytes, offset: int) -> bytes:
        pos = raw.index(needle) + offset
        return _zip(
            [("envelope.json", raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1 :]), *files[1:]]
        )

    w_hash = hashlib.sha256(read_artifact(artifact).members["w_0.ckks"]).hexdigest().encode()
    with pytest.raises(mde.ArtifactError, match="do not match their hashes"):
        mde.load_artifact(flipped(w_hash, 17))
    with pytest.raises(mde.ArtifactError, match="not a readable"):
        mde.load_artifact(flipped(b'{"format"', 0))  # '{' -> 'z'
    with pytest.raises(mde.ArtifactError, match="no envelope header|malformed|expected an MDE"):
        mde.load_artifact(flipped(b'"format"', 3))  # the key "format" -> "fnrmat"
    # "influence" -> "infludnce": still a valid manifest, but the model owner's signature
    # covers every header byte, so the edited artifact is refused before the guard sees it
    renamed = flipped(b'"proxy_kind":"influence"', 19)
    with pytest.raises(mde.ArtifactError, match="signature does not verify"):
        mde.load_artifact(renamed)
    assert proxy.kind == "influence" and digits.Xc.shape[0] > 0


def test_flipped_byte_in_the_raw_file_is_refused(artifact, tmp_path):
    data = open(artifact, "rb").read()
    # the zip central directory and end record (not covered by any member hash)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        central = min(i.header_offset for i in zf.infolist()) + sum(
            30 + len(i.filename) + len(i.extra) + i.compress_size for i in zf.infolist()
        )
    assert 0 < len(data) - central < 1000
    # spread over the file, every byte of the envelope header and of the central directory
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        header = zf.read("envelope.json")
    start = data.index(header)
    positions = [
        *range(0, len(data), len(data) // 40),
        *range(start, start + len(header)),
        *range(central, len(data)),
    ]
    for pos in positions:
        bad = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
        with pytest.raises(mde.ArtifactError):
            mde.load_artifact(bad)
    (tmp_path / "raw.mde").write_bytes(
        data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :]
    )
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(tmp_path / "raw.mde")


def test_same_members_in_a_non_canonical_zip_are_refused(artifact, tmp_path):
    """Zip metadata is not covered by the member hashes, so it must be exactly as written."""
    files = _entries(open(artifact, "rb").read())
    assert _zip(files) == open(artifact, "rb").read()  # the helper reproduces the writer
    variants = {
        "timestamps": _zip(files, date_time=(2024, 5, 1, 12, 0, 0)),
        "order": _zip([files[0], *reversed(files[1:])]),
    }
    deflated = io.BytesIO()
    with zipfile.ZipFile(
        deflated, "w", compression=zipfile.ZIP_DEFLATED
    ) as zout:  # default metadata
        for name, data in files:
            zout.writestr(name, data)
    variants["deflated"] = deflated.getvalue()
    for what, blob in variants.items():
        (tmp_path / f"{what}.mde").write_bytes(blob)
        with pytest.raises(mde.ArtifactError, match="modified|holds no signature"):
            mde.load_artifact(tmp_path / f"{what}.mde")
    padded = tmp_path / "padded.mde"
    padded.write_bytes(open(artifact, "rb").read() + b"\0")
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(padded)


def test_missing_extra_member_wrong_version_and_garbage_are_refused(artifact, tmp_path):
    header, members = _parts(artifact)
    files = _entries(open(artifact, "rb").read())
    # an extra member outside the envelope's hashes
    with pytest.raises(mde.ArtifactError, match="do not match"):
        mde.load_artifact(_zip([*files, ("payload.py", b"print('hi')")]))
    # an extra or missing member, consistently re-hashed: refused by the artifact's own check
    with pytest.raises(mde.ArtifactError, match="do not match its manifest"):
        mde.load_artifact(_reenvelope(header, {**members, "payload.py": b"print('hi')"}))
    for name in ("w_0.ckks", "psi.onnx", "context.tenseal"):
        with pytest.raises(mde.ArtifactError, match="do not match its manifest"):
            mde.load_artifact(_reenvelope(header, {k: v for k, v in members.items() if k != name}))
    # another format version, consistently hashed
    doc = json.loads(files[0][1])
    assert doc["format"] == FORMAT and doc["version"] == FORMAT_VERSIONS[FORMAT]
    for version in (FORMAT_VERSIONS[FORMAT] - 1, 99):
        old = _zip([("envelope.json", canonical_json({**doc, "version": version})), *files[1:]])
        with pytest.raises(mde.ArtifactError, match="not supported"):
            mde.load_artifact(old)
    # another format: a sealed score, a hidden-mode request, a proxy file are no artifacts
    with pytest.raises(mde.ArtifactError, match="expected an MDE"):
        mde.load_artifact(Envelope("mde-sealed-score", header, members).signed(FORGER).to_bytes())
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(b"not a zip at all")
    with pytest.raises(mde.ArtifactError, match="does not exist"):
        mde.load_artifact(tmp_path / "nope.mde")


def test_artifact_with_a_secret_key_is_refused(artifact, tmp_path):
    header, members = _parts(artifact)
    params = mde.CKKSParams.model_validate(header["ckks"])
    secret = secret_context_bytes(new_context(params))
    bad = tmp_path / "secret.mde"
    bad.write_bytes(_reenvelope(header, {**members, "context.tenseal": secret}))
    with pytest.raises(mde.ArtifactError, match="secret key"):
        mde.load_artifact(bad)


def test_load_artifact_from_bytes(artifact):
    from_bytes = mde.load_artifact(open(artifact, "rb").read())
    from_path = mde.load_artifact(artifact)
    assert from_bytes.artifact_id == from_path.artifact_id
    assert from_bytes.manifest_sha256 == from_path.manifest_sha256 == read_artifact(artifact).digest


def test_artifact_is_small_and_recorded_by_the_owner(proxy, artifact):
    size = os.path.getsize(artifact)
    # Galois keys of 6 rotations and the conjugation (2.6 MB seeded), 3 chunks of Enc(w)
    assert size < 4_000_000
    art = read_artifact(artifact)
    # the owner's session holds the artifact's exact size and content hash
    record = proxy.session.artifacts[art.manifest.artifact_id]
    assert record.artifact_bytes == size
    assert record.manifest_sha256 == art.digest
    # re-encoding the parsed artifact gives the file byte for byte
    assert art.to_bytes() == open(artifact, "rb").read()


def test_an_artifact_from_another_mde_version_loads(proxy, artifact, digits):
    header, members = _parts(artifact)
    other = Envelope(FORMAT, header, members, mde_version="0.1.0").signed(FORGER).to_bytes()
    scorer = mde.load_artifact(other)
    assert scorer.artifact_id == header["artifact_id"]
    np.testing.assert_allclose(
        scorer.psi(digits.Xc[:20], digits.yc[:20]),
        proxy.psi(digits.Xc[:20], digits.yc[:20]),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["ckks"].update(mask_bound=0.0),
        lambda m: m["ckks"].update(mask_bound=float("nan")),
        lambda m: m["ckks"].update(poly_modulus_degree=2048),
        lambda m: m["layout"].update(segment=8),
        lambda m: m.update(psi_dim=m["psi_dim"] + 1),
        lambda m: m.update(classes=[0]),
        lambda m: m.update(unexpected="field"),
    ],
)
def test_consistently_rehashed_but_unsafe_manifest_is_refused(artifact, tmp_path, edit):
    """A model owner (or anyone) cannot weaken the data owner's masking through the manifest."""
    header, members = _parts(artifact)
    edit(header)
    files = _entries(open(artifact, "rb").read())
    doc = json.loads(files[0][1])
    doc["header"] = header
    # canonical JSON has no NaN: spell the header as the JSON module would, hashes intact
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    bad = tmp_path / "weak.mde"
    bad.write_bytes(_zip([("envelope.json", raw), *files[1:]]))
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(bad)


def test_hidden_artifact_format_is_checked(digits, model, tmp_path):
    poly = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        kind="influence-poly",
        n_components=8,
        random_state=0,
    )
    path = tmp_path / "h.mde"
    poly.export(path, mode="hidden")
    art = read_artifact(path)
    assert isinstance(art, HiddenArtifact)
    # the hidden artifact is the envelope header only: no members, no weights
    assert [name for name, _ in _entries(path.read_bytes())] == ["envelope.json", "envelope.sig"]
    assert art.to_bytes() == path.read_bytes()
    header = art.manifest.model_dump(mode="json")
    edits = {
        "flooding": {**header, "flood_sigma": 0.0},  # a model owner asking for exact decryptions
        "depth": {**header, "depth": header["depth"] + 1},
        "input shapes": {**header, "inputs": {"X": 64, "Y": 9}},
    }
    for match, edited in edits.items():
        with pytest.raises(mde.ArtifactError, match=match):
            mde.load_artifact(Envelope("mde-hidden-artifact", edited).signed(FORGER).to_bytes())
    with pytest.raises(mde.ArtifactError, match="manifest only"):
        mde.load_artifact(
            Envelope("mde-hidden-artifact", header, {"w_0.ckks": b"x"}).signed(FORGER).to_bytes()
        )
    # a hidden manifest in a sealed-value envelope (or the reverse) is refused
    with pytest.raises(mde.ArtifactError, match="invalid"):
        mde.load_artifact(Envelope(FORMAT, header).signed(FORGER).to_bytes())


@pytest.mark.parametrize(
    "ring", [(16384, [60, 40, 60]), (8192, [50, 50, 60])], ids=["larger ring", "other split"]
)
def test_a_context_of_another_ring_than_the_manifest_declares_is_refused(artifact, ring):
    """A buyer's context, Enc(w) and Galois keys for N = 16384 under a manifest declaring
    8192 would make the segment sum partial (every slot product readable); another split of
    the same modulus bits changes the output scale and levels the flooding assumes."""
    import tenseal as ts

    from mde.crypto.context import public_context_bytes
    from mde.crypto.params import galois_steps
    from mde.crypto.seal_io import galois_key_bytes

    header, members = _parts(artifact)
    layout = mde.load_artifact(artifact).manifest.layout
    degree, bits = ring  # made directly: check_params would refuse the split
    big = ts.context(ts.SCHEME_TYPE.CKKS, degree, coeff_mod_bit_sizes=bits)
    big.global_scale = 2.0**40
    members = dict(members)
    members["context.tenseal"] = public_context_bytes(big)
    members["galois.seal"] = galois_key_bytes(big, galois_steps(layout))
    for c in range(layout.chunks):
        members[f"w_{c}.ckks"] = ts.ckks_vector(big, [0.5] * layout.slots).serialize()
    forged = Envelope("mde-artifact", header, members).signed(FORGER).to_bytes()
    with pytest.raises(mde.ArtifactError, match="not the one its manifest declares"):
        mde.load_artifact(forged)
