"""The ``mde score`` offer: read it as its file says (streamed where it can be) and score it."""

from __future__ import annotations

import argparse
from typing import Any

from mde.errors import InputError

__all__ = ["score_offer"]


def score_offer(scorer: Any, a: argparse.Namespace, read_dataset: Any) -> Any:
    """Score ``--data`` with ``scorer``: Parquet and ``.npy`` offers streamed in batches
    (on a Dask cluster with ``--engine dask``), ``.npz`` and ``.csv`` read whole."""
    from mde.offers import is_parquet_path

    label = a.label_column or "label"
    opts = {"per_record": a.per_record, "batch_size": a.batch_size}
    if a.engine == "dask":
        from mde.cluster import dask_client
        from mde.data_owner.dask_scoring import score_on_dask

        if not is_parquet_path(a.data):
            raise InputError("--engine dask scores a Parquet offer: convert --data to Parquet.")
        with dask_client(a.scheduler, n_workers=a.workers) as client:
            return score_on_dask(scorer, a.data, client, label_column=label, **opts)
    if is_parquet_path(a.data) or a.data.endswith(".npy"):
        return scorer.score(a.data, a.labels, label_column=label, progress=not a.quiet, **opts)
    X, y = read_dataset(a.data, a.label_column)
    return scorer.score(X, y, progress=not a.quiet, **opts)
