"""Parquet offers: a file or directory read row group by row group (``pyarrow``, the
``parquet`` extra), one footer parse per file; what :func:`mde.offers.offer_batches` and a
cluster's workers (:mod:`mde.data_owner.dask_scoring`) read."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from mde.errors import InputError, require
from mde.offers.batch import RecordBatch

__all__ = ["ParquetOffer", "read_partition", "clear_reader_cache"]


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
                X = np.empty((n, len(feature_columns)), dtype=_dtype_of(reader, feature_columns))
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


def _dtype_of(reader: Any, names: list[str]) -> Any:
    """float32 when every feature column is float32 (exact), else float64 (exact for float16,
    float32, float64 and integers up to 2**53): never the narrower type of one block."""
    pa = require("pyarrow", extra="parquet")
    schema = reader.schema_arrow
    kinds = {schema.field(n).type for n in names}
    return np.float32 if kinds == {pa.float32()} else np.float64


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
