"""Commitment to a data set: a SHA-256 over its records, in order, independent of batching."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["Committer", "commit"]

_TAG = b"mde-commitment-v1-f32"


class Committer:
    """Streaming commitment: feed validated batches in order, then call :meth:`hexdigest`.

    Records are hashed as the float32 features the psi graph sees (little-endian) and int64
    class indices: the commitment binds exactly what was scored. Feature and label streams
    are hashed separately, so the digest does not depend on the batch size.
    """

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features
        self.n_records = 0
        self._hx = hashlib.sha256()
        self._hy = hashlib.sha256()

    def update(self, X: np.ndarray, y_idx: np.ndarray) -> None:
        self._hx.update(np.ascontiguousarray(X, dtype="<f4").tobytes())
        self._hy.update(np.ascontiguousarray(y_idx, dtype="<i8").tobytes())
        self.n_records += X.shape[0]

    def hexdigest(self) -> str:
        h = hashlib.sha256(_TAG)
        h.update(f"{self.n_records}:{self.n_features}".encode())
        h.update(self._hx.digest())
        h.update(self._hy.digest())
        return h.hexdigest()


def commit(X: np.ndarray, y_idx: np.ndarray) -> str:
    """Commitment of a whole validated data set."""
    c = Committer(X.shape[1])
    c.update(X, y_idx)
    return c.hexdigest()
