"""Hidden-mode messages, each a wire envelope (JSON header plus binary members, no pickle).

1. :class:`EncryptedRecords` (data owner -> model owner): records encrypted under the data
   owner's key, its public context (relinearisation keys only) and a commitment;
2. :class:`MaskedResult` (model owner -> data owner): one masked ciphertext of slot sums;
3. :class:`PartialResult` (data owner -> model owner): the flooded sum, one number.

:class:`DataOwnerKey` is the data owner's private key file (never sent).
"""

from __future__ import annotations

import math
import os
import struct
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from mde.errors import ProtocolError
from mde.wire.envelope import Envelope

if TYPE_CHECKING:
    from mde.wire.signing import SigningKey

__all__ = [
    "EncryptedRecords",
    "MaskedResult",
    "PartialResult",
    "DataOwnerKey",
    "join_blobs",
    "split_blobs",
]

M = TypeVar("M", bound="Message")


def join_blobs(blobs: list[bytes]) -> bytes:
    """Length-prefixed concatenation of ciphertexts (one member per column)."""
    return b"".join(struct.pack("<Q", len(b)) + b for b in blobs)


def split_blobs(data: bytes) -> list[bytes]:
    """Inverse of :func:`join_blobs`.

    Raises
    ------
    ProtocolError
        If the list is truncated or a length runs past the end.
    """
    out, pos = [], 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise ProtocolError("ciphertext list is truncated.")
        (size,) = struct.unpack_from("<Q", data, pos)
        if pos + 8 + size > len(data):
            raise ProtocolError("ciphertext list is truncated.")
        out.append(data[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return out


class Message(BaseModel):
    """A message: header fields plus binary members (``blob_field``: a bytes field sent as
    member ``blob_member``, or a dict field sent as its members)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: ClassVar[str]
    blob_field: ClassVar[str | None] = None
    blob_member: ClassVar[str | None] = None
    _signer: str | None = PrivateAttr(default=None)
    _signature: bytes | None = PrivateAttr(default=None)

    def _envelope(self) -> Envelope:
        if self.blob_field is None:
            header, blobs = self.model_dump(mode="json"), dict[str, bytes]()
        else:
            value = getattr(self, self.blob_field)
            blobs = {self.blob_member: value} if self.blob_member else dict(value)
            header = self.model_dump(mode="json", exclude={self.blob_field})
        return Envelope(self.format, header, blobs, signer=self._signer, signature=self._signature)

    @property
    def signer(self) -> str | None:
        """The sender's public key (hex) if signed."""
        return self._signer

    def signed(self: M, key: SigningKey) -> M:
        """A copy of this message signed by the sender's ``key``."""
        env = self._envelope().signed(key)
        out = self.model_copy()
        out._signer, out._signature = env.signer, env.signature
        return out

    def check_signature(self, expect_signer: str | None = None) -> str:
        """The sender's key after checking the signature covers every current field (and,
        if given, that it is ``expect_signer``).

        Raises
        ------
        ProtocolError
            If the message is unsigned or changed after signing.
        IdentityError
            If another key signed it.
        """
        return self._envelope().check_signature(ProtocolError, expect_signer)

    def to_bytes(self) -> bytes:
        return self._envelope().to_bytes()

    def write(self, path: str | os.PathLike[str], *, private: bool = False) -> None:
        """Write :meth:`to_bytes` to ``path`` atomically (``private``: mode 0600)."""
        self._envelope().write(path, private=private)

    @classmethod
    def from_bytes(cls: type[M], data: bytes) -> M:
        """Parse and check a message of this kind.

        Raises
        ------
        ProtocolError
            If the bytes are another message, tampered, or invalid.
        """
        return cls.from_envelope(Envelope.from_bytes(data, cls.format, ProtocolError))

    @classmethod
    def from_envelope(cls: type[M], env: Envelope) -> M:
        """Check a parsed envelope of this message's format (see :meth:`from_bytes`)."""
        if env.format != cls.format:
            raise ProtocolError(f"expected an MDE {cls.format} message, got {env.format!r}.")
        fields: dict[str, Any] = dict(env.header)
        try:
            if cls.blob_field is not None:
                if cls.blob_member is None:
                    fields[cls.blob_field] = dict(env.members)
                elif set(env.members) != {cls.blob_member}:
                    raise ProtocolError(
                        f"{cls.format} must hold exactly member {cls.blob_member!r}."
                    )
                else:
                    fields[cls.blob_field] = env.members[cls.blob_member]
            elif env.members:
                raise ProtocolError(f"{cls.format} must hold no members.")
            msg = cls(**fields)
        except ValidationError as exc:
            raise ProtocolError(f"{cls.format} message is invalid: {exc}") from exc
        msg._signer, msg._signature = env.signer, env.signature
        return msg


_ID = Field(min_length=1, max_length=64)
_HEX = Field(pattern=r"^[0-9a-f]{64}$")


class EncryptedRecords(Message):
    """Data owner -> model owner: encrypted records, public context and commitment."""

    format: ClassVar[str] = "mde-encrypted-records"
    blob_field: ClassVar[str | None] = "blobs"

    artifact_id: str = _ID
    manifest_sha256: str = _HEX
    request_id: str = _ID
    n_records: int = Field(ge=1)
    n_batches: int = Field(ge=1, le=1 << 16)
    commitment: str = _HEX
    blobs: dict[str, bytes]


class MaskedResult(Message):
    """Model owner -> data owner: one masked ciphertext of per-slot score sums."""

    format: ClassVar[str] = "mde-masked-result"
    blob_field: ClassVar[str | None] = "ciphertext"
    blob_member: ClassVar[str | None] = "score.ckks"

    artifact_id: str = _ID
    request_id: str = _ID
    result_id: str = _ID
    ciphertext: bytes


class PartialResult(Message):
    """Data owner -> model owner: the flooded sum of the decrypted slots (one number)."""

    format: ClassVar[str] = "mde-partial-result"

    artifact_id: str = _ID
    request_id: str = _ID
    result_id: str = _ID
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("the partial result must be a finite number")
        return v


class DataOwnerKey(Message):
    """The data owner's private hidden-mode key file: secret context and request state."""

    format: ClassVar[str] = "mde-data-owner-key"
    blob_field: ClassVar[str | None] = "secret_context"
    blob_member: ClassVar[str | None] = "context.secret.tenseal"

    artifact_id: str = _ID
    request_id: str = _ID
    decrypted: list[str] = Field(default_factory=list)
    commitment: str = _HEX
    dataset: str = _HEX
    n_records: int = Field(ge=1)
    secret_context: bytes
