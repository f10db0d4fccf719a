"""Input compression for the influence proxy: a whitened affine map x -> phi(x) = [z(x), 1]."""

from __future__ import annotations

import numpy as np

from mde.errors import InputError

__all__ = ["fit_compression"]


def fit_compression(
    X: np.ndarray, method: str, n_components: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Fit an affine map ``phi = X @ P + c`` on ``X``.

    The first ``r`` columns of ``phi`` are compressed features, centred and scaled to unit
    variance on ``X`` (whitened), so one L2 strength suits every data set; the last column
    is the constant 1 (the head's bias input).

    Parameters
    ----------
    X : ndarray (n, d)
    method : {"pca", "random"}
        PCA, or a Gaussian random projection.
    n_components : int
        r, clipped to ``min(d, n - 1)``.
    rng : numpy Generator

    Returns
    -------
    P : ndarray (d, r + 1)
    c : ndarray (r + 1,)
    """
    n, d = X.shape
    r = int(max(1, min(n_components, d, n - 1)))
    mean = X.mean(axis=0)
    Xc = X - mean
    if method == "pca":
        # economy SVD of the centred data; rows of Vt are principal axes
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
        keep = s[:r] > s[0] * 1e-8
        basis = vt[:r][keep].T
    elif method == "random":
        basis = rng.standard_normal((d, r)) / np.sqrt(r)
    else:
        raise InputError(f"compression must be 'pca' or 'random', got {method!r}.")
    Z = Xc @ basis
    scale = Z.std(axis=0)
    scale[scale < 1e-12] = 1.0
    basis = basis / scale
    r = basis.shape[1]
    P = np.zeros((d, r + 1))
    P[:, :r] = basis
    c = np.zeros(r + 1)
    c[:r] = -mean @ basis
    c[r] = 1.0
    return P, c
