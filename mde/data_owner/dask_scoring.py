"""Data owner: score a Parquet offer on a Dask cluster, partition by partition.

Each worker reads its row groups, runs the admitted psi graph and the sketch, and hashes
the commitment's leaves and the record digests (:mod:`mde.data_owner.batch_work`); the
client combines the partitions in the offer's order (:class:`~mde.data_owner.offer_pass.
OfferPass`): the repeat rule across the whole offer, then each partition's exact sum or its
rows, computed where the partition's psi stays. The sealed total, the commitment and the
per-record order are those of one process on the same data and seed (bit for bit).

The cluster is the data owner's own: it sees the records, the seed and the public artifact
(pickled by Dask between the data owner's machines; nothing crosses to the model owner but
the sealed score).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mde.data_owner.batch_work import check_batch, engine_for, hash_batch
from mde.data_owner.offer_pass import scored_values
from mde.data_owner.sealed import Scorer
from mde.errors import InputError
from mde.numerics import ExactSum
from mde.offers.parquet import ParquetOffer, clear_reader_cache, read_partition
from mde.validation import check_number
from mde.wire.sealed_score import SealedScore

__all__ = ["score_on_dask"]


def _screen_partition(
    members: dict[str, bytes], spec: dict[str, Any], file: str, row_group: int, start: int
) -> dict[str, Any]:
    """Worker: one row group's leaves, digests, sketch cells, exclusion mask and psi."""
    engine = engine_for(
        members["psi.onnx"], members.get("known.npz"), spec["n_features"], spec["psi_dim"]
    )
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("leaves", "digests", "cells", "ex", "psi")
    }
    for batch in read_partition(
        spec["path"], file, row_group, spec["features"], spec["label"], start, spec["batch"]
    ):
        xb, yb = check_batch(batch, spec["classes"])
        leaves, digests = hash_batch(xb, yb, spec["seed"], batch.start)
        psi, cells, excluded = engine.run(xb, yb)
        for key, value in zip(parts, (leaves, digests, cells, excluded, psi)):
            if value is not None:
                parts[key].append(value)
    return {
        "leaves": np.concatenate(parts["leaves"]),
        "digests": np.concatenate(parts["digests"]),
        "cells": np.concatenate(parts["cells"], axis=1) if parts["cells"] else None,
        "excluded": np.concatenate(parts["ex"]),
        "psi": np.concatenate(parts["psi"]),
    }


def _hashes(result: dict[str, Any]) -> tuple[Any, ...]:
    return result["leaves"], result["digests"], result["cells"], result["excluded"]


def _values(
    result: dict[str, Any], zero: np.ndarray, clip: float | None, per_record: bool
) -> ExactSum | np.ndarray:
    return scored_values(result["psi"], zero, clip, per_record)


def score_on_dask(
    scorer: Scorer,
    path: str | os.PathLike[str],
    client: Any,
    *,
    label_column: str = "label",
    per_record: bool = False,
    batch_size: int = 4096,
    seed: bytes | None = None,
    window: int = 4,
) -> SealedScore:
    """Score a Parquet offer on a Dask cluster and seal it, as :meth:`Scorer.score` would.

    Parameters
    ----------
    scorer : Scorer
        The data owner's session (:func:`mde.load_artifact`); its guard and ledger apply.
    path : str or path-like
        A Parquet file or directory; its row groups are the partitions.
    client : distributed.Client
        See :func:`mde.cluster.dask_client`.
    label_column, per_record, batch_size, seed
        As for :meth:`Scorer.score`.
    window : int
        Partitions in flight at once (bounds the workers' held psi).

    Raises
    ------
    InputError
        If the offer is malformed (the worker's message names the record and column).
    """
    batch_size = check_number("batch_size", batch_size, integer=True, low=1)
    window = check_number("window (partitions in flight)", window, integer=True, low=1)
    m = scorer.manifest
    offer = ParquetOffer(os.path.abspath(os.fspath(path)), label_column, m.feature_names)
    offer.check_width(m.n_features)
    fragments = offer.fragments()
    if not fragments or sum(n for _, _, n in fragments) == 0:
        raise InputError(f"{offer.path!r} has no records; there is nothing to score.")
    passer = scorer.begin(per_record, seed)
    spec = {
        "path": offer.path,
        "features": offer.feature_columns,
        "label": label_column,
        "classes": list(m.classes),
        "n_features": m.n_features,
        "psi_dim": m.psi_dim,
        "batch": int(batch_size),
        "seed": passer.seed,
    }
    members = client.scatter(scorer._members, broadcast=True)
    starts = np.concatenate([[0], np.cumsum([n for _, _, n in fragments])])[:-1]
    jobs = [(file, rg, int(s)) for (file, rg, n), s in zip(fragments, starts) if n]

    def submit(job: tuple[str, int, int]) -> Any:
        return client.submit(_screen_partition, members, spec, *job, pure=False)

    running = [submit(job) for job in jobs[:window]]
    try:
        _combine(client, passer, running, jobs, submit, window, per_record)
    finally:
        client.run(clear_reader_cache)  # the workers' open footers
    return scorer.finish_offer(passer)


def _combine(
    client: Any,
    passer: Any,
    running: list[Any],
    jobs: list[tuple[str, int, int]],
    submit: Any,
    window: int,
    per_record: bool,
) -> None:
    """Combine the partitions in the offer's order, keeping ``window`` in flight."""
    for k in range(len(jobs)):
        result = running[k]
        zero = passer.screen(*client.submit(_hashes, result).result())
        passer.add_values(client.submit(_values, result, zero, passer.clip, per_record).result())
        running[k] = None  # release the partition's psi on its worker
        result.release()
        if k + window < len(jobs):
            running.append(submit(jobs[k + window]))
