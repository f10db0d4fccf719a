"""The sealed score: the only message the data owner sends in sealed-value mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mde.errors import SealedScoreError
from mde.wire.envelope import Envelope

if TYPE_CHECKING:
    from mde.wire.signing import SigningKey

__all__ = ["SealedScore", "SealedHeader"]

FORMAT = "mde-sealed-score"
_MAX_CIPHERTEXTS = 1 << 20


def _member(i: int) -> str:
    return f"ct_{i:07d}.ckks"


class SealedHeader(BaseModel):
    """Plaintext metadata of a sealed score (all of it is visible to the model owner)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    artifact_id: str = Field(min_length=1, max_length=64)
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    n_records: int = Field(ge=1)
    per_record: bool
    commitment: str = Field(pattern=r"^[0-9a-f]{64}$")
    n_ciphertexts: int = Field(ge=1, le=_MAX_CIPHERTEXTS)
    dp_clip: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    dp_noise_multiplier: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)


class SealedScore:
    """Encrypted score of a data set against one artifact (block sums, summed in the
    ciphertext).

    Attributes
    ----------
    header : SealedHeader
        Artifact id and hash, number of records, commitment to the records.
    ciphertexts : list of bytes
        Serialized CKKS ciphertexts (readable only with the model owner's secret key).
    """

    format = FORMAT

    def __init__(
        self,
        header: SealedHeader,
        ciphertexts: list[bytes],
        signer: str | None = None,
        signature: bytes | None = None,
    ) -> None:
        if header.n_ciphertexts != len(ciphertexts):
            raise SealedScoreError(
                f"header announces {header.n_ciphertexts} ciphertexts, {len(ciphertexts)} given."
            )
        self.header = header
        self.ciphertexts = ciphertexts
        self.signer = signer
        self.signature = signature

    def envelope(self) -> Envelope:
        """The wire envelope of the current header and ciphertexts (with the signature)."""
        members = {_member(i): c for i, c in enumerate(self.ciphertexts)}
        return Envelope(
            FORMAT,
            self.header.model_dump(mode="json"),
            members,
            signer=self.signer,
            signature=self.signature,
        )

    def check_signature(self, expect_signer: str | None = None) -> str:
        """The data owner's key after checking that the signature covers the current header
        and every ciphertext in its position (and, if given, that it is ``expect_signer``).

        Raises
        ------
        SealedScoreError
            If it is unsigned or anything changed after signing.
        IdentityError
            If another key signed it.
        """
        return self.envelope().check_signature(SealedScoreError, expect_signer)

    @property
    def artifact_id(self) -> str:
        return self.header.artifact_id

    @property
    def n_records(self) -> int:
        return self.header.n_records

    @property
    def commitment(self) -> str:
        return self.header.commitment

    def to_bytes(self) -> bytes:
        """Serialize in the wire envelope (format ``mde-sealed-score``)."""
        return self.envelope().to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedScore:
        """Parse and integrity-check a sealed score.

        Raises
        ------
        SealedScoreError
            If the bytes are not a sealed score of this format version, or are corrupt.
        """
        return cls.from_envelope(Envelope.from_bytes(data, FORMAT, SealedScoreError))

    @classmethod
    def from_envelope(cls, env: Envelope) -> SealedScore:
        """Check a parsed ``mde-sealed-score`` envelope (see :meth:`from_bytes`)."""
        try:
            header = SealedHeader.model_validate(env.header)
        except ValidationError as exc:
            raise SealedScoreError(f"sealed score header is invalid: {exc}") from exc
        names = [_member(i) for i in range(header.n_ciphertexts)]
        if sorted(env.members) != names:
            raise SealedScoreError(
                f"sealed score holds {len(env.members)} ciphertext members; its header announces "
                f"{header.n_ciphertexts}. It is truncated or padded."
            )
        return cls(header, [env.members[n] for n in names], env.signer, env.signature)

    @classmethod
    def build(
        cls,
        *,
        artifact_id: str,
        manifest_sha256: str,
        n_records: int,
        per_record: bool,
        commitment: str,
        ciphertexts: list[bytes],
        key: SigningKey,
        dp_clip: float | None = None,
        dp_noise_multiplier: float | None = None,
    ) -> SealedScore:
        """A sealed score signed by the data owner's ``key``."""
        header = SealedHeader(
            dp_clip=dp_clip,
            dp_noise_multiplier=dp_noise_multiplier,
            artifact_id=artifact_id,
            manifest_sha256=manifest_sha256,
            n_records=n_records,
            per_record=per_record,
            commitment=commitment,
            n_ciphertexts=len(ciphertexts),
        )
        env = cls(header, ciphertexts).envelope().signed(key)
        return cls(header, ciphertexts, env.signer, env.signature)

    def __repr__(self) -> str:
        return (
            f"SealedScore(artifact_id={self.artifact_id!r}, n_records={self.n_records}, "
            f"per_record={self.header.per_record}, ciphertexts={len(self.ciphertexts)})"
        )
