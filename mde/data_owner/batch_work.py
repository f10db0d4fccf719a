"""Data owner: the work on one batch of an offer, the same in a process or on a cluster worker.

:class:`PsiEngine` runs the admitted psi graph and the membership sketch's screens on a batch;
:func:`hash_batch` makes the batch's commitment leaves and record digests. Neither depends on
the batches before: a cluster runs them partition by partition, and
:class:`~mde.data_owner.offer_pass.OfferPass` combines the results in the offer's order.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mde.data_owner.offer_pass import OfferPass
from mde.errors import ArtifactError, require
from mde.offers import RecordBatch
from mde.proxies.membership import MembershipSketch
from mde.validation import check_finite, encode_labels, record_digests
from mde.wire.commitment import batch_leaves

__all__ = ["PsiEngine", "check_batch", "hash_batch", "engine_for", "prefetch", "run_local"]


class PsiEngine:
    """The artifact's psi graph (onnxruntime, one thread) and membership sketch.

    Parameters
    ----------
    psi_onnx : bytes
        The admitted psi graph (inputs X float32, y int64; output psi).
    sketch : bytes or None
        The artifact's ``known.npz`` member.
    n_features, psi_dim : int
        From the manifest.
    """

    def __init__(self, psi_onnx: bytes, sketch: bytes | None, n_features: int, psi_dim: int):
        ort = require("onnxruntime")
        self.psi_dim = psi_dim
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # one compute thread: the other core hashes the commitment in parallel (measured
            # faster on 2 cores than two onnxruntime threads competing with the hasher)
            opts.intra_op_num_threads = 1
            self._session = ort.InferenceSession(psi_onnx, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types on crafted graphs
            raise ArtifactError(
                f"artifact's psi graph cannot be loaded by onnxruntime: {exc}"
            ) from exc
        names = sorted(i.name for i in self._session.get_inputs())
        if names != ["X", "y"] or "psi" not in [o.name for o in self._session.get_outputs()]:
            raise ArtifactError(
                f"artifact's psi graph has inputs {names}; expected X and y with output psi."
            )
        self.sketch = None if sketch is None else MembershipSketch.from_bytes(sketch, n_features)

    def psi(self, X32: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """Float32 efficacy features ``(n, psi_dim)`` of a float32 batch."""
        out = self._session.run(
            ["psi"], {"X": X32, "y": np.ascontiguousarray(y_idx, dtype=np.int64)}
        )[0]
        if out.shape != (X32.shape[0], self.psi_dim) or out.dtype != np.float32:
            raise ArtifactError(
                f"psi graph returned {out.dtype} {out.shape}; manifest says float32 "
                f"(n, {self.psi_dim})."
            )
        return out

    def run(
        self, X32: np.ndarray, y_idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(psi, cells, excluded)`` of a batch: the features, the sketch's cell hashes
        (None without a sketch) and the mask of records known to it or outside the training
        support (all False without a sketch)."""
        psi = self.psi(X32, y_idx)
        if self.sketch is None:
            return psi, None, np.zeros(X32.shape[0], dtype=bool)
        cells, excluded = self.sketch.screen(X32, y_idx)
        return psi, cells, excluded


def check_batch(batch: RecordBatch, classes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A batch as scored: C-contiguous float32 records (finite; the error names the record)
    and int64 class indices."""
    xb = np.ascontiguousarray(batch.X, dtype=np.float32)
    check_finite(xb, offset=batch.start)
    return xb, encode_labels(batch.y, classes, xb.shape[0])


def hash_batch(
    X32: np.ndarray, y_idx: np.ndarray, seed: bytes, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(leaves, digests)``: the commitment's leaf hashes of records ``start, ...`` and
    their unsalted record digests."""
    return batch_leaves(X32, y_idx, seed, start), record_digests(X32, y_idx)


_ENGINES: dict[str, PsiEngine] = {}
_LOCK = threading.Lock()


def engine_for(psi_onnx: bytes, sketch: bytes | None, n_features: int, psi_dim: int) -> PsiEngine:
    """A worker's cached engine for an artifact (built once per process and artifact)."""
    key = hashlib.sha256(psi_onnx + (sketch or b"") + f"{n_features}:{psi_dim}".encode())
    with _LOCK:
        engine = _ENGINES.get(key.hexdigest())
        if engine is None:
            engine = _ENGINES[key.hexdigest()] = PsiEngine(psi_onnx, sketch, n_features, psi_dim)
        return engine


_DONE = object()


def prefetch(batches: Iterator[RecordBatch], depth: int = 4) -> Iterator[RecordBatch]:
    """The same batches, read ahead on a worker thread (Parquet decoding and memory-map reads
    release the GIL): reading overlaps with scoring. At most ``depth`` batches wait; a
    reader's error is raised here, in order; stopping early stops the reader."""
    import queue

    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        box.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            box.put(exc)

    reader = threading.Thread(target=read, name="mde-offer-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                box.get_nowait()
            except queue.Empty:
                reader.join(0.05)


def run_local(
    engine: PsiEngine,
    check: Callable[[RecordBatch], tuple[np.ndarray, np.ndarray]],
    batches: Iterator[RecordBatch],
    passer: OfferPass,
    progress: bool = False,
) -> Iterator[int]:
    """Run an offer's batches in this process into ``passer``: the commitment (salts, leaves
    and Merkle tree, in order) on one worker thread and the record digests on another
    (hashlib releases the GIL) while onnxruntime and the sketch run on this one, one batch
    ahead. ``check`` turns a batch into float32 records and class indices. Yields the number
    of records combined so far."""
    if progress:
        from tqdm.auto import tqdm

        batches = iter(tqdm(batches, desc="scoring", unit="batch"))
    batches = prefetch(batches)
    pending: deque[tuple[Any, ...]] = deque()

    def combine() -> int:
        committed, digests, psi, cells, excluded = pending.popleft()
        committed.result()  # re-raises a hashing error
        passer.add(None, digests.result(), cells, excluded, psi)
        return passer.n_records

    with ThreadPoolExecutor(max_workers=1) as tree, ThreadPoolExecutor(max_workers=1) as pool:
        for batch in batches:
            xb, yb = check(batch)
            committed = tree.submit(passer.committer.update, xb, yb)  # one thread: in order
            digests = pool.submit(record_digests, xb, yb)
            pending.append((committed, digests, *engine.run(xb, yb)))
            while len(pending) > 1:
                yield combine()
        while pending:
            yield combine()
