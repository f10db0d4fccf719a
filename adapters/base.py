"""The black-box interface every adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from mde.errors import AdapterError
from mde.numerics import softmax
from mde.validation import check_matrix

__all__ = ["BlackBox", "softmax"]


class BlackBox(ABC):
    """A classifier MDE may only query: ``predict_proba(X) -> (n, k)``.

    Attributes
    ----------
    classes_ : ndarray of shape (k,)
        Class labels, in the column order of ``predict_proba``.
    n_features_in_ : int
        Number of input features.
    """

    classes_: np.ndarray
    n_features_in_: int

    @abstractmethod
    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return class probabilities for validated float64 input."""

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n, k), validated (finite, rows sum to one)."""
        Xa = check_matrix(X, self.n_features_in_)
        proba = np.asarray(self._predict_proba(Xa), dtype=np.float64)
        k = len(self.classes_)
        if proba.ndim != 2 or proba.shape != (Xa.shape[0], k):
            raise AdapterError(
                f"{type(self).__name__} returned probabilities of shape {proba.shape}; expected "
                f"({Xa.shape[0]}, {k}). Check the model's output or the adapter's `classes` option."
            )
        if not np.all(np.isfinite(proba)) or np.any(proba < -1e-6):
            raise AdapterError(
                f"{type(self).__name__} returned NaN, infinite or negative probabilities."
            )
        sums = proba.sum(axis=1)
        if not np.allclose(sums, 1.0, atol=1e-3):
            raise AdapterError(
                f"{type(self).__name__} returned rows that do not sum to 1 (e.g. {sums[0]:.4f}); "
                "if the model outputs logits, wrap it with outputs='logits'."
            )
        return np.clip(proba, 0.0, 1.0) / np.clip(proba, 0.0, 1.0).sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Arg-max class labels."""
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(n_features_in_={self.n_features_in_}, classes_={list(self.classes_)})"
