"""Input validation at the library boundary.

Every public entry point that takes data calls these once, so that bad input fails early
with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from mde.errors import InputError, LabelError

__all__ = [
    "check_matrix",
    "check_finite",
    "feature_names_of",
    "encode_labels",
    "check_Xy",
    "as_native",
    "record_digests",
    "repeated_records",
]


def feature_names_of(X: Any) -> list[str] | None:
    """Column names of a data frame (pandas or alike), else None."""
    cols = getattr(X, "columns", None)
    return None if cols is None else [str(c) for c in cols]


def check_matrix(
    X: Any,
    n_features: int | None = None,
    name: str = "X",
    finite: bool = True,
    feature_names: list[str] | None = None,
) -> np.ndarray:
    """Return ``X`` as a finite float64 array of shape (n, d), n >= 1.

    With ``finite=False`` the NaN/inf check is left to the caller (see :func:`check_finite`).
    If ``X`` is a data frame and ``feature_names`` are known, its columns must match them.

    Raises
    ------
    InputError
        If ``X`` is not numeric, not 2-D, empty, has the wrong width, or holds NaN/inf.
    """
    names = feature_names_of(X)
    if names is not None and feature_names is not None and names != list(feature_names):
        raise InputError(
            f"{name}'s columns {names[:5]}... differ from the features the proxy was built on "
            f"{list(feature_names)[:5]}...; select and order the columns the same way."
        )
    if np.iscomplexobj(X):
        raise InputError(f"{name} holds complex numbers; pass real-valued features.")
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{name} must be a numeric array of shape (n_records, n_features): {exc}"
        ) from exc
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
            f"{name} contains NaN or infinite values (first at record {bad[0] + offset}, feature "
            f"{bad[1]}; "
            "values beyond the float32 range count as infinite); impute or drop those records "
            "before scoring."
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
        raise InputError(
            f"X has {n_records} records but y has {arr.shape[0]} labels; they must match."
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputError("y contains NaN or infinite labels; drop those records before scoring.")
    index = {as_native(c): i for i, c in enumerate(classes)}
    try:
        uniq, inverse = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise InputError(
            f"y mixes label types that cannot be compared ({exc}); use one type for all labels."
        ) from exc
    codes = np.empty(len(uniq), dtype=np.int64)
    for j, label in enumerate(uniq):
        key = as_native(label)
        if key not in index:
            if isinstance(key, str) and all(not isinstance(c, str) for c in index):
                raise LabelError(
                    f"label {key!r} is a string but the model's classes are numbers {list(index)}; "
                    "pass numeric labels (a list mixing numbers and strings is read as all "
                    "strings)."
                )
            raise LabelError(
                f"label {key!r} is not one of the model's classes {list(index)}; "
                "relabel or drop those records (the proxy cannot value a class the model does not "
                "predict)."
            )
        codes[j] = index[key]
    return codes[inverse.ravel()]


def check_Xy(
    X: Any,
    y: Any,
    n_features: int | None,
    classes: Sequence[Any],
    feature_names: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a labelled data set; return (X float64 (n, d), class indices int64 (n,))."""
    Xa = check_matrix(X, n_features, feature_names=feature_names)
    return Xa, encode_labels(y, classes, Xa.shape[0])


def check_number(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    low_open: bool = False,
) -> Any:
    """Validate a hyperparameter: a real number (an integer if asked) at or above ``low``
    (strictly above with ``low_open``). Returns it as int or float."""
    ok_type = (
        isinstance(value, (int, np.integer))
        if integer
        else isinstance(value, (int, float, np.integer, np.floating))
    )
    if isinstance(value, bool) or not ok_type or (not integer and not np.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"{name} must be {kind}; got {value!r}.")
    if low is not None and (value <= low if low_open else value < low):
        raise InputError(f"{name} must be {'>' if low_open else '>='} {low}; got {value!r}.")
    return int(value) if integer else float(value)


def record_digests(X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """Unsalted 16-byte digest of each record, ``(n, 16)`` uint8: BLAKE2b (digest size 16)
    of its float32 features (little-endian, -0.0 folded into 0.0) followed by its int64
    class index. Equal records (as scored) have equal digests; the data owner's fingerprint
    and the repeat screen both use them."""
    X32 = np.ascontiguousarray(X, dtype="<f4") + np.float32(0.0)  # folds -0.0 into 0.0
    y8 = np.ascontiguousarray(y_idx, dtype="<i8")
    n = X32.shape[0]
    if X32.ndim != 2 or y8.shape != (n,):
        raise ValueError(f"record_digests needs X (n, d) and y (n,); got {X32.shape}, {y8.shape}")
    row = X32.shape[1] * 4
    xs, ys = X32.reshape(-1).view(np.uint8).data, y8.view(np.uint8).data
    out = bytearray(16 * n)
    blake = hashlib.blake2b
    for i in range(n):
        h = blake(xs[i * row : (i + 1) * row], digest_size=16)
        h.update(ys[8 * i : 8 * i + 8])
        out[16 * i : 16 * i + 16] = h.digest()
    return np.frombuffer(out, dtype=np.uint8).reshape(n, 16)


def repeated_records(X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """Boolean mask of the records that repeat an earlier record of the same array: equal
    features after rounding to float32 (the form that is scored and committed; -0.0 counts
    as 0.0) and the same label, compared by 64 bits of :func:`record_digests`. Copies inside
    one offer are worth the first one only."""
    keys = record_digests(X, y_idx)[:, :8].copy().view("<u8").ravel()
    _, first = np.unique(keys, return_index=True)
    mask = np.ones(len(keys), dtype=bool)
    mask[first] = False
    return mask
