"""Small numerical helpers shared by the adapters and the proxies."""

from __future__ import annotations

import numpy as np

__all__ = ["softmax", "clip_rows"]


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
