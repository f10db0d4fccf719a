"""Small numerical helpers shared by the adapters, the proxies and the scorers."""

from __future__ import annotations

import numpy as np

__all__ = ["softmax", "clip_rows", "ExactSum"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable (a new array; ``logits`` is not modified)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def clip_rows(A: np.ndarray, bound: float) -> np.ndarray:
    """Each row scaled down to L2 norm at most ``bound`` (rows already inside are unchanged)."""
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A * (bound / np.maximum(norms, bound))  # a zero row stays zero, no overflow


# a finite float32 is M * 2**(E - 150) with M < 2**24 an integer and E = max(biased exponent, 1);
# bin E >> 3 holds it as the integer M << (E & 7) < 2**31 in units of 2**(8 * bin - 150), which
# is the float32 times an exact power of two (looked up by biased exponent)
_N_BINS = 32
_UNIT_EXP = -150
_ROWS_PER_ADD = 1 << 21  # 2**21 values below 2**31 sum exactly in float64 (bincount)
_E_EFF = np.maximum(np.arange(256), 1)
_BIN_OF = (_E_EFF >> 3).astype(np.uint32)
_SCALE_OF = np.ldexp(1.0, -_UNIT_EXP - 8 * (_E_EFF >> 3))


class ExactSum:
    """Exact column sums of float32 rows, independent of batching and order.

    Each batch adds its values exactly (integers per exponent bin); :meth:`value` rounds the
    exact total to float64 once. Summing the same records in any batches, on any number of
    machines (:meth:`merge`), gives bit-identical totals.

    Parameters
    ----------
    n_columns : int
    """

    def __init__(self, n_columns: int) -> None:
        self.n_columns = n_columns
        self._acc = np.zeros(n_columns * _N_BINS, dtype=np.int64)
        self._big = [0] * n_columns  # exact overflow store, in units of 2**_UNIT_EXP
        self._col_keys = np.arange(n_columns, dtype=np.uint32) * np.uint32(_N_BINS)

    def add(self, rows: np.ndarray) -> None:
        """Add the rows of a finite float32 ``(n, n_columns)`` array."""
        a = np.asarray(rows)
        if a.dtype != np.float32 or a.ndim != 2 or a.shape[1] != self.n_columns:
            raise ValueError(f"rows must be float32 (n, {self.n_columns}); got {a.dtype} {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("ExactSum adds finite values only")
        a = np.ascontiguousarray(a)
        for i in range(0, a.shape[0], _ROWS_PER_ADD):
            self._add(a[i : i + _ROWS_PER_ADD])

    def _add(self, a32: np.ndarray) -> None:
        biased = (a32.view(np.uint32) >> np.uint32(23)).astype(np.uint8)  # drops the sign bit
        keys = _BIN_OF[biased] + self._col_keys
        ints = a32 * _SCALE_OF[biased]  # exact: a power-of-two scaling into float64
        sums = np.bincount(keys.ravel(), weights=ints.ravel(), minlength=self._acc.size)
        self._acc += sums.astype(np.int64)  # exact: every partial sum is an integer < 2**53
        if np.abs(self._acc).max(initial=0) > 2**61:
            self._flush()

    def _flush(self) -> None:
        acc = self._acc.reshape(self.n_columns, _N_BINS)
        for j in range(self.n_columns):
            self._big[j] += sum(int(v) << (8 * b) for b, v in enumerate(acc[j]) if v)
        self._acc[:] = 0

    def merge(self, other: ExactSum) -> None:
        """Add another accumulator's records (from another batch, process or machine)."""
        if other.n_columns != self.n_columns:
            raise ValueError("ExactSum.merge needs the same number of columns")
        self._acc += other._acc  # both below 2**61: no overflow
        if any(other._big):
            self._big = [a + b for a, b in zip(self._big, other._big)]
        if np.abs(self._acc).max(initial=0) > 2**61:
            self._flush()

    def value(self) -> np.ndarray:
        """The exact column sums, each rounded once to float64."""
        self._flush()
        scale = 2 ** (-_UNIT_EXP)
        return np.array([v / scale for v in self._big], dtype=np.float64)
