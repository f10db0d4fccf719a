"""Small numerical helpers shared by the adapters and the proxies."""

from __future__ import annotations

import numpy as np

__all__ = ["softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable (a new array; ``logits`` is not modified)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
