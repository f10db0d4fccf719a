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
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mde.errors import InputError, require
from mde.validation import check_matrix, feature_names_of

__all__ = [
    "RecordBatch",
    "offer_batches",
    "ParquetOffer",
    "is_parquet_path",
    "read_partition",
    "clear_reader_cache",
]


@dataclass(frozen=True)
class RecordBatch:
    """One batch of an offer: ``X`` float32 or float64 ``(n, d)`` (finiteness is the
    scorer's check, on the float32 records), raw labels ``y`` ``(n,)``, ``start`` the index
    of its first record in the offer."""

    start: int
    X: np.ndarray
    y: np.ndarray


def is_parquet_path(path: Any) -> bool:
    """Whether ``path`` names a Parquet file or a directory (of Parquet files)."""
    if not isinstance(path, str | os.PathLike):
        return False
    p = os.fspath(path)
    return p.endswith((".parquet", ".pq")) or os.path.isdir(p)


def _check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int | np.integer) or isinstance(batch_size, bool):
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")
    if batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")
    return int(batch_size)


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
    size = _check_batch_size(batch_size)
    if is_parquet_path(X):
        if y is not None:
            raise InputError("a Parquet offer holds its labels; pass y=None and label_column.")
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


class ParquetOffer:
    """A Parquet file or directory read as an offer (``pyarrow.dataset``).

    Parameters
    ----------
    path : str or path-like
    label_column : str
        The column holding the labels.
    feature_names : list of str or None
        The artifact's feature names: these columns are read, in this order (a missing one
        is named). None: every other column, in the file's order.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        label_column: str = "label",
        feature_names: list[str] | None = None,
    ) -> None:
        pads = require("pyarrow.dataset", extra="parquet")
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise InputError(f"Parquet offer {self.path!r} does not exist.")
        try:
            dataset = pads.dataset(self.path, format="parquet")
            schema, self.files = dataset.schema, list(dataset.files)
        except Exception as exc:  # pyarrow raises ArrowInvalid and OSError on damaged files
            raise InputError(f"{self.path!r} cannot be read as a Parquet dataset: {exc}") from exc
        cols = list(schema.names)
        if label_column not in cols:
            raise InputError(
                f"label column {label_column!r} is not in {self.path!r} (columns {cols[:8]}...); "
                "pass label_column (--label-column)."
            )
        feats = [c for c in cols if c != label_column] if feature_names is None else feature_names
        missing = [c for c in feats if c not in cols]
        if missing:
            raise InputError(
                f"{self.path!r} lacks the artifact's feature columns {missing[:5]}; name the "
                "columns as the model owner's features."
            )
        self.label_column, self.feature_columns = label_column, list(feats)

    @property
    def n_records(self) -> int:
        """Rows in the dataset (from the Parquet metadata)."""
        return sum(n for _, _, n in self.fragments())

    def fragments(self) -> list[tuple[str, int, int]]:
        """``(file, row_group, n_rows)`` of every row group, in the dataset's order: the
        partitions a cluster scores."""
        pq = require("pyarrow.parquet", extra="parquet")
        out: list[tuple[str, int, int]] = []
        for file in self.files:  # each footer is parsed, read and dropped (it can be large)
            try:
                meta = pq.read_metadata(file)
            except Exception as exc:  # pyarrow raises ArrowInvalid and OSError on damaged files
                raise InputError(f"{file!r} has a damaged Parquet footer: {exc}") from exc
            out += [(file, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
        return out

    def check_width(self, n_features: int) -> None:
        """Refuse a dataset with another number of feature columns than the artifact's."""
        if len(self.feature_columns) != n_features:
            raise InputError(
                f"{self.path!r} has {len(self.feature_columns)} feature columns but the artifact "
                f"expects {n_features}."
            )

    def batches(self, batch_size: int, n_features: int) -> Iterator[RecordBatch]:
        """The dataset's record batches (of at most ``batch_size`` records), in order."""
        self.check_width(n_features)
        start = 0
        try:
            for file, row_group, n in self.fragments():
                if n:
                    yield from read_partition(
                        self.path,
                        file,
                        row_group,
                        self.feature_columns,
                        self.label_column,
                        start,
                        batch_size,
                    )
                start += n
        finally:
            clear_reader_cache()
        if start == 0:
            raise InputError(f"{self.path!r} has no records; there is nothing to score.")


