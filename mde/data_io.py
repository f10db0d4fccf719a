"""Read labelled data sets for the command line: ``.npz`` (arrays X, y), ``.csv`` or Parquet."""

from __future__ import annotations

import csv
import os

import numpy as np

from mde.errors import InputError
from mde.offers import is_parquet_path

__all__ = ["read_dataset", "write_npz"]


def _label_array(values: list[str]) -> np.ndarray:
    """Numeric labels when every value parses as a number (integers when all are whole)."""
    try:
        nums = np.array([float(v) for v in values])
    except ValueError:
        return np.array([v.strip() for v in values])
    if np.all(np.isfinite(nums)) and np.all(nums == np.round(nums)):
        return nums.astype(np.int64)
    return nums


def read_dataset(
    path: str | os.PathLike[str], label_column: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(X, y)`` from ``.npz`` (keys ``X`` and ``y``) or ``.csv`` (header row; labels in
    ``label_column``, default ``label`` if present, else the last column)."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"data file {p!r} does not exist.")
    if p.endswith(".npz"):
        try:
            with np.load(p, allow_pickle=False) as data:
                if "X" not in data or "y" not in data:
                    raise InputError(
                        f"{p!r} must hold arrays named 'X' and 'y'; it has {list(data.keys())}."
                    )
                return data["X"], data["y"]
        except InputError:
            raise
        except MemoryError as exc:  # a header (maybe crafted) announces more than fits
            raise InputError(
                f"{p!r} holds arrays too large to load ({exc}); if the file is genuine, split "
                "the data set into smaller files."
            ) from exc
        except Exception as exc:  # numpy/zipfile raise many kinds; object arrays need pickle
            raise InputError(
                f"{p!r} cannot be read as plain numeric arrays (no pickle): {exc}"
            ) from exc
    if p.endswith(".csv"):
        try:
            with open(p, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
        except (UnicodeDecodeError, csv.Error, OSError) as exc:
            raise InputError(f"{p!r} is not a readable UTF-8 CSV file: {exc}") from exc
        if len(rows) < 2:
            raise InputError(
                f"{p!r} has no data rows (a header row and at least one record are needed)."
            )
        header, body = rows[0], [r for r in rows[1:] if r]
        short = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
        if short:
            raise InputError(
                f"{p!r} line {short[0]} has a different number of fields than the header."
            )
        col = label_column or ("label" if "label" in header else header[-1])
        if col not in header:
            raise InputError(
                f"label column {col!r} is not in {p!r}'s header {header}; pass --label-column."
            )
        j = header.index(col)
        try:
            X = np.array(
                [[float(v) for i, v in enumerate(r) if i != j] for r in body], dtype=np.float64
            )
        except ValueError as exc:
            raise InputError(f"{p!r} has a non-numeric feature value: {exc}") from exc
        return X, _label_array([r[j] for r in body])
    if is_parquet_path(p):  # read whole (scoring streams it; see mde.offers)
        from mde.offers.parquet import ParquetOffer

        offer = ParquetOffer(p, label_column or "label")
        parts = list(offer.batches(1 << 16, len(offer.feature_columns)))
        return np.concatenate([b.X for b in parts]), np.concatenate([b.y for b in parts])
    raise InputError(f"unsupported data file {p!r}: use .npz (arrays X and y), .csv or Parquet.")


def write_npz(path: str | os.PathLike[str], X: np.ndarray, y: np.ndarray) -> None:
    np.savez(path, X=X, y=y)
