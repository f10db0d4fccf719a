"""Hidden-proxy mode: the model owner evaluates its proxy on the data owner's encrypted records.

Nothing of the proxy but its shapes leaves the model owner. The protocol (each message is a
canonical zip with a JSON header and SHA-256 of every member; no pickle):

1. model owner: ``proxy.export(path, mode="hidden")`` writes a :class:`HiddenManifest`
   (shapes, classes, CKKS parameters, packing, flooding noise) and **no weights**;
2. data owner: ``client = mde.load_artifact(path)`` (a :class:`HiddenClient`);
   ``request = client.encrypt(X, y)`` encrypts the records under a fresh key it keeps,
   one ciphertext per feature and per one-hot label column, records packed in the slots,
   and sends them with a public context (relinearisation keys, no secret or rotation keys)
   and a commitment to the records;
3. model owner: ``result = proxy.evaluate_hidden(request)`` runs the score graph under CKKS
   (:mod:`mde.encrypted_graph`), sums over batches slot-wise, adds a random mask to every
   slot that it keeps, and returns one ciphertext;
4. data owner: ``partial = client.decrypt(result)`` decrypts, sums the slots, adds Gaussian
   flooding noise (never an exact decryption: Li and Micciancio's attack on CKKS) and
   returns one number;
5. model owner: ``report = proxy.open(partial)`` removes the mask and the padding slots'
   known score and returns an :class:`~mde.report.EfficacyReport`, priced as before.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import uuid
import zipfile
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mde.artifact import ManifestBase, zip_bytes
from mde.commitment import Committer
from mde.errors import ArtifactError, InputError, MDEError, require
from mde.sealing import CKKSParams, check_params
from mde.validation import check_matrix, encode_labels

__all__ = [
    "HiddenManifest", "HiddenClient", "ProtocolError", "EncryptedRecords", "MaskedResult", "PartialResult",
    "hidden_params", "HIDDEN_FORMAT",
]

HIDDEN_FORMAT = "mde-hidden-artifact"
HIDDEN_FORMAT_VERSION = 1
# the data owner refuses a flooding noise below this (absolute, in the scaled score units)
MIN_FLOOD_SIGMA = 2.0**-12


class ProtocolError(MDEError, ValueError):
    """A hidden-mode message is tampered, mismatched, out of order or unsafe."""


def hidden_params(depth: int) -> CKKSParams:
    """CKKS parameters for a score graph of multiplicative ``depth`` (128-bit security):
    N = 8192 up to depth 2, else N = 16384; 40-bit scale, 60-bit first and special primes."""
    bits = [60] + [40] * depth + [60]
    n = 8192 if sum(bits) <= 218 else 16384
    if sum(bits) > 438:
        raise InputError(f"a score graph of depth {depth} is too deep for 128-bit CKKS parameters (max 7).")
    return CKKSParams(poly_modulus_degree=n, coeff_mod_bit_sizes=bits, global_scale_bits=40, mask_bound=2.0**14)


class HiddenManifest(ManifestBase):
    """What the data owner gets in hidden mode: shapes and parameters, no weights."""

    format: str = HIDDEN_FORMAT
    format_version: int = HIDDEN_FORMAT_VERSION
    mode: str = "hidden"
    inputs: dict[str, int]
    ckks: CKKSParams
    depth: int = Field(ge=1)
    flood_sigma: float


# -- message framing -------------------------------------------------------------------------
def _pack(kind: str, header: dict[str, Any], blobs: dict[str, bytes]) -> bytes:
    head = {**header, "message": kind, "members": {k: hashlib.sha256(v).hexdigest() for k, v in blobs.items()}}
    return zip_bytes({"header.json": json.dumps(head, sort_keys=True).encode(), **blobs})


def _unpack(data: bytes, kind: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
        head = json.loads(files.pop("header.json"))
    except Exception as exc:  # untrusted bytes: any parse failure
        raise ProtocolError(f"not a readable MDE {kind} message (damaged or tampered): {exc}") from exc
    if head.get("message") != kind:
        raise ProtocolError(f"expected a {kind} message, got {head.get('message')!r}; check the order of the steps.")
    if data != zip_bytes({"header.json": json.dumps(head, sort_keys=True).encode(), **files}):
        raise ProtocolError(f"{kind} message was modified outside its members; refusing it.")
    members = head.get("members", {})
    if set(members) != set(files) or any(hashlib.sha256(files[k]).hexdigest() != members[k] for k in files):
        raise ProtocolError(f"{kind} message members do not match their hashes (tampered); refusing it.")
    return head, files


def _join(blobs: list[bytes]) -> bytes:
    return b"".join(struct.pack("<Q", len(b)) + b for b in blobs)


def _split(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack_from("<Q", data, pos)
        out.append(data[pos + 8 : pos + 8 + size])
        pos += 8 + size
    if pos != len(data):
        raise ProtocolError("ciphertext list is truncated.")
    return out


class _Message(BaseModel):
    """A hidden-mode message: JSON header fields plus binary members (``blob_field``: a
    bytes field sent as member ``blob_member``, or a dict field sent as its members)."""

    model_config = ConfigDict(frozen=True)

    kind: ClassVar[str]
    blob_field: ClassVar[str | None] = None
    blob_member: ClassVar[str | None] = None

    def to_bytes(self) -> bytes:
        if self.blob_field is None:
            return _pack(self.kind, self.model_dump(), {})
        value = getattr(self, self.blob_field)
        blobs = {self.blob_member: value} if self.blob_member else value
        return _pack(self.kind, self.model_dump(exclude={self.blob_field}), blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> Any:
        head, blobs = _unpack(data, cls.kind)
        fields = {k: v for k, v in head.items() if k in cls.model_fields}
        try:
            if cls.blob_field is not None:
                fields[cls.blob_field] = blobs[cls.blob_member] if cls.blob_member else blobs
            return cls(**fields)
        except (KeyError, ValidationError) as exc:
            raise ProtocolError(f"{cls.kind} message is invalid: {exc}") from exc


class EncryptedRecords(_Message):
    """Data owner -> model owner: encrypted records, public context and commitment."""

    kind: ClassVar[str] = "encrypted-records"
    blob_field: ClassVar[str | None] = "blobs"

    artifact_id: str
    manifest_sha256: str
    request_id: str
    n_records: int = Field(ge=1)
    n_batches: int = Field(ge=1)
    commitment: str
    blobs: dict[str, bytes]


class MaskedResult(_Message):
    """Model owner -> data owner: one masked ciphertext of per-slot score sums."""

    kind: ClassVar[str] = "masked-result"
    blob_field: ClassVar[str | None] = "ciphertext"
    blob_member: ClassVar[str | None] = "score.ckks"

    artifact_id: str
    request_id: str
    result_id: str
    ciphertext: bytes


class PartialResult(_Message):
    """Data owner -> model owner: the flooded sum of the decrypted slots (one number)."""

    kind: ClassVar[str] = "partial-result"

    artifact_id: str
    request_id: str
    result_id: str
    value: float


# -- artifact -----------------------------------------------------------------------------------
def check_hidden_manifest(mbytes: bytes, files: dict[str, bytes]) -> HiddenManifest:
    """Validate a hidden-mode manifest read by :func:`mde.artifact.open_manifest_zip`
    (no other members, safe CKKS parameters, enough flooding noise)."""
    if files:
        raise ArtifactError(f"hidden-mode artifact holds members {sorted(files)}; it must hold the manifest only.")
    try:
        manifest = HiddenManifest.model_validate_json(mbytes)
    except ValidationError as exc:
        raise ArtifactError(f"hidden-mode manifest is invalid: {exc}") from exc
    if manifest.format_version != HIDDEN_FORMAT_VERSION:
        raise ArtifactError(f"hidden-mode artifact v{manifest.format_version} is not supported; ask for a re-export.")
    problem = check_params(manifest.ckks)
    if problem or manifest.ckks != hidden_params(manifest.depth):
        raise ArtifactError(f"hidden-mode artifact's CKKS parameters are unsafe or do not fit its depth: {problem}")
    if not (np.isfinite(manifest.flood_sigma) and manifest.flood_sigma >= MIN_FLOOD_SIGMA):
        raise ArtifactError(f"hidden-mode artifact asks for flooding noise {manifest.flood_sigma}; "
                            f"at least {MIN_FLOOD_SIGMA:g} is needed to hide the CKKS error.")
    if manifest.inputs != {"X": manifest.n_features, "Y": len(manifest.classes)}:
        raise ArtifactError("hidden-mode artifact's input shapes do not match its features and classes.")
    return manifest


def secret_context(params: CKKSParams) -> Any:
    """A fresh symmetric-key CKKS context (secret key inside) with relinearisation keys."""
    ts = require("tenseal")
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree, coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
                     encryption_type=ts.ENCRYPTION_TYPE.SYMMETRIC)
    ctx.global_scale = 2.0**params.global_scale_bits
    ctx.generate_relin_keys()
    return ctx


def context_matches(ctx: Any, params: CKKSParams) -> bool:
    """Whether a (public) context has the ring degree, modulus and scale of ``params``."""
    parms = ctx.seal_context().data.key_context_data()
    return (parms.parms().poly_modulus_degree() == params.poly_modulus_degree
            and parms.total_coeff_modulus_bit_count() == sum(params.coeff_mod_bit_sizes)
            and ctx.global_scale == 2.0**params.global_scale_bits)


# -- data owner ---------------------------------------------------------------------------------
class HiddenClient:
    """The data owner's side of hidden mode. Make one with :func:`mde.load_artifact`.

    The CKKS secret key is created by :meth:`encrypt` and stays here (save it with
    :meth:`save_key` to decrypt in another process).
    """

    def __init__(self, manifest: HiddenManifest, manifest_sha256: str) -> None:
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self._ctx: Any = None
        self._request_id: str | None = None
        self._decrypted: set[str] = set()

    @property
    def artifact_id(self) -> str:
        return self.manifest.artifact_id

    @property
    def classes(self) -> list[Any]:
        return list(self.manifest.classes)

    def encrypt(self, X: Any, y: Any, *, progress: bool = False) -> EncryptedRecords:
        """Encrypt records under a fresh key kept here; returns the message to send.

        Each batch of up to N/2 records becomes one ciphertext per feature and per class
        (one-hot label); the last batch is padded with zero records (the model owner removes
        their known score).
        """
        ts = require("tenseal")
        m = self.manifest
        Xa = check_matrix(X, m.n_features, feature_names=m.feature_names)
        yi = encode_labels(y, m.classes, Xa.shape[0])
        X32 = Xa.astype(np.float32)
        committer = Committer(m.n_features)
        committer.update(X32, yi)
        self._ctx = secret_context(m.ckks)
        self._request_id = uuid.uuid4().hex
        slots = m.ckks.slots
        k = len(m.classes)
        blobs = {}
        starts = range(0, Xa.shape[0], slots)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encrypting", unit="batch")
        for b, i in enumerate(starts):
            xb = np.zeros((slots, m.n_features))  # zero records pad the batch to full slots
            Yb = np.zeros((slots, k))
            rows = min(slots, Xa.shape[0] - i)
            xb[:rows] = X32[i : i + rows]
            Yb[np.arange(rows), yi[i : i + rows]] = 1.0
            blobs[f"b{b}_X"] = _join([ts.ckks_vector(self._ctx, xb[:, j]).serialize() for j in range(m.n_features)])
            blobs[f"b{b}_Y"] = _join([ts.ckks_vector(self._ctx, Yb[:, j]).serialize() for j in range(k)])
        blobs["context.tenseal"] = self._ctx.serialize(save_public_key=False, save_secret_key=False,
                                                    save_galois_keys=False, save_relin_keys=True)
        return EncryptedRecords(artifact_id=m.artifact_id, manifest_sha256=self.manifest_sha256,
                                request_id=self._request_id, n_records=Xa.shape[0],
                                n_batches=-(-Xa.shape[0] // slots), commitment=committer.hexdigest(), blobs=blobs)

    def score(self, *args: Any, **kwargs: Any) -> Any:
        """Hidden-mode artifacts are not scored locally: there is no proxy here to run."""
        raise InputError("this is a hidden-mode artifact: there is no proxy to run locally. Encrypt the records "
                         "with client.encrypt(X, y) (CLI: `mde encrypt`) and send the request to the model owner.")

    def decrypt(self, result: MaskedResult | bytes, *, random_state: int | np.random.Generator | None = None) -> PartialResult:
        """Decrypt the masked result, sum its slots and add flooding noise; returns the one
        number to send back (the exact decryption never leaves this object).

        Raises
        ------
        ProtocolError
            If the result is for another request or artifact, was already decrypted, or its
            ciphertext is not under this client's key.
        """
        ts = require("tenseal")
        if isinstance(result, (bytes, bytearray)):
            result = MaskedResult.from_bytes(bytes(result))
        if self._ctx is None or result.request_id != self._request_id or result.artifact_id != self.artifact_id:
            raise ProtocolError("this result answers another request (or this client encrypted nothing); "
                                "decrypt it with the client (or key file) that made the request.")
        if result.result_id in self._decrypted:
            raise ProtocolError("this result was already decrypted once; a second decryption would leak more.")
        try:
            values = np.asarray(ts.ckks_vector_from(self._ctx, result.ciphertext).decrypt())
        except Exception as exc:
            raise ProtocolError(f"result ciphertext does not belong to this client's key or is damaged: {exc}") from exc
        cap = self.manifest.ckks.capacity
        if values.shape != (self.manifest.ckks.slots,) or not np.all(np.isfinite(values)) or np.abs(values).max() > cap:
            raise ProtocolError(f"decrypted slots are outside the CKKS range (|v| <= {cap:g}): the result is "
                                "corrupt or the records overflowed the parameters; no score is returned.")
        self._decrypted.add(result.result_id)
        rng = np.random.default_rng(random_state)
        value = float(values.sum() + rng.normal(0.0, self.manifest.flood_sigma))
        return PartialResult(artifact_id=result.artifact_id, request_id=result.request_id,
                             result_id=result.result_id, value=value)

    def save_key(self, path: str | os.PathLike[str]) -> None:
        """Save the secret key and request id (keep this file private)."""
        if self._ctx is None:
            raise ProtocolError("nothing was encrypted yet, so there is no key to save.")
        blob = self._ctx.serialize(save_public_key=False, save_secret_key=True, save_galois_keys=False,
                                   save_relin_keys=False)
        head = {"request_id": self._request_id, "artifact_id": self.artifact_id, "decrypted": sorted(self._decrypted)}
        with open(path, "wb") as fh:
            fh.write(_pack("data-owner-key", head, {"context.secret.tenseal": blob}))

    def load_key(self, path: str | os.PathLike[str]) -> None:
        """Load a key saved with :meth:`save_key`."""
        ts = require("tenseal")
        with open(path, "rb") as fh:
            head, blobs = _unpack(fh.read(), "data-owner-key")
        if head.get("artifact_id") != self.artifact_id:
            raise ProtocolError("this key file belongs to a request for another artifact.")
        self._ctx = ts.context_from(blobs["context.secret.tenseal"])
        self._request_id = head["request_id"]
        self._decrypted = set(head.get("decrypted", []))

    def __repr__(self) -> str:
        m = self.manifest
        return f"HiddenClient(artifact_id={m.artifact_id!r}, kind={m.proxy_kind!r}, n_features={m.n_features})"
