"""The sealed score: the only message the data owner sends to the model owner."""

from __future__ import annotations

import hashlib
import json
import struct

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mde.errors import SealedScoreError

__all__ = ["SealedScore", "SealedHeader", "SEALED_FORMAT_VERSION"]

SEALED_FORMAT_VERSION = 1
_MAGIC = b"MDESEAL\x00"


class SealedHeader(BaseModel):
    """Plaintext metadata of a sealed score (all of it is visible to the model owner)."""

    model_config = ConfigDict(frozen=True)

    format_version: int = SEALED_FORMAT_VERSION
    artifact_id: str
    manifest_sha256: str
    n_records: int = Field(ge=1)
    per_record: bool
    commitment: str
    ciphertext_sizes: list[int]
    payload_sha256: str


class SealedScore:
    """Encrypted, masked score of a data set against one artifact.

    Attributes
    ----------
    header : SealedHeader
        Artifact id, number of records, commitment to the records, sizes and checksum.
    ciphertexts : list of bytes
        Serialized CKKS ciphertexts (readable only with the model owner's secret key).
    """

    def __init__(self, header: SealedHeader, ciphertexts: list[bytes]) -> None:
        self.header = header
        self.ciphertexts = ciphertexts

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
        """Serialize: magic, header length, JSON header, then the ciphertexts."""
        head = self.header.model_dump_json().encode()
        return _MAGIC + struct.pack("<I", len(head)) + head + b"".join(self.ciphertexts)

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedScore:
        """Parse and integrity-check a sealed score.

        Raises
        ------
        SealedScoreError
            If the bytes are not a sealed score of this format version, or are corrupt.
        """
        if not isinstance(data, (bytes, bytearray)) or not data.startswith(_MAGIC) or len(data) < 12:
            raise SealedScoreError("not an MDE sealed score (bad magic bytes); pass the file `mde score` wrote.")
        (hlen,) = struct.unpack("<I", data[8:12])
        try:
            raw = json.loads(data[12 : 12 + hlen])
            header = SealedHeader.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            raise SealedScoreError(f"sealed score header is corrupt: {exc}") from exc
        if header.format_version != SEALED_FORMAT_VERSION:
            raise SealedScoreError(
                f"sealed score format {header.format_version} is not supported "
                f"(this MDE reads {SEALED_FORMAT_VERSION}); score again with a matching MDE version."
            )
        body = bytes(data[12 + hlen :])
        if sum(header.ciphertext_sizes) != len(body):
            raise SealedScoreError("sealed score is truncated or padded (payload size mismatch).")
        if hashlib.sha256(body).hexdigest() != header.payload_sha256:
            raise SealedScoreError("sealed score payload is corrupt (checksum mismatch).")
        cts, pos = [], 0
        for size in header.ciphertext_sizes:
            cts.append(body[pos : pos + size])
            pos += size
        return cls(header, cts)

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
    ) -> SealedScore:
        header = SealedHeader(
            artifact_id=artifact_id,
            manifest_sha256=manifest_sha256,
            n_records=n_records,
            per_record=per_record,
            commitment=commitment,
            ciphertext_sizes=[len(c) for c in ciphertexts],
            payload_sha256=hashlib.sha256(b"".join(ciphertexts)).hexdigest(),
        )
        return cls(header, ciphertexts)

    def __repr__(self) -> str:
        return (
            f"SealedScore(artifact_id={self.artifact_id!r}, n_records={self.n_records}, "
            f"per_record={self.header.per_record}, ciphertexts={len(self.ciphertexts)})"
        )
