"""Input validation at the library boundary.

Every public entry point that takes data calls these once, so that bad input fails early
with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mde.errors import InputError, LabelError

__all__ = ["check_matrix", "check_finite", "encode_labels", "check_Xy", "as_native"]


def check_matrix(X: Any, n_features: int | None = None, name: str = "X", finite: bool = True) -> np.ndarray:
    """Return ``X`` as a finite float64 array of shape (n, d), n >= 1.

    With ``finite=False`` the NaN/inf check is left to the caller (see :func:`check_finite`).

    Raises
    ------
    InputError
        If ``X`` is not numeric, not 2-D, empty, has the wrong width, or holds NaN/inf.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a numeric array of shape (n_records, n_features): {exc}") from exc
    if arr.ndim == 1 and n_features is not None and arr.shape[0] == n_features:
        raise InputError(
            f"{name} is 1-D with {arr.shape[0]} values; pass a 2-D array of shape (n_records, "
            f"{n_features}) (use X.reshape(1, -1) for a single record)."
        )
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_records, n_features); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise InputError(f"{name} is empty (0 records); there is nothing to score or price.")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(
            f"{name} has {arr.shape[1]} features but the model expects {n_features}; "
            "pass records with the same columns, in the same order, as the model was trained on."
        )
    if finite:
        check_finite(arr, name=name)
    return arr


def check_finite(arr: np.ndarray, offset: int = 0, name: str = "X") -> None:
    """Raise :class:`InputError` naming the first NaN/inf entry (record index + ``offset``)."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(
            f"{name} contains NaN or infinite values (first at record {bad[0] + offset}, feature {bad[1]}; "
            "values beyond the float32 range count as infinite); impute or drop those records before scoring."
        )


def as_native(value: Any) -> Any:
    """Convert a numpy scalar to the equivalent Python scalar (for JSON and dict keys)."""
    return value.item() if isinstance(value, np.generic) else value


def encode_labels(y: Any, classes: Sequence[Any], n_records: int | None = None) -> np.ndarray:
    """Map labels to class indices (int64) in the order of ``classes``.

    Raises
    ------
    InputError
        If ``y`` is not 1-D, has the wrong length, or is empty.
    LabelError
        If a label is not one of ``classes``.
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputError(f"y must be 1-D (n_records,); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise InputError("y is empty (0 records); there is nothing to score or price.")
    if n_records is not None and arr.shape[0] != n_records:
        raise InputError(f"X has {n_records} records but y has {arr.shape[0]} labels; they must match.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputError("y contains NaN or infinite labels; drop those records before scoring.")
    index = {as_native(c): i for i, c in enumerate(classes)}
    uniq, inverse = np.unique(arr, return_inverse=True)
    codes = np.empty(len(uniq), dtype=np.int64)
    for j, label in enumerate(uniq):
        key = as_native(label)
        if key not in index:
            raise LabelError(
                f"label {key!r} is not one of the model's classes {list(index)}; "
                "relabel or drop those records (the proxy cannot value a class the model does not predict)."
            )
        codes[j] = index[key]
    return codes[inverse.ravel()]


def check_Xy(
    X: Any, y: Any, n_features: int | None, classes: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a labelled data set; return (X float64 (n, d), class indices int64 (n,))."""
    Xa = check_matrix(X, n_features)
    return Xa, encode_labels(y, classes, Xa.shape[0])
