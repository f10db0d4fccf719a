"""The public artifact: one zip file the model owner hands to data owners.

Members:

- ``manifest.json``: :class:`ArtifactManifest` (format version, proxy kind, shapes, classes,
  CKKS parameters, slot layout, artifact id, SHA-256 of every other member);
- ``manifest.sha256``: SHA-256 of ``manifest.json`` (the artifact's content hash);
- ``psi.onnx``: the efficacy-feature graph, inputs ``X`` float32 [n, d] and ``y`` int64 [n]
  (class indices), output ``psi`` float32 [n, m];
- ``context.tenseal``: the public CKKS context (public key only, no secret key);
- ``w_<i>.ckks``: the encrypted value vector, one ciphertext per chunk;
- ``q_<i>.ckks`` (``order=2`` proxies): the encrypted pairwise values (upper triangle of
  ``Q``, :func:`mde.sealing.pairwise_values`), laid out per ``pairwise_layout``;
- ``known.npz`` (optional): the membership sketch of the training records
  (:mod:`mde.membership`); records it recognises score zero.

Nothing is pickled; every member is checked against its hash on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mde.errors import ArtifactError
from mde.sealing import CKKSParams, Layout

__all__ = ["ArtifactManifest", "ARTIFACT_FORMAT", "ARTIFACT_FORMAT_VERSION", "ManifestBase", "write_artifact", "read_artifact",
           "open_manifest_zip", "check_artifact", "manifest_format", "write_manifest_zip", "write_zip", "zip_bytes"]

ARTIFACT_FORMAT = "mde-artifact"
ARTIFACT_FORMAT_VERSION = 2  # 2: outlier threshold in the sketch, optional pairwise values
_MANIFEST = "manifest.json"
_MANIFEST_HASH = "manifest.sha256"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: every archive byte is then checkable


class ManifestBase(BaseModel):
    """Fields every artifact manifest has (sealed-value and hidden mode)."""

    model_config = ConfigDict(frozen=True)

    format_version: int = ARTIFACT_FORMAT_VERSION
    mde_version: str
    artifact_id: str
    proxy_kind: str
    n_features: int = Field(ge=1)
    feature_names: list[str] | None = None
    classes: list[Any]


class ArtifactManifest(ManifestBase):
    """Everything a data owner needs to know about an artifact, besides its members."""

    format: str = ARTIFACT_FORMAT
    mode: str = "sealed-value"
    psi_dim: int = Field(ge=1)
    ckks: CKKSParams
    layout: Layout
    pairwise_layout: Layout | None = None
    members: dict[str, str]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_artifact(path: str | os.PathLike[str], manifest_fields: dict[str, Any], members: dict[str, bytes]) -> tuple[ArtifactManifest, str]:
    """Write an artifact; return its manifest and content hash (SHA-256 of the manifest)."""
    manifest = ArtifactManifest(**manifest_fields, members={k: _sha256(v) for k, v in members.items()})
    return manifest, write_manifest_zip(path, manifest, members)


def write_manifest_zip(path: str | os.PathLike[str], manifest: BaseModel, members: dict[str, bytes]) -> str:
    """Write a manifest, its SHA-256 and the members as a canonical zip; return the SHA-256."""
    mbytes = manifest.model_dump_json(indent=2).encode()
    digest = _sha256(mbytes)
    write_zip(path, {_MANIFEST: mbytes, _MANIFEST_HASH: digest.encode(), **members})
    return digest


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """The canonical zip of ``files`` that :func:`read_artifact` accepts: stored (members are
    already compressed), fixed timestamps and attributes, so every byte is reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system, info.external_attr = 3, 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def write_zip(path: str | os.PathLike[str], files: dict[str, bytes]) -> None:
    """Write ``files`` to ``path`` as :func:`zip_bytes`."""
    with open(path, "wb") as fh:
        fh.write(zip_bytes(files))


def open_manifest_zip(source: str | os.PathLike[str] | bytes) -> tuple[bytes, str, dict[str, bytes]]:
    """Read a canonical artifact zip and check its manifest hash; return the manifest bytes,
    their SHA-256 and the other members (not yet checked against the manifest).

    Raises
    ------
    ArtifactError
        If the file is missing, not an artifact zip, or modified outside its members.
    """
    try:
        if isinstance(source, (bytes, bytearray)):
            raw = bytes(source)
        else:
            with open(source, "rb") as fh:
                raw = fh.read()
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
    except FileNotFoundError as exc:
        raise ArtifactError(f"artifact file {source!s} does not exist.") from exc
    except Exception as exc:  # any parse failure of untrusted bytes (zipfile raises many kinds)
        raise ArtifactError(f"not a readable MDE artifact (damaged or tampered file): {exc}") from exc
    if _MANIFEST not in files or _MANIFEST_HASH not in files:
        raise ArtifactError("not an MDE artifact: manifest missing. Export one with proxy.export(path).")
    # zip metadata is not covered by the member hashes: the file must be exactly the canonical zip
    if raw != zip_bytes(files):
        raise ArtifactError("artifact file was modified outside its members (zip metadata or extra bytes); refusing it.")
    mbytes = files.pop(_MANIFEST)
    digest = files.pop(_MANIFEST_HASH).decode(errors="replace").strip()
    if _sha256(mbytes) != digest:
        raise ArtifactError("artifact manifest was modified (its SHA-256 does not match); refusing it.")
    return mbytes, digest, files


def manifest_format(mbytes: bytes) -> str:
    """The ``format`` field of a (hash-checked) manifest, to tell artifact kinds apart."""
    try:
        return str(json.loads(mbytes).get("format"))
    except (ValueError, AttributeError) as exc:
        raise ArtifactError(f"artifact manifest is not a JSON object: {exc}") from exc


def read_artifact(source: str | os.PathLike[str] | bytes) -> tuple[ArtifactManifest, str, dict[str, bytes]]:
    """Read and verify an artifact: format, version, manifest hash and every member hash.

    Raises
    ------
    ArtifactError
        If the file is missing, not an artifact, of another version, or tampered.
    """
    return check_artifact(*open_manifest_zip(source))


def check_artifact(mbytes: bytes, digest: str, files: dict[str, bytes]) -> tuple[ArtifactManifest, str, dict[str, bytes]]:
    """Validate a sealed-value manifest read by :func:`open_manifest_zip` and its members."""
    try:
        manifest = ArtifactManifest.model_validate_json(mbytes)
    except ValidationError as exc:
        raise ArtifactError(f"artifact manifest is invalid: {exc}") from exc
    if manifest.format != ARTIFACT_FORMAT or manifest.format_version != ARTIFACT_FORMAT_VERSION:
        raise ArtifactError(
            f"artifact format {manifest.format!r} v{manifest.format_version} is not supported "
            f"(this MDE reads {ARTIFACT_FORMAT!r} v{ARTIFACT_FORMAT_VERSION}); ask the model owner to re-export."
        )
    if set(files) != set(manifest.members):
        raise ArtifactError(
            f"artifact members {sorted(files)} do not match its manifest {sorted(manifest.members)}; refusing it."
        )
    for name, data in files.items():
        if _sha256(data) != manifest.members[name]:
            raise ArtifactError(f"artifact member {name!r} was modified (SHA-256 mismatch); refusing it.")
    return manifest, digest, files
