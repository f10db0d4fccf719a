"""Input compression for the influence proxy: a whitened affine map x -> phi(x) = [z(x), 1]."""

from __future__ import annotations

import numpy as np

from mde.errors import InputError
from mde.proxies.pca import principal_axes

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
    if method == "pca":
        # rows of vt are principal axes (exact SVD for small data, randomised for large)
        mean, s, vt = principal_axes(X, r, rng)
        keep = s[:r] > s[0] * 1e-8
        basis = vt[:r][keep].T
    elif method == "random":
        mean = X.mean(axis=0)
        basis = rng.standard_normal((d, r)) / np.sqrt(r)
    else:
        raise InputError(f"compression must be 'pca' or 'random', got {method!r}.")
    Z = X @ basis - mean @ basis  # no centred copy of X
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
