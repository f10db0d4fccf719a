"""The public artifacts the model owner hands to data owners, in the wire envelope.

Sealed-value artifact (format ``mde-artifact``): header = :class:`ArtifactManifest`, members

- ``psi.onnx``: the efficacy-feature graph, inputs ``X`` float32 [n, d] and ``y`` int64 [n]
  (class indices), output ``psi`` float32 [n, m];
- ``context.tenseal``: the public CKKS context (public key only, no secret key);
- ``galois.seal``: seeded SEAL Galois keys for the layouts' rotations and the conjugation;
- ``w_<i>.ckks``: the encrypted value vector, one ciphertext per chunk of the segment layout;
- ``q_<i>.ckks`` (``order=2`` proxies): the encrypted pairwise values, per ``pairwise_layout``;
- ``known.npz`` (optional): the membership sketch of the training records.

Hidden-mode artifact (format ``mde-hidden-artifact``): header = :class:`HiddenManifest`
(shapes, classes, CKKS parameters, flooding noise), no members and no weights.

The artifact's content hash is its envelope digest; sealed scores and requests name it.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mde.crypto.params import CKKSParams, Layout, check_params, hidden_params, make_layout
from mde.errors import ArtifactError
from mde.wire.envelope import Envelope, read_bytes

if TYPE_CHECKING:
    from mde.wire.signing import SigningKey

__all__ = [
    "ArtifactManifest",
    "HiddenManifest",
    "SealedArtifact",
    "HiddenArtifact",
    "read_artifact",
    "MIN_FLOOD_SIGMA",
]

SEALED_FORMAT = "mde-artifact"
HIDDEN_FORMAT = "mde-hidden-artifact"
# the data owner refuses a flooding noise below this (absolute, in the scaled score units)
MIN_FLOOD_SIGMA = 2.0**-12


class ManifestBase(BaseModel):
    """Fields every artifact manifest has (sealed-value and hidden mode)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    artifact_id: str = Field(min_length=1, max_length=64)
    proxy_kind: str
    n_features: int = Field(ge=1, le=2**20)
    feature_names: list[str] | None = None
    # class labels are JSON scalars (the data owner looks its labels up among them)
    classes: list[bool | int | float | str] = Field(min_length=2, max_length=2**16)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, classes: list[Any]) -> list[Any]:
        if len(set(classes)) != len(classes):
            raise ValueError("classes must be distinct labels (1, 1.0 and True are one label)")
        return classes


class ArtifactManifest(ManifestBase):
    """What a data owner learns about a sealed-value artifact besides its members."""

    mode: str = "sealed-value"
    psi_dim: int = Field(ge=1, le=2**24)
    ckks: CKKSParams
    layout: Layout
    pairwise_layout: Layout | None = None
    psi_clip: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)


class HiddenManifest(ManifestBase):
    """What the data owner gets in hidden mode: shapes and parameters, no weights."""

    mode: str = "hidden"
    inputs: dict[str, int]
    ckks: CKKSParams
    depth: int = Field(ge=1, le=7)
    flood_sigma: float


def _manifest(cls: type[ManifestBase], header: Any) -> Any:
    try:
        return cls.model_validate(header)
    except ValidationError as exc:
        raise ArtifactError(f"artifact manifest is invalid: {exc}") from exc


