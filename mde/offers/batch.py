"""One batch of an offer, as every source yields it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RecordBatch"]


@dataclass(frozen=True)
class RecordBatch:
    """One batch of an offer: ``X`` float32 or float64 ``(n, d)`` (finiteness is the
    scorer's check, on the float32 records), raw labels ``y`` ``(n,)``, ``start`` the index
    of its first record in the offer."""

    start: int
    X: np.ndarray
    y: np.ndarray
