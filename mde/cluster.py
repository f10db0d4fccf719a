"""A Dask cluster for the work one machine cannot do alone (the ``dask`` extra).

:func:`dask_client` gives a ``distributed.Client``: to a running scheduler at ``address``, or
to a ``LocalCluster`` on loopback that it starts and stops. Inside it, the data owner scores a
Parquet offer partition by partition (:func:`mde.data_owner.dask_scoring.score_on_dask`), and
the model owner's joblib work (retraining ground truth, calibration, sampled Shapley; their
``n_jobs``) runs on the cluster under ``joblib.parallel_config(backend="dask")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mde.errors import InputError, require

__all__ = ["dask_client"]


@contextmanager
def dask_client(
    address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1
) -> Iterator[Any]:
    """A ``distributed.Client`` for the ``with`` block.

    Parameters
    ----------
    address : str or None
        A scheduler (``tcp://host:8786``); None starts a ``LocalCluster`` of ``n_workers``
        processes on 127.0.0.1 (everything on loopback), closed when the block ends.
    n_workers, threads_per_worker : int
        The local cluster's size (ignored with ``address``).

    Raises
    ------
    InputError
        If the scheduler cannot be reached.
    MissingDependencyError
        Without ``dask[distributed]`` (``pip install 'mde[dask]'``).
    """
    distributed = require("distributed", extra="dask")
    if address is not None:
        try:
            client = distributed.Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    if n_workers < 1 or threads_per_worker < 1:
        raise InputError("a local Dask cluster needs at least one worker and one thread.")
    with (
        distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback only, any free port
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
