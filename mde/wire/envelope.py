"""The one envelope every MDE file and message travels in.

An envelope is a canonical, uncompressed zip:

- ``envelope.json`` (first): ``{"format", "version", "mde_version", "header", "members"}``
  as canonical JSON (sorted keys, no spaces, no NaN); ``members`` maps every other member's
  name to its SHA-256;
- the members, in name order, with fixed timestamps and attributes.

Reading re-encodes what it parsed and refuses any byte that differs (zip metadata, extra
bytes, duplicate names, a non-canonical header), checks every member hash, and accepts only
the format asked for at the version in :data:`mde.wire.versions.FORMAT_VERSIONS`. The
envelope's :attr:`~Envelope.digest` (SHA-256 of ``envelope.json``) covers every member, so
one hash names the whole content.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mde.errors import MDEError
from mde.wire.signing import verify_signature
from mde.wire.versions import FORMAT_VERSIONS, MDE_VERSION, SIGNED_FORMATS

if TYPE_CHECKING:
    from mde.wire.signing import SigningKey

__all__ = ["Envelope", "read_bytes", "canonical_json"]

_HEADER = "envelope.json"
_SIGNATURE = "envelope.sig"
_EPOCH = (1980, 1, 1, 0, 0, 0)
# a crafted file must not make a reader allocate without bound: envelopes are bounded
MAX_ENVELOPE_BYTES = 8 * 2**30
MAX_MEMBERS = 1 << 20
MAX_HEADER_DEPTH = 64  # nesting of the JSON header; re-encoding a deeper one could overflow


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, no NaN or infinity: one byte string per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: any depth is safe to measure)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(value, dict):
            stack += [(v, level + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, level + 1) for v in value]
    return deepest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system, info.external_attr = 3, 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


@dataclass(frozen=True)
class Envelope:
    """A versioned container: a format name, a JSON header and hashed binary members.

    Parameters
    ----------
    format : str
        One of :data:`mde.wire.versions.FORMAT_VERSIONS`.
    header : dict
        JSON-serialisable fields (canonical JSON: no NaN).
    members : dict of str to bytes
        Binary members; every one is hashed into the envelope's header.
    """

    format: str
    header: Mapping[str, Any]
    members: Mapping[str, bytes] = field(default_factory=dict)
    mde_version: str = MDE_VERSION
    signer: str | None = None
    signature: bytes | None = None

    def _header_bytes(self) -> bytes:
        doc = {
            "format": self.format,
            "version": FORMAT_VERSIONS[self.format],
            "mde_version": self.mde_version,
            "header": dict(self.header),
            "members": {k: _sha256(v) for k, v in self.members.items()},
        }
        if self.signer is not None:
            doc["signer"] = self.signer
        return canonical_json(doc)

    def signed(self, key: SigningKey) -> Envelope:
        """This envelope signed by ``key`` (its public key becomes :attr:`signer`)."""
        unsigned = replace(self, signer=key.public_hex, signature=None)
        return replace(unsigned, signature=key.sign(unsigned._header_bytes()))

    @property
    def signature_valid(self) -> bool:
        """Whether the envelope is signed and its signature verifies under :attr:`signer`."""
        if self.signer is None or self.signature is None:
            return False
        return verify_signature(self.signer, self.signature, self._header_bytes())

    def check_signature(self, error: type[MDEError], expect_signer: str | None = None) -> str:
        """Return the signer after checking the signature (and that it is ``expect_signer``).

        Raises
        ------
        error
            If the envelope is unsigned or its signature does not verify (it was changed
            after signing).
        IdentityError
            If it is validly signed by another key than ``expect_signer``.
        """
        if self.signer is None or self.signature is None:
            raise error(
                f"{self.format} is not signed; MDE only accepts signed messages from the other "
                "party. Ask it to send one made with a current MDE."
            )
        if not self.signature_valid:
            raise error(
                f"{self.format}'s signature does not verify: it was changed after it was signed "
                "(a header field, a member or their order). Refusing it."
            )
        if expect_signer is not None and self.signer != expect_signer:
            from mde.errors import IdentityError

            raise IdentityError(
                f"{self.format} is signed by {self.signer[:16]}..., not by the pinned key "
                f"{expect_signer[:16]}...; it does not come from the party you deal with."
            )
        return self.signer

    @property
    def digest(self) -> str:
        """SHA-256 of the envelope header, which holds every member's hash."""
        return _sha256(self._header_bytes())

    def to_bytes(self) -> bytes:
        """The canonical zip (same content, same bytes)."""
        if _HEADER in self.members or _SIGNATURE in self.members:
            raise ValueError(f"{_HEADER!r} and {_SIGNATURE!r} are reserved for the envelope")
        head = [(_HEADER, self._header_bytes())]
        if self.signer is not None:
            if self.signature is None:
                raise ValueError("an envelope with a signer needs its signature")
            head.append((_SIGNATURE, self.signature))
        return _zip(head + sorted(self.members.items()))

    def write(self, path: str | os.PathLike[str], *, private: bool = False) -> None:
        """Write :meth:`to_bytes` to ``path`` atomically (a crash leaves the old file whole);
        ``private=True`` makes it readable by its owner only (mode 0600: secret keys)."""
        data = self.to_bytes()
        tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
        try:
            if os.path.exists(tmp):
                os.remove(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def from_bytes(
        cls, data: bytes, expect: str | tuple[str, ...], error: type[MDEError]
    ) -> Envelope:
        """Parse and check an envelope of one of the ``expect`` formats.

        Raises
        ------
        error
            If the bytes are not a canonical envelope, are tampered, or hold another format
            or version.
        """
        formats = (expect,) if isinstance(expect, str) else expect
        what = " or ".join(formats)
        if not isinstance(data, (bytes, bytearray)):
            raise error(f"expected the bytes of an MDE {what} file, got {type(data).__name__}.")
        if len(data) > MAX_ENVELOPE_BYTES:
            raise error(
                f"{len(data)} bytes is larger than any MDE {what} file may be; refusing it."
            )
        data = bytes(data)
        compressed = False
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = zf.infolist()
                if len(infos) > MAX_MEMBERS:
                    raise ValueError(f"{len(infos)} members")
                # MDE never compresses: refuse unread what would inflate (a zip bomb)
                compressed = any(i.compress_type != zipfile.ZIP_STORED for i in infos)
                files = [] if compressed else [(i.filename, zf.read(i)) for i in infos]
            raw = json.loads(files[0][1]) if files and files[0][0] == _HEADER else None
        except Exception as exc:  # untrusted bytes: zipfile and json raise many kinds
            raise error(
                f"not a readable MDE {what} file (damaged or not an MDE file): {exc}"
            ) from exc
        if compressed:
            raise error(
                f"MDE {what} file holds compressed members, which MDE never writes: it was "
                "modified outside its members, or is not an MDE file. Refusing it unread."
            )
        if not isinstance(raw, dict):
            raise error(
                f"not an MDE {what} file: it has no envelope header. Make it with MDE's own tools."
            )
        if _depth(raw) > MAX_HEADER_DEPTH:
            raise error(
                f"MDE {what} file's header nests deeper than {MAX_HEADER_DEPTH} levels; no MDE "
                "file does. Refusing it (crafted)."
            )
        fmt, version = raw.get("format"), raw.get("version")
        if fmt not in formats:
            raise error(
                f"expected an MDE {what} file, got {fmt!r}; check which file goes to which step."
            )
        if version != FORMAT_VERSIONS[fmt]:
            raise error(
                f"{fmt} version {version!r} is not supported: this MDE ({MDE_VERSION}) reads "
                "version "
                f"{FORMAT_VERSIONS[fmt]} only. Ask the other party to make it again with a "
                "matching MDE."
            )
        header, hashes, made_by = raw.get("header"), raw.get("members"), raw.get("mde_version")
        if (
            not isinstance(header, dict)
            or not isinstance(hashes, dict)
            or not isinstance(made_by, str)
        ):
            raise error(
                f"{fmt} envelope header is malformed (header and members must be objects, "
                "mde_version a string)."
            )
        signer = raw.get("signer")
        signature = None
        if signer is not None:
            if not isinstance(signer, str) or len(files) < 2 or files[1][0] != _SIGNATURE:
                raise error(f"{fmt} envelope names a signer but holds no signature; refusing it.")
            signature = files[1][1]
            files = files[1:]
        elif fmt in SIGNED_FORMATS:
            raise error(
                f"{fmt} is not signed; MDE only accepts signed messages from the other party. "
                "Ask it to send one made with a current MDE."
            )
        members = dict(files[1:])
        if set(hashes) != set(members) or any(_sha256(members[k]) != hashes[k] for k in members):
            raise error(
                f"{fmt} members do not match their hashes (tampered or damaged); refusing it."
            )
        env = cls(fmt, header, members, made_by, signer, signature)
        try:
            canonical = env.to_bytes() == data
        except (ValueError, TypeError):
            canonical = False
        if not canonical:  # zip metadata, order, duplicates or JSON spelling differ
            raise error(
                f"{fmt} file was modified outside its members (not the canonical encoding); "
                "refusing it."
            )
        if signer is not None:
            env.check_signature(error)
        return env


def read_bytes(source: str | os.PathLike[str] | bytes, what: str, error: type[MDEError]) -> bytes:
    """The bytes of ``source`` (a path or the bytes themselves), with a clear error if the
    file is missing or unreadable."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    try:
        with open(source, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise error(f"{what} file {os.fspath(source)!r} does not exist.") from exc
    except OSError as exc:
        raise error(f"{what} file {os.fspath(source)!r} cannot be read: {exc}") from exc
