"""Commitments to a data set.

:class:`Committer` makes the commitment the data owner sends: a Merkle tree (RFC 6962 shape,
:mod:`mde.wire.merkle`) over *salted* record hashes, each salt derived from a secret 32-byte
seed the data owner keeps in its ledger. Without the salts the buyer cannot confirm a guessed
data set from the commitment; with the seed (a full delivery) or with each bought record's
salt and inclusion proof (a partial one), it verifies exactly the records that were scored.

:class:`Fingerprint` is an unsalted hash of the same records that never leaves the data
owner: its ledger counts budgets and privacy loss per data set under it.

Records are hashed as the float32 features the psi graph sees (little-endian) and int64
class indices, so both bind exactly what was scored, independent of batching.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile

import numpy as np

from mde.validation import record_digests
from mde.wire.merkle import MerkleBuilder, commitment_hex, leaf_hashes, record_salts

__all__ = ["Committer", "Fingerprint", "batch_leaves", "commit", "new_seed"]

_TAG = b"mde-fingerprint-v2-multiset-f32"


def new_seed() -> bytes:
    """A fresh secret salt seed (32 random bytes)."""
    return secrets.token_bytes(32)


class Committer:
    """Streaming salted commitment: feed validated batches in order, then :meth:`hexdigest`.

    Parameters
    ----------
    n_features : int
    seed : bytes
        The 32-byte salt seed (:func:`new_seed`); keep it to deliver later.
    """

    def __init__(self, n_features: int, seed: bytes) -> None:
        self.n_features = n_features
        self.seed = seed
        self.n_records = 0
        self._tree = MerkleBuilder()

    def update(self, X: np.ndarray, y_idx: np.ndarray) -> None:
        self.add_leaves(batch_leaves(X, y_idx, self.seed, self.n_records))

    def add_leaves(self, leaves: np.ndarray) -> None:
        """Append the next records' leaf hashes (:func:`batch_leaves`, maybe computed on
        another machine with the same seed and start)."""
        self._tree.add(leaves)
        self.n_records += leaves.shape[0]

    def hexdigest(self) -> str:
        return commitment_hex(self._tree.root(), self.n_records, self.n_features)

    def root_hex(self) -> str:
        """The Merkle root (hex) the commitment hashes (sent with a delivery)."""
        return self._tree.root().hex()


def batch_leaves(X: np.ndarray, y_idx: np.ndarray, seed: bytes, start: int) -> np.ndarray:
    """Leaf hashes of records ``start, start + 1, ...`` of an offer under ``seed``."""
    return leaf_hashes(X, y_idx, record_salts(seed, start, X.shape[0]))


class Fingerprint:
    """Unsalted hash of a data set's *multiset* of records (local to the data owner, never
    sent): the same records in any order have the same fingerprint, so reordering a data
    set does not open a fresh budget. (A data set with one record more or less is another
    data set: budgets are per data set, not per record.)

    It hashes the sorted 16-byte :func:`~mde.validation.record_digests`. Past
    ``memory_records`` digests they are spilled to 256 temporary files by first byte, so an
    offer of any size is fingerprinted in bounded memory with the same result.
    """

    def __init__(self, n_features: int, memory_records: int = 1 << 20) -> None:
        self.n_features = n_features
        self.n_records = 0
        self.memory_records = memory_records
        self._rows: list[np.ndarray] = []
        self._held = 0
        self._spill: tempfile.TemporaryDirectory[str] | None = None

    def update(self, X: np.ndarray, y_idx: np.ndarray) -> None:
        self.add_digests(record_digests(X, y_idx))

    def add_digests(self, digests: np.ndarray) -> None:
        """Add the next records' ``(n, 16)`` uint8 digests."""
        self._rows.append(np.ascontiguousarray(digests).view("V16").ravel())
        self.n_records += digests.shape[0]
        self._held += digests.shape[0]
        if self._held > self.memory_records:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:  # nothing held (the last batch spilled, or a second call)
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryDirectory(prefix="mde-fingerprint-")
        rows = np.concatenate(self._rows)
        first = rows.view(np.uint8).reshape(-1, 16)[:, 0]
        order = np.argsort(first, kind="stable")
        bounds = np.searchsorted(first[order], np.arange(257))
        for b in range(256):
            part = rows[order[bounds[b] : bounds[b + 1]]]
            if len(part):
                with open(os.path.join(self._spill.name, f"{b:02x}"), "ab") as fh:
                    fh.write(part.tobytes())
        self._rows, self._held = [], 0

    def hexdigest(self) -> str:
        h = hashlib.sha256(_TAG)
        h.update(f"{self.n_records}:{self.n_features}".encode())
        if self._spill is None:
            if self._rows:
                h.update(np.sort(np.concatenate(self._rows)).tobytes())
            return h.hexdigest()
        self._flush()  # digests sort by their first byte, then within each file
        for b in range(256):
            path = os.path.join(self._spill.name, f"{b:02x}")
            if os.path.exists(path):
                h.update(np.sort(np.fromfile(path, dtype="V16")).tobytes())
        return h.hexdigest()

    def close(self) -> None:
        """Remove the spill files (also done when the object is collected)."""
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None


def commit(X: np.ndarray, y_idx: np.ndarray, seed: bytes) -> str:
    """Salted commitment of a whole validated data set."""
    c = Committer(X.shape[1], seed)
    c.update(X, y_idx)
    return c.hexdigest()
