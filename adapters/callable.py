"""Adapter for any function ``X -> probabilities`` (for example a remote prediction API)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from adapters.base import BlackBox, softmax
from mde.errors import AdapterError

__all__ = ["CallableBlackBox"]


class CallableBlackBox(BlackBox):
    """Wrap a prediction function.

    Parameters
    ----------
    fn : callable
        Maps an array (n, d) to probabilities (or logits) of shape (n, k).
    classes : sequence
        Class labels in output column order (required: a function carries no labels).
    n_features : int
        Input width (required).
    outputs : {"probabilities", "logits"}
    batch_size : int, optional
        Query the function in batches of this size (useful for rate-limited APIs).
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        classes: Sequence[Any] | None = None,
        n_features: int | None = None,
        outputs: str = "probabilities",
        batch_size: int | None = None,
    ) -> None:
        if not callable(fn):
            raise AdapterError(f"expected a callable, got {type(fn).__name__}.")
        if classes is None or n_features is None:
            raise AdapterError(
                "wrapping a plain function needs its class labels and input width: "
                "wrap(fn, classes=[...], n_features=d)."
            )
        if outputs not in ("logits", "probabilities"):
            raise AdapterError("outputs must be 'logits' or 'probabilities'.")
        self.fn = fn
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = int(n_features)
        self.outputs = outputs
        self.batch_size = batch_size

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        step = self.batch_size or X.shape[0]
        out = np.concatenate(
            [
                np.asarray(self.fn(X[i : i + step]), dtype=np.float64)
                for i in range(0, X.shape[0], step)
            ]
        )
        return softmax(out) if self.outputs == "logits" else out
