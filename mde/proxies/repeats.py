"""Repeats inside an offer: copies and near-copies of an earlier record count zero.

Both owners apply this one rule, the data owner before sealing and the model owner when it
verifies a delivery, so copies cannot inflate a price. A record repeats an earlier one if
its :func:`~mde.validation.record_digests` key (exact copy after float32 rounding) or, with
a membership sketch, its cell and label in any of the sketch's grids (near-copy) equal an
earlier record's. With a sketch only the cells are kept: an exact copy (the same float32
record, hence the same projection) shares every cell with its original.

:class:`RepeatTracker` applies the rule to an offer streamed in batches, in about 8 bytes
per record and key stream (one, or the sketch's ``n_tables``), with the answer of one batch.
"""

from __future__ import annotations

import numpy as np

from mde.proxies.membership import MembershipSketch
from mde.validation import record_digests

__all__ = ["SeenKeys", "RepeatTracker", "offer_repeats", "digest_keys"]


def digest_keys(digests: np.ndarray) -> np.ndarray:
    """The 64-bit key (little-endian first 8 bytes) of each ``(n, 16)`` record digest."""
    return np.ascontiguousarray(digests[:, :8]).view("<u8").ravel().astype(np.uint64)


class SeenKeys:
    """The uint64 keys seen so far, as sorted runs merged like a binary counter: about 8
    bytes per distinct key and ``O(log n)`` runs, ``O(n log n)`` work over a stream. Runs
    stop growing at ``max_run`` keys, which bounds a merge's transient memory."""

    def __init__(self, max_run: int = 1 << 23) -> None:
        self.max_run = max_run
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def update(self, keys: np.ndarray) -> np.ndarray:
        """Add a batch of keys; return the mask of those equal to an earlier key (earlier
        in the batch or in any batch before)."""
        keys = np.asarray(keys, dtype=np.uint64)
        uniq, first = np.unique(keys, return_index=True)
        mask = np.ones(len(keys), dtype=bool)
        mask[first] = False
        hit = np.zeros(len(uniq), dtype=bool)
        for run in self._runs:
            pos = np.minimum(np.searchsorted(run, uniq), len(run) - 1)
            hit |= run[pos] == uniq
        mask[first[hit]] = True
        fresh = uniq[~hit]
        if len(fresh):
            self._runs.append(fresh)
        while (
            len(self._runs) > 1
            and len(self._runs[-2]) <= 2 * len(self._runs[-1])
            and len(self._runs[-2]) + len(self._runs[-1]) <= self.max_run
        ):
            top = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), top])  # disjoint runs
            merged.sort()
            self._runs.append(merged)
        return mask


class RepeatTracker:
    """Streaming form of :func:`offer_repeats`: feed an offer's batches in order.

    Parameters
    ----------
    sketch : MembershipSketch or None
        The artifact's sketch (near-copies by cell), or None (exact copies only).
    """

    def __init__(self, sketch: MembershipSketch | None) -> None:
        self.sketch = sketch
        # one set for every key stream (the exact key, or each grid's cell): keys are 64-bit
        # hashes, so a key of one stream equals one of another with probability 2**-64
        self._seen = SeenKeys()
        self._streams = 1 if sketch is None else sketch.n_tables

    def update(self, digests: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """Mask of the batch's records that repeat an earlier record of the offer.

        Parameters
        ----------
        digests : numpy.ndarray
            ``(n, 16)`` :func:`~mde.validation.record_digests` of the batch (the exact key
            when there is no sketch).
        cells : numpy.ndarray or None
            ``(n_tables, n)`` cell hashes from ``sketch.screen`` (required with a sketch).
        """
        if self.sketch is None:
            keys = digest_keys(digests)
        else:
            if cells is None or cells.shape != (self._streams, len(digests)):
                raise ValueError("a tracker with a sketch needs each batch's cell hashes")
            keys = cells.ravel()
        seen = self._seen.update(keys).reshape(self._streams, -1)
        return np.asarray(seen.any(axis=0), dtype=bool)


def offer_repeats(X: np.ndarray, y_idx: np.ndarray, sketch: MembershipSketch | None) -> np.ndarray:
    """Records of an offer that count zero as repeats of an earlier record: exact copies
    (float32) and, with a sketch, near-copies (same cell and label in any of its grids)."""
    tracker = RepeatTracker(sketch)
    cells = None if sketch is None else sketch.screen(X, y_idx)[0]
    return tracker.update(record_digests(X, y_idx), cells)