class SealedArtifact:
    """A sealed-value artifact: manifest plus psi graph, public context and Enc(w)."""

    format = SEALED_FORMAT

    def __init__(
        self,
        manifest: ArtifactManifest,
        members: dict[str, bytes],
        envelope: Envelope | None = None,
    ) -> None:
        self.manifest = manifest
        self.members = members
        self._envelope = envelope or Envelope(
            SEALED_FORMAT, manifest.model_dump(mode="json"), members
        )

    @property
    def digest(self) -> str:
        """Content hash (SHA-256 of the envelope header, which hashes every member and names
        the signer)."""
        return self._envelope.digest

    @property
    def signer(self) -> str | None:
        """The model owner's public key (hex) if signed."""
        return self._envelope.signer

    def signed(self, key: SigningKey) -> SealedArtifact:
        """This artifact signed by the model owner's ``key``."""
        return SealedArtifact(self.manifest, self.members, self._envelope.signed(key))

    def to_bytes(self) -> bytes:
        return self._envelope.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedArtifact:
        """Parse and check an artifact: envelope, manifest, CKKS parameters, layouts, members.

        Raises
        ------
        ArtifactError
            If anything is tampered, inconsistent, unsafe or of another version.
        """
        return cls._check(Envelope.from_bytes(data, SEALED_FORMAT, ArtifactError))

    @classmethod
    def _check(cls, env: Envelope) -> SealedArtifact:
        m: ArtifactManifest = _manifest(ArtifactManifest, env.header)
        problem = check_params(m.ckks)
        if problem:
            raise ArtifactError(f"artifact's CKKS parameters are unsafe or unusable: {problem}")
        if m.layout != make_layout(m.psi_dim, m.ckks):
            raise ArtifactError(
                "artifact's slot layout does not match its CKKS parameters and psi dimension."
            )
        pair = m.pairwise_layout
        n_pair = m.psi_dim * (m.psi_dim + 1) // 2
        if pair is not None and pair != make_layout(n_pair, m.ckks, per_record=False):
            raise ArtifactError(
                "artifact's pairwise layout does not match its CKKS parameters and psi dimension."
            )
        expected = {"psi.onnx", "context.tenseal", "galois.seal"}
        expected |= {f"w_{c}.ckks" for c in range(m.layout.chunks)}
        expected |= set() if pair is None else {f"q_{c}.ckks" for c in range(pair.chunks)}
        if not expected <= set(env.members) <= expected | {"known.npz"}:
            raise ArtifactError(
                f"artifact members {sorted(env.members)[:8]} do not match its manifest "
                f"(expected {sorted(expected)[:8]} and optionally known.npz); refusing it."
            )
        return cls(m, dict(env.members), env)

    def write(self, path: str | os.PathLike[str]) -> None:
        self._envelope.write(path)


class HiddenArtifact:
    """A hidden-mode artifact: the manifest only."""

    format = HIDDEN_FORMAT

    def __init__(self, manifest: HiddenManifest, envelope: Envelope | None = None) -> None:
        self.manifest = manifest
        self._envelope = envelope or Envelope(HIDDEN_FORMAT, manifest.model_dump(mode="json"))

    @property
    def digest(self) -> str:
        return self._envelope.digest

    @property
    def signer(self) -> str | None:
        """The model owner's public key (hex) if signed."""
        return self._envelope.signer

    def signed(self, key: SigningKey) -> HiddenArtifact:
        """This artifact signed by the model owner's ``key``."""
        return HiddenArtifact(self.manifest, self._envelope.signed(key))

    def to_bytes(self) -> bytes:
        return self._envelope.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> HiddenArtifact:
        """Parse and check a hidden-mode artifact (safe CKKS parameters for its depth, enough
        flooding noise, input shapes matching features and classes)."""
        return cls._check(Envelope.from_bytes(data, HIDDEN_FORMAT, ArtifactError))

    @classmethod
    def _check(cls, env: Envelope) -> HiddenArtifact:
        if env.members:
            raise ArtifactError(
                f"hidden-mode artifact holds members {sorted(env.members)[:5]}; it must hold the "
                "manifest only."
            )
        m: HiddenManifest = _manifest(HiddenManifest, env.header)
        problem = check_params(m.ckks)
        if problem or m.ckks != hidden_params(m.depth):
            raise ArtifactError(
                "hidden-mode artifact's CKKS parameters are unsafe or do not fit its depth: "
                f"{problem}"
            )
        if not (math.isfinite(m.flood_sigma) and m.flood_sigma >= MIN_FLOOD_SIGMA):
            raise ArtifactError(
                f"hidden-mode artifact asks for flooding noise {m.flood_sigma}; "
                f"at least {MIN_FLOOD_SIGMA:g} is needed to hide the CKKS error."
            )
        if m.inputs != {"X": m.n_features, "Y": len(m.classes)}:
            raise ArtifactError(
                "hidden-mode artifact's input shapes do not match its features and classes."
            )
        return cls(m, env)

    def write(self, path: str | os.PathLike[str]) -> None:
        self._envelope.write(path)


def read_artifact(source: str | os.PathLike[str] | bytes) -> SealedArtifact | HiddenArtifact:
    """Read and check an artifact of either mode (by its declared format).

    Raises
    ------
    ArtifactError
        If the file is missing, not an artifact, of another version, tampered or unsafe.
    """
    env = Envelope.from_bytes(
        read_bytes(source, "artifact", ArtifactError), (SEALED_FORMAT, HIDDEN_FORMAT), ArtifactError
    )
    if env.format == HIDDEN_FORMAT:
        return HiddenArtifact._check(env)
    return SealedArtifact._check(env)
