"""Set values from record values over the pooled records of all candidate sets (for Truncated
Monte Carlo Data Shapley, Ghorbani & Zou 2019, on the influence proxy's refit utility).

The permutation engine itself is the library's: ``mde.valuation.permutation_shapley(
owner.proxy.prefix_utility(X, y, X_test, y_test, X_train), n_permutations=...,
truncation=...)`` evaluates a chunk of consecutive prefixes at once (one Newton step of the
head on D_tr plus each prefix) and stops a permutation at the first prefix within
``truncation * |U(all)|`` of ``U(all)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["pooled_set_values"]


def pooled_set_values(
    candidates: Sequence[tuple[np.ndarray, np.ndarray]],
    record_values: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Value every candidate set by the sum of its records' values, computed once over the
    pool of distinct records of all sets (a record offered in several sets is one player).

    ``record_values(X_pool, y_pool)`` returns one value per pooled record.
    """
    index: dict[bytes, int] = {}
    members: list[np.ndarray] = []
    rows_X, rows_y = [], []
    for X, y in candidates:
        ids = []
        for x_row, y_i in zip(np.asarray(X, dtype=float), np.asarray(y)):
            key = x_row.tobytes() + np.asarray(y_i).tobytes()
            if key not in index:
                index[key] = len(rows_y)
                rows_X.append(x_row)
                rows_y.append(y_i)
            ids.append(index[key])
        members.append(np.asarray(ids, dtype=int))
    values = np.asarray(record_values(np.vstack(rows_X), np.asarray(rows_y)))
    return np.array([values[ids].sum() for ids in members])
