"""Adapter for ONNX classifiers run with onnxruntime (path or serialized bytes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from adapters.base import BlackBox, softmax
from mde.errors import AdapterError, require

__all__ = ["OnnxBlackBox", "is_onnx_model"]


def is_onnx_model(model: Any) -> bool:
    """True for bytes, a path ending in ``.onnx``, or an ``onnx.ModelProto``."""
    if isinstance(model, (bytes, bytearray)):
        return True
    if isinstance(model, (str, os.PathLike)):
        return str(model).lower().endswith(".onnx")
    return type(model).__name__ == "ModelProto"


class OnnxBlackBox(BlackBox):
    """Wrap an ONNX classifier.

    Parameters
    ----------
    model : path, bytes or onnx.ModelProto
    classes : sequence, optional
        Class labels in output order. Default: the keys of a ZipMap output, else ``range(k)``.
    n_features : int, optional
        Input width, if the graph's input shape does not fix it.
    output : str, optional
        Name of the output holding probabilities or logits. Default: the first float output
        of rank 2, or a ZipMap (sequence of maps) output.
    outputs : {"probabilities", "logits"}
    """

    def __init__(
        self,
        model: Any,
        classes: Sequence[Any] | None = None,
        n_features: int | None = None,
        output: str | None = None,
        outputs: str = "probabilities",
    ) -> None:
        ort = require("onnxruntime")
        if type(model).__name__ == "ModelProto":
            model = model.SerializeToString()
        if isinstance(model, (str, os.PathLike)) and not os.path.exists(model):
            raise AdapterError(f"ONNX model file {os.fspath(model)!r} does not exist.")
        try:
            self._session = ort.InferenceSession(
                bytes(model) if isinstance(model, (bytes, bytearray)) else os.fspath(model),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise AdapterError(f"onnxruntime cannot load this model: {exc}") from exc
        if outputs not in ("logits", "probabilities"):
            raise AdapterError("outputs must be 'logits' or 'probabilities'.")
        self.outputs = outputs
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self._input_type = np.float64 if "double" in inp.type else np.float32
        if n_features is None:
            width = inp.shape[-1] if len(inp.shape) >= 2 else None
            if not isinstance(width, int):
                raise AdapterError(
                    f"the ONNX input {inp.name!r} has no fixed width ({inp.shape}); pass "
                    "n_features=..."
                )
            n_features = width
        self.n_features_in_ = int(n_features)
        outs = self._session.get_outputs()
        if output is None:
            rank2 = [o for o in outs if o.type == "tensor(float)" or o.type == "tensor(double)"]
            rank2 = [o for o in rank2 if len(o.shape) == 2]
            seq = [o for o in outs if o.type.startswith("seq(map")]
            chosen = (rank2 or seq or [None])[0]
            if chosen is None:
                raise AdapterError(
                    f"cannot find a probability output among {[o.name for o in outs]}; pass "
                    "output=..."
                )
            output = chosen.name
        elif output not in [o.name for o in outs]:
            raise AdapterError(
                f"ONNX model has no output {output!r}; it has {[o.name for o in outs]}."
            )
        self._output = output
        if classes is None:
            probe = self._session.run(
                [self._output], {self._input: np.zeros((1, self.n_features_in_), self._input_type)}
            )[0]
            if isinstance(probe, list) and probe and isinstance(probe[0], dict):
                classes = list(probe[0].keys())
            else:
                classes = list(range(np.asarray(probe).shape[1]))
        self.classes_ = np.asarray(classes)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = self._session.run([self._output], {self._input: X.astype(self._input_type)})[0]
        if isinstance(out, list):  # ZipMap: one {label: p} dict per record
            out = np.array(
                [[row[c] for c in self.classes_.tolist()] for row in out], dtype=np.float64
            )
        out = np.asarray(out, dtype=np.float64)
        return softmax(out) if self.outputs == "logits" else out
