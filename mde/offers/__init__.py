"""Offers as streams of record batches: arrays, memory maps, iterables and Parquet datasets.

Scoring reads an offer one batch at a time, so memory stays bounded by the batch size, never
by the offer. :func:`offer_batches` accepts

- ``(X, y)`` arrays or data frames, including ``numpy.memmap`` and ``np.load(...,
  mmap_mode="r")`` arrays (sliced, never copied whole);
- an iterable of ``(X_batch, y_batch)`` pairs, with ``y=None``;
- a path to a ``.npy`` features file (memory-mapped) with ``y`` an array or ``.npy`` path;
- a path to a Parquet file or a directory of Parquet files (``pyarrow``, the ``parquet``
  extra): one numeric column per feature and a label column (``label_column``).

Every batch is checked as it is read (width, numeric, labels); the error names the record.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from mde.errors import InputError
from mde.offers.batch import RecordBatch
from mde.validation import check_matrix, check_number, feature_names_of

__all__ = ["RecordBatch", "offer_batches", "is_parquet_path"]


def is_parquet_path(path: Any) -> bool:
    """Whether ``path`` names a Parquet file or a directory (of Parquet files)."""
    if not isinstance(path, str | os.PathLike):
        return False
    p = os.fspath(path)
    return p.endswith((".parquet", ".pq")) or os.path.isdir(p)


def offer_batches(
    X: Any,
    y: Any = None,
    *,
    n_features: int,
    batch_size: int = 4096,
    feature_names: list[str] | None = None,
    label_column: str = "label",
) -> Iterator[RecordBatch]:
    """The offer's records in order, ``batch_size`` at a time (see the module for sources).

    Raises
    ------
    InputError
        If a source or a batch is malformed (the message names the record or column).
    """
    size = check_number("batch_size", batch_size, integer=True, low=1)
    if is_parquet_path(X):
        if y is not None:
            raise InputError("a Parquet offer holds its labels; pass y=None and label_column.")
        from mde.offers.parquet import ParquetOffer

        yield from ParquetOffer(X, label_column, feature_names).batches(size, n_features)
        return
    if isinstance(X, str | os.PathLike):
        X = _load_npy(X, "features")
        if isinstance(y, str | os.PathLike):
            y = _load_npy(y, "labels")
    if y is None:
        if isinstance(X, np.ndarray) or feature_names_of(X) is not None:
            raise InputError("labels are missing: pass y, or an iterable of (X, y) batches.")
        yield from _iterable_batches(X, n_features, feature_names)
        return
    yield from _array_batches(X, y, size, n_features, feature_names)


def _load_npy(path: str | os.PathLike[str], what: str) -> np.ndarray:
    p = os.fspath(path)
    if not p.endswith(".npy"):
        raise InputError(f"{what} file {p!r}: use a .npy file, a Parquet file or directory.")
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{what} file {p!r} cannot be memory-mapped as a plain array: {exc}"
        ) from exc


def _array_batches(
    X: Any, y: Any, size: int, n_features: int, names: list[str] | None
) -> Iterator[RecordBatch]:
    frame = feature_names_of(X) is not None
    if not frame and not hasattr(X, "shape"):
        X = np.asarray(X)  # lists: already in memory
    Xs = X.to_numpy() if frame and hasattr(X, "to_numpy") else X
    if frame:
        check_matrix(X.iloc[:1] if hasattr(X, "iloc") else X, n_features, feature_names=names)
    if getattr(Xs, "ndim", 2) != 2:
        check_matrix(Xs, n_features, finite=False)  # raises, naming the shape
    ya = np.asarray(y)
    if ya.ndim == 2 and ya.shape[1] == 1:
        ya = ya.ravel()
    n = len(Xs)
    if ya.ndim != 1 or len(ya) != n:
        raise InputError(f"X has {n} records but y has shape {ya.shape}; they must match.")
    if n == 0:
        raise InputError("X is empty (0 records); there is nothing to score or price.")
    for i in range(0, n, size):
        yield RecordBatch(i, _records(Xs[i : i + size], n_features), ya[i : i + size])


def _records(xb: Any, n_features: int) -> np.ndarray:
    """A batch's features: float arrays as they are (the scorer rounds them to float32 once),
    anything else through :func:`~mde.validation.check_matrix` (float64)."""
    if (
        isinstance(xb, np.ndarray)
        and xb.dtype in (np.float32, np.float64)
        and xb.ndim == 2
        and xb.shape[1] == n_features
        and xb.shape[0] > 0
    ):
        return np.asarray(xb)  # a memory map's slice is read here, batch by batch
    return check_matrix(xb, n_features, finite=False)


def _iterable_batches(
    batches: Any, n_features: int, names: list[str] | None
) -> Iterator[RecordBatch]:
    if not isinstance(batches, Iterable):
        raise InputError(
            f"X must be an array, a Parquet path or an iterable of (X, y) batches; got "
            f"{type(batches).__name__}."
        )
    start = 0
    for k, pair in enumerate(batches):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InputError(f"batch {k} is not an (X, y) pair.")
        xb = check_matrix(
            pair[0], n_features, name=f"batch {k}'s X", finite=False, feature_names=names
        )
        yb = np.asarray(pair[1])
        if yb.ndim == 2 and yb.shape[1] == 1:
            yb = yb.ravel()
        if yb.shape != (len(xb),):
            raise InputError(f"batch {k} has {len(xb)} records but labels of shape {yb.shape}.")
        yield RecordBatch(start, xb, yb)
        start += len(xb)
    if start == 0:
        raise InputError("the offer has no batches (0 records); there is nothing to score.")
