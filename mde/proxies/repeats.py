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
    stop growing at ``max_run`` keys, which bounds a merge's transient memory. A bitmap of
    the keys' top bits (half a byte per key) answers most queries for a fresh key without
    searching the runs; a set bit is confirmed in the runs, so answers are exact."""

    def __init__(self, max_run: int = 1 << 23) -> None:
        self.max_run = max_run
        self._runs: list[np.ndarray] = []
        self._n = 0
        self._bits = 0  # log2 of the bitmap's length in bits
        self._bitmap = np.zeros(0, dtype=np.uint8)

    def __len__(self) -> int:
        return self._n

    def _maybe_seen(self, keys: np.ndarray) -> np.ndarray:
        if not self._bits:
            return np.zeros(len(keys), dtype=bool)
        idx = keys >> np.uint64(64 - self._bits)
        byte = self._bitmap[(idx >> np.uint64(3)).astype(np.intp)]
        return ((byte >> (idx & np.uint64(7)).astype(np.uint8)) & np.uint8(1)).astype(bool)

    def _mark(self, keys: np.ndarray) -> None:
        idx = keys >> np.uint64(64 - self._bits)
        np.bitwise_or.at(
            self._bitmap,
            (idx >> np.uint64(3)).astype(np.intp),
            np.left_shift(np.uint8(1), (idx & np.uint64(7)).astype(np.uint8)),
        )

    def update(self, keys: np.ndarray) -> np.ndarray:
        """Add a batch of keys; return the mask of those equal to an earlier key (earlier
        in the batch or in any batch before)."""
        keys = np.asarray(keys, dtype=np.uint64)
        uniq, first = np.unique(keys, return_index=True)
        mask = np.ones(len(keys), dtype=bool)
        mask[first] = False
        hit = np.zeros(len(uniq), dtype=bool)
        ask = np.flatnonzero(self._maybe_seen(uniq))
        if len(ask):
            q = uniq[ask]
            found = np.zeros(len(q), dtype=bool)
            for run in self._runs:
                pos = np.minimum(np.searchsorted(run, q), len(run) - 1)
                found |= run[pos] == q
            hit[ask[found]] = True
        mask[first[hit]] = True
        fresh = uniq[~hit]
        if len(fresh):
            self._add(fresh)
        return mask

    def _add(self, fresh: np.ndarray) -> None:
        self._runs.append(fresh)
        self._n += len(fresh)
        while (
            len(self._runs) > 1
            and len(self._runs[-2]) <= 2 * len(self._runs[-1])
            and len(self._runs[-2]) + len(self._runs[-1]) <= self.max_run
        ):
            top = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), top])  # disjoint sorted runs
            merged.sort(kind="stable")  # a merge of two sorted runs: linear
            self._runs.append(merged)
        want = max(12, int(np.ceil(np.log2(4 * self._n))))  # 4 bits per key
        if want > self._bits:  # grown past the bitmap: rebuild it from every run
            self._bits = want
            self._bitmap = np.zeros(1 << (want - 3), dtype=np.uint8)
            for run in self._runs:
                self._mark(run)
        else:
            self._mark(fresh)


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
