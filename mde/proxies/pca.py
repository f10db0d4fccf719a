"""Top principal directions of a training set, without a centred copy of it.

Small sets (``n * d`` up to 4 million values) get the exact economy SVD; larger ones the
randomised range finder with power iterations (Halko, Martinsson and Tropp 2011, Alg. 4.4),
where ``X - mean`` is applied implicitly, so memory stays a few ``n x (k + 10)`` blocks
beside the data and time is ``O(n d k)`` instead of ``O(n d^2)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["principal_axes", "EXACT_LIMIT"]

EXACT_LIMIT = 4_000_000  # n * d up to this: exact SVD (what every small problem gets)
_OVERSAMPLE = 10
_POWER_ITERATIONS = 4


def principal_axes(
    X: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, s, vt)``: the mean of ``X`` (n, d), singular values of ``X - mean`` in
    decreasing order and the matching principal axes as rows of ``vt``.

    The exact path returns all ``min(n, d)`` of them; the randomised one the top
    ``k + 10`` (enough to tell whether the rank exceeds ``k``).
    """
    n, d = X.shape
    mean = X.mean(axis=0)
    width = min(k + _OVERSAMPLE, n, d)
    if n * d <= EXACT_LIMIT or width >= min(n, d):
        _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
        return mean, s, vt

    def right(M: np.ndarray) -> np.ndarray:  # (X - 1 mean^T) @ M
        return X @ M - mean @ M

    def left(M: np.ndarray) -> np.ndarray:  # (X - 1 mean^T)^T @ M
        return X.T @ M - np.outer(mean, M.sum(axis=0))

    Q = np.linalg.qr(right(rng.standard_normal((d, width))))[0]
    for _ in range(_POWER_ITERATIONS):
        Q = np.linalg.qr(right(np.linalg.qr(left(Q))[0]))[0]
    _, s, vt = np.linalg.svd(left(Q).T, full_matrices=False)  # B = Q^T (X - 1 mean^T)
    return mean, s, vt
