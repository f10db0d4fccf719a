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
import secrets

import numpy as np

from mde.wire.merkle import MerkleBuilder, commitment_hex, leaf_hashes, record_salts

__all__ = ["Committer", "Fingerprint", "commit", "new_seed"]

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
        salts = record_salts(self.seed, self.n_records, X.shape[0])
        self._tree.add(leaf_hashes(X, y_idx, salts))
        self.n_records += X.shape[0]

    def hexdigest(self) -> str:
        return commitment_hex(self._tree.root(), self.n_records, self.n_features)

    def root_hex(self) -> str:
        """The Merkle root (hex) the commitment hashes (sent with a delivery)."""
        return self._tree.root().hex()


class Fingerprint:
    """Unsalted hash of a data set's *multiset* of records (local to the data owner, never
    sent): the same records in any order have the same fingerprint, so reordering a data
    set does not open a fresh budget. (A data set with one record more or less is another
    data set: budgets are per data set, not per record.)"""

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features
        self.n_records = 0
        self._rows: list[np.ndarray] = []

    def update(self, X: np.ndarray, y_idx: np.ndarray) -> None:
        X32 = np.ascontiguousarray(X, dtype="<f4") + np.float32(0.0)  # -0.0 is 0.0
        y8 = np.ascontiguousarray(y_idx, dtype="<i8")
        rows = np.concatenate(
            [X32.view(np.uint8).reshape(len(X32), -1), y8.view(np.uint8).reshape(len(y8), -1)],
            axis=1,
        )
        # 16-byte BLAKE2 digest per record, sorted at the end
        digests = [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]
        self._rows.append(np.frombuffer(b"".join(digests), dtype="V16"))
        self.n_records += X.shape[0]

    def hexdigest(self) -> str:
        h = hashlib.sha256(_TAG)
        h.update(f"{self.n_records}:{self.n_features}".encode())
        if self._rows:
            h.update(np.sort(np.concatenate(self._rows)).tobytes())
        return h.hexdigest()


def commit(X: np.ndarray, y_idx: np.ndarray, seed: bytes) -> str:
    """Salted commitment of a whole validated data set."""
    c = Committer(X.shape[1], seed)
    c.update(X, y_idx)
    return c.hexdigest()
