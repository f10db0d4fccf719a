"""Ed25519 identities: each owner signs what it sends, and pins the other side's key.

A :class:`SigningKey` is a user's identity, kept as a PKCS#8 PEM file readable by its owner
only (default ``$MDE_HOME/identity.pem``, made on first use). Its public half, 64 hex
characters, is what the other party pins (given out of band, or trusted on first use and
recorded in its ledger). Signatures cover an envelope's header bytes, which hash every
member, so one signature binds every header field and every ciphertext in its position.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mde.errors import IdentityError, StorageError
from mde.paths import mde_home

__all__ = ["SigningKey", "verify_signature", "default_identity_path", "check_public_key"]

_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")
_REMEDY = (
    "Restore it from a backup, or move it away to make a new identity (the other party must "
    "then pin the new key)."
)


def default_identity_path() -> Path:
    """``$MDE_HOME/identity.pem``."""
    return mde_home() / "identity.pem"


def check_public_key(public_hex: Any, what: str = "public key") -> str:
    """Return ``public_hex`` if it is 64 lowercase hex characters.

    Raises
    ------
    IdentityError
        Otherwise.
    """
    if not isinstance(public_hex, str) or not _HEX_KEY.fullmatch(public_hex):
        raise IdentityError(
            f"{what} must be an Ed25519 public key as 64 lowercase hex characters; "
            f"got {public_hex!r:.80}."
        )
    return public_hex


class SigningKey:
    """An Ed25519 private key (an owner's identity).

    Use :meth:`generate`, :meth:`load` or :meth:`load_or_create`.
    """

    def __init__(self, private: Any) -> None:
        from cryptography.hazmat.primitives import serialization

        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_hex: str = raw.hex()

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random identity."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Read an identity written by :meth:`save`.

        Raises
        ------
        StorageError
            If the file is missing, damaged or not an Ed25519 key.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            with open(path, "rb") as fh:
                key = serialization.load_pem_private_key(fh.read(), password=None)
        except OSError as exc:
            raise StorageError(f"identity file {os.fspath(path)!r} cannot be read: {exc}") from exc
        except Exception as exc:  # damaged PEM: ValueError, TypeError, UnsupportedAlgorithm...
            raise StorageError(
                f"identity file {os.fspath(path)!r} is damaged or not a PEM private key ({exc}). "
                f"{_REMEDY}"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise StorageError(
                f"identity file {os.fspath(path)!r} is not an Ed25519 key. {_REMEDY}"
            )
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str] | None = None) -> SigningKey:
        """The identity at ``path`` (default :func:`default_identity_path`), made if missing."""
        p = Path(path) if path is not None else default_identity_path()
        if p.exists():
            return cls.load(p)
        key = cls.generate()
        try:
            key.save(p)
        except FileExistsError:  # another process made it first: use theirs
            return cls.load(p)
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private key as PEM, readable by its owner only; never overwrites.

        Raises
        ------
        FileExistsError
            If ``path`` exists.
        """
        from cryptography.hazmat.primitives import serialization

        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StorageError(f"identity file {str(p)!r} cannot be written: {exc}") from exc
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        sig: bytes = self._private.sign(data)
        return sig

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_hex[:16]}...)"


def verify_signature(public_hex: str, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``data`` by ``public_hex``.

    Never raises on malformed input: anything unusable is simply not a valid signature.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(public_hex, str) or not _HEX_KEY.fullmatch(public_hex):
        return False
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True