def read_partition(
    path: str,
    file: str,
    row_group: int,
    feature_columns: list[str],
    label_column: str,
    start: int,
    batch_size: int,
) -> Iterator[RecordBatch]:
    """The record batches of one row group of a Parquet offer (what a cluster worker reads),
    numbered from ``start``, the index of its first record in the offer. The row group is
    read whole (memory: about one row group; write offers with row groups of at most about
    100,000 records), then cut into batches."""
    try:
        reader = _open(file)
        n = reader.metadata.row_group(row_group).num_rows
        X: np.ndarray | None = None
        # a few columns at a time: Arrow's decoding buffers stay a fraction of the row group
        for j in range(0, len(feature_columns), _COLUMNS_PER_READ):
            names = feature_columns[j : j + _COLUMNS_PER_READ]
            part = reader.read_row_group(row_group, columns=names, use_threads=False)
            block = _arrow_features(path, part, names, start)
            if X is None:
                X = np.empty((n, len(feature_columns)), dtype=block.dtype)
            X[:, j : j + len(names)] = block
            del part, block
        label = reader.read_row_group(row_group, columns=[label_column], use_threads=False)
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid and OSError on damaged files
        raise InputError(f"{file!r} row group {row_group} cannot be read: {exc}") from exc
    y = _arrow_labels(path, label, 0, start)
    assert X is not None and len(y) == n  # a row group has at least one feature column
    for i in range(0, n, batch_size):
        yield RecordBatch(start + i, X[i : i + batch_size], y[i : i + batch_size])


_COLUMNS_PER_READ = 128
_OPEN = threading.local()


def _open(file: str) -> Any:
    """This thread's reader of ``file``: the footer is parsed once per file, not once per row
    group (a footer of 400 row groups x 785 columns takes 0.5 s and about 300 MB)."""
    cached = getattr(_OPEN, "reader", None)
    if cached is None or cached[0] != file:
        pq = require("pyarrow.parquet", extra="parquet")
        _OPEN.reader = None  # drop the previous file's footer first
        _OPEN.reader = (file, pq.ParquetFile(file, pre_buffer=False))
    return _OPEN.reader[1]


def clear_reader_cache() -> None:
    """Drop this thread's open Parquet reader (and its footer)."""
    _OPEN.reader = None


def _first_null(col: Any) -> int:
    return int(np.flatnonzero(np.asarray(col.is_null()))[0])


def _arrow_features(path: str, table: Any, names: list[str], start: int) -> np.ndarray:
    pa = require("pyarrow", extra="parquet")
    cols = [table.column(j) for j in range(len(names))]
    for name, col in zip(names, cols):
        if col.null_count:
            raise InputError(
                f"{path!r} has an empty value at record {start + _first_null(col)}, column "
                f"{name!r}; impute or drop it before scoring."
            )
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise InputError(
                f"{path!r} column {name!r} is not numeric ({col.type}); encode it as numbers."
            )
    if all(c.type == cols[0].type and pa.types.is_floating(c.type) for c in cols):
        # one row-major copy from Arrow's columns (floats: exact as float32 or float64)
        chunked = pa.Table.from_arrays(cols, names=[str(j) for j in range(len(cols))])
        batch = chunked.combine_chunks().to_batches()
        if len(batch) == 1:
            return np.asarray(batch[0].to_tensor(row_major=True))
    X = np.empty((table.num_rows, len(names)), dtype=np.float64)
    for j, col in enumerate(cols):  # mixed or integer columns, one at a time (exact to float64)
        X[:, j] = col.to_numpy()
    return X


def _arrow_labels(path: str, table: Any, j: int, start: int) -> np.ndarray:
    col = table.column(j)
    if col.null_count:
        raise InputError(f"{path!r} has no label at record {start + _first_null(col)}.")
    return np.asarray(col.to_numpy())
