"""The public artifact: ONNX psi is exact, nothing inside decrypts, tampering is refused."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import mde
from mde.artifact import read_artifact, write_zip


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
    assert set(m.members) == {"psi.onnx", "context.tenseal", "w_0.ckks", "known.npz"}


def test_nothing_inside_the_artifact_can_decrypt(artifact, proxy):
    import tenseal as ts

    _, _, members = read_artifact(artifact)
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


def _members(src) -> dict[str, bytes]:
    with zipfile.ZipFile(src) as zin:
        return {name: zin.read(name) for name in zin.namelist()}


def _rewrite(src: str, dst, member: str, mutate) -> None:
    write_zip(dst, {name: mutate(data) if name == member else data for name, data in _members(src).items()})


def _flip(data: bytes) -> bytes:
    pos = len(data) // 2
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


@pytest.mark.parametrize("member", ["manifest.json", "manifest.sha256", "psi.onnx", "context.tenseal", "w_0.ckks",
                                    "known.npz"])
def test_one_flipped_byte_in_any_member_is_refused(artifact, tmp_path, member):
    bad = tmp_path / "bad.mde"
    _rewrite(artifact, bad, member, _flip)
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(bad)


def test_flipped_byte_in_the_raw_file_is_refused(artifact, tmp_path):
    data = open(artifact, "rb").read()
    # spread over the file, and every byte of the zip central directory (not hash-covered)
    positions = [*range(0, len(data), len(data) // 40), *range(len(data) - 700, len(data))]
    for pos in positions:
        bad = tmp_path / f"raw{pos}.mde"
        bad.write_bytes(data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :])
        with pytest.raises(mde.ArtifactError):
            mde.load_artifact(bad)


def test_same_members_in_a_non_canonical_zip_are_refused(artifact, tmp_path):
    """Zip metadata is not covered by the member hashes, so it must be exactly as written."""
    loose = tmp_path / "loose.mde"
    with zipfile.ZipFile(loose, "w") as zout:  # default timestamps
        for name, data in _members(artifact).items():
            zout.writestr(name, data)
    with pytest.raises(mde.ArtifactError, match="modified"):
        mde.load_artifact(loose)
    padded = tmp_path / "padded.mde"
    padded.write_bytes(open(artifact, "rb").read() + b"\0")
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(padded)


def test_missing_extra_member_wrong_version_and_garbage_are_refused(artifact, tmp_path):
    extra = tmp_path / "extra.mde"
    write_zip(extra, {**_members(artifact), "payload.py": b"print('hi')"})
    with pytest.raises(mde.ArtifactError, match="do not match"):
        mde.load_artifact(extra)

    import hashlib

    old = tmp_path / "old.mde"
    files = _members(artifact)
    from mde.artifact import ARTIFACT_FORMAT_VERSION

    current = f'"format_version": {ARTIFACT_FORMAT_VERSION}'.encode()
    assert current in files["manifest.json"]
    manifest = files["manifest.json"].replace(current, b'"format_version": 99')
    write_zip(old, {**files, "manifest.json": manifest, "manifest.sha256": hashlib.sha256(manifest).hexdigest().encode()})
    with pytest.raises(mde.ArtifactError, match="not supported"):
        mde.load_artifact(old)

    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(b"not a zip at all")
    with pytest.raises(mde.ArtifactError, match="does not exist"):
        mde.load_artifact(tmp_path / "nope.mde")


def test_artifact_with_a_secret_key_is_refused(proxy, artifact, tmp_path):
    import hashlib
    import json

    secret = proxy._context.serialize(save_secret_key=True)
    bad = tmp_path / "secret.mde"
    files = _members(artifact)
    manifest = json.loads(files["manifest.json"])
    manifest["members"]["context.tenseal"] = hashlib.sha256(secret).hexdigest()
    mbytes = json.dumps(manifest).encode()
    write_zip(bad, {**files, "manifest.json": mbytes, "manifest.sha256": hashlib.sha256(mbytes).hexdigest().encode(),
                    "context.tenseal": secret})
    with pytest.raises(mde.ArtifactError, match="secret key"):
        mde.load_artifact(bad)


def test_load_artifact_from_bytes(artifact):
    assert mde.load_artifact(open(artifact, "rb").read()).artifact_id == mde.load_artifact(artifact).artifact_id


def test_artifact_is_small(artifact):
    import os

    assert os.path.getsize(artifact) < 2_000_000
    assert isinstance(io.BytesIO, type)


def _rewrite_manifest(src, dst, edit):
    import hashlib
    import json

    files = _members(src)
    manifest = json.loads(files["manifest.json"])
    edit(manifest)
    mbytes = json.dumps(manifest).encode()
    write_zip(dst, {**files, "manifest.json": mbytes, "manifest.sha256": hashlib.sha256(mbytes).hexdigest().encode()})


@pytest.mark.parametrize("edit", [
    lambda m: m["ckks"].update(mask_bound=0.0),
    lambda m: m["ckks"].update(mask_bound=float("nan")),
    lambda m: m["layout"].update(tiles=100),
    lambda m: m.update(psi_dim=m["psi_dim"] + 1),
])
def test_consistently_rehashed_but_unsafe_manifest_is_refused(artifact, tmp_path, edit):
    """A model owner (or anyone) cannot weaken the data owner's masking through the manifest."""
    bad = tmp_path / "weak.mde"
    _rewrite_manifest(artifact, bad, edit)
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(bad)
