"""Input distribution for model extraction.

A Gaussian mixture with one component per training record (a Gaussian kernel density):
component i is centred on ``x_i`` with covariance ``bandwidth^2`` times the data covariance
restricted to its top ``max_dim`` principal directions (a compressed space when the data is
wide). Measured against a mixture of 10-50 Gaussians fitted by EM (in a 10-30 dimensional
PCA space or with diagonal covariances in input space), it gave higher extraction fidelity
on digits and MNIST with MLP and random-forest black boxes: EM mixtures in a PCA space
lose the residual detail that trees split on, and their trees fell below the relabelled-
training-set baseline.
"""

from __future__ import annotations

import numpy as np

from mde.proxies.pca import principal_axes

__all__ = ["InputSampler"]


class InputSampler:
    """Sample inputs near the owner's training records.

    Parameters
    ----------
    bandwidth : float
        Scale of each component's covariance relative to the data covariance.
    max_dim : int
        Number of principal directions the noise spans.
    random_state : int or None
    """

    def __init__(
        self, bandwidth: float = 0.3, max_dim: int = 20, random_state: int | None = None
    ) -> None:
        self.bandwidth = bandwidth
        self.max_dim = max_dim
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> InputSampler:
        self.X_ = X
        self.lo_, self.hi_ = X.min(axis=0), X.max(axis=0)
        _, s, vt = principal_axes(X, self.max_dim, np.random.default_rng(self.random_state))
        r = int(min(self.max_dim, len(s)))
        self.components_ = vt[:r]
        self.scales_ = s[:r] / np.sqrt(max(X.shape[0] - 1, 1))
        return self

    def sample(self, n: int) -> np.ndarray:
        """Draw ``n`` inputs, clipped to the range seen in the fitted data."""
        rng = np.random.default_rng(self.random_state)
        centres = self.X_[rng.integers(0, self.X_.shape[0], n)]
        noise = rng.standard_normal((n, len(self.scales_))) * (self.scales_ * self.bandwidth)
        return np.clip(centres + noise @ self.components_, self.lo_, self.hi_)
