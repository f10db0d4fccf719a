"""Adapter for ``torch.nn.Module`` classifiers; torch is imported lazily."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adapters.base import BlackBox, softmax
from mde.errors import AdapterError, require

__all__ = ["TorchBlackBox", "is_torch_module"]


def is_torch_module(model: Any) -> bool:
    """True for a ``torch.nn.Module`` (checked without importing torch)."""
    return any(
        cls.__module__.startswith("torch.nn") and cls.__name__ == "Module"
        for cls in type(model).__mro__
    )


class TorchBlackBox(BlackBox):
    """Wrap a torch classifier that maps a float batch to logits (or probabilities).

    Parameters
    ----------
    model : torch.nn.Module
    classes : sequence, optional
        Class labels in output order; default ``range(k)``, k read from one forward pass.
    n_features : int, optional
        Flat input width; default: the ``in_features`` of the first ``Linear`` layer, or the
        product of ``input_shape``.
    input_shape : tuple of int, optional
        Per-record shape the module expects (e.g. ``(1, 28, 28)``); flat rows are reshaped.
    outputs : {"logits", "probabilities"}
    batch_size : int
    """

    def __init__(
        self,
        model: Any,
        classes: Sequence[Any] | None = None,
        n_features: int | None = None,
        input_shape: Sequence[int] | None = None,
        outputs: str = "logits",
        batch_size: int = 4096,
    ) -> None:
        torch = require("torch", "torch")
        if not isinstance(model, torch.nn.Module):
            raise AdapterError(f"expected a torch.nn.Module, got {type(model).__name__}.")
        if outputs not in ("logits", "probabilities"):
            raise AdapterError("outputs must be 'logits' or 'probabilities'.")
        self.model = model.eval()
        self.outputs = outputs
        self.batch_size = int(batch_size)
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        if n_features is None:
            if self.input_shape is not None:
                n_features = int(np.prod(self.input_shape))
            else:
                linear = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None)
                if linear is None:
                    raise AdapterError(
                        "cannot infer the input width of this torch model; pass n_features=... "
                        "(and input_shape=... if it expects images)."
                    )
                n_features = int(linear.in_features)
        self.n_features_in_ = int(n_features)
        if classes is None:
            k = self._forward(np.zeros((1, self.n_features_in_))).shape[1]
            classes = list(range(k))
        self.classes_ = np.asarray(classes)

    def _forward(self, X: np.ndarray) -> np.ndarray:
        torch = require("torch", "torch")
        outs = []
        with torch.no_grad():
            for start in range(0, X.shape[0], self.batch_size):
                xb = torch.as_tensor(X[start : start + self.batch_size], dtype=torch.float32)
                if self.input_shape is not None:
                    xb = xb.reshape((xb.shape[0], *self.input_shape))
                outs.append(self.model(xb).detach().cpu().double().numpy())
        return np.concatenate(outs, axis=0)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = self._forward(X)
        return softmax(out) if self.outputs == "logits" else out
