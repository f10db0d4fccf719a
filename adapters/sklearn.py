"""Adapter for scikit-learn classifiers (with ``predict_proba`` or ``decision_function``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from adapters.base import BlackBox, softmax
from mde.errors import AdapterError

__all__ = ["SklearnBlackBox", "is_sklearn_classifier"]


def is_sklearn_classifier(model: Any) -> bool:
    """True for fitted estimators exposing ``classes_`` and a probability or score method."""
    return hasattr(model, "classes_") and (
        hasattr(model, "predict_proba") or hasattr(model, "decision_function")
    )


class SklearnBlackBox(BlackBox):
    """Wrap a fitted scikit-learn classifier.

    Uses ``predict_proba``; falls back to the softmax of ``decision_function``
    (for a binary classifier, the logistic of the score).

    Parameters
    ----------
    model : fitted classifier
    """

    def __init__(self, model: Any) -> None:
        if not is_sklearn_classifier(model):
            raise AdapterError(
                f"{type(model).__name__} is not a fitted scikit-learn classifier "
                "(it needs classes_ and predict_proba or decision_function); fit it first."
            )
        self.model = model
        self.classes_ = np.asarray(model.classes_)
        n = getattr(model, "n_features_in_", None)
        if n is None:
            raise AdapterError(
                f"{type(model).__name__} has no n_features_in_; fit it on a 2-D array."
            )
        self.n_features_in_ = int(n)
        self._use_proba = True
        try:
            _ = model.predict_proba  # SVC(probability=False) raises here
        except AttributeError:
            self._use_proba = False

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self._use_proba:
            return self.model.predict_proba(X)
        scores = np.asarray(self.model.decision_function(X), dtype=np.float64)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        return softmax(scores)
