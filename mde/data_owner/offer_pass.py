"""Data owner: combine an offer's batches, in order, into what is sealed and recorded.

Batches (or a cluster's partitions) arrive in the offer's order with their leaves, digests,
sketch cells and psi. :class:`OfferPass` extends the commitment and the fingerprint, applies
the repeat rule across the whole offer (:class:`~mde.proxies.repeats.RepeatTracker`), zeroes
what scores nothing, clips for DP, and sums exactly (:class:`~mde.numerics.ExactSum`), so
the total is bit-identical however the offer was batched or partitioned. Memory: about 8
bytes per record and key stream for the repeat rule, nothing per record otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mde.numerics import ExactSum
from mde.proxies.membership import MembershipSketch
from mde.proxies.repeats import RepeatTracker
from mde.wire.commitment import Committer, Fingerprint

__all__ = ["OfferPass", "OfferSummary", "RecordSealer", "scored_values"]


def scored_values(
    psi: np.ndarray, zero: np.ndarray, clip: float | None, per_record: bool
) -> ExactSum | np.ndarray:
    """What a batch contributes once its zero mask is known: its exact float32 sum, or its
    rows (float64) for a per-record score. ``clip`` scales rows to that L2 norm (DP)."""
    psi = psi.copy()
    psi[zero] = 0.0
    if clip is not None:
        norms = np.linalg.norm(psi.astype(np.float64), axis=1, keepdims=True)
        psi = (psi * (clip / np.maximum(norms, clip))).astype(np.float32)
    if per_record:
        return psi.astype(np.float64)
    total = ExactSum(psi.shape[1])
    total.add(psi)
    return total


@dataclass(frozen=True)
class OfferSummary:
    """What the data owner's last pass sealed, for its own eyes (never sent): the records
    scored, how many scored zero (repeats, known or outlying), the plaintext psi total
    (exact, before DP noise) and the commitment."""

    n_records: int
    n_zero: int
    psi_total: np.ndarray
    commitment: str


class RecordSealer:
    """Per-record rows sealed as they arrive, ``group`` rows (whole ciphertexts) at a time.

    Parameters
    ----------
    seal : callable
        Seals a ``(k, psi_dim)`` block of rows into ciphertexts (``k`` a multiple of the
        layout's records per ciphertext, except for the last call).
    group : int
        Rows sealed per call.
    noise_std : float or None
        Gaussian noise added to each row first (DP), None for none.
    """

    def __init__(
        self, seal: Callable[[np.ndarray], list[bytes]], group: int, noise_std: float | None
    ) -> None:
        self.seal, self.group, self.noise_std = seal, group, noise_std
        self.ciphertexts: list[bytes] = []
        self.noised_sum: np.ndarray | None = None
        self._buffer: list[np.ndarray] = []
        self._held = 0
        self._rng = np.random.default_rng()  # DP noise is fresh, never a caller's seed

    def add(self, rows: np.ndarray) -> None:
        if self.noise_std is not None:
            rows = rows + self._rng.normal(0.0, self.noise_std, rows.shape)
        s = rows.sum(axis=0)
        self.noised_sum = s if self.noised_sum is None else self.noised_sum + s
        self._buffer.append(rows)
        self._held += len(rows)
        if self._held >= self.group:
            block = np.concatenate(self._buffer)
            cut = len(block) - len(block) % self.group
            self.ciphertexts += self.seal(block[:cut])
            self._buffer, self._held = [block[cut:]], len(block) - cut

    def finish(self) -> list[bytes]:
        """Seal the rows still held; return every ciphertext, in the offer's order."""
        if self._held:
            self.ciphertexts += self.seal(np.concatenate(self._buffer))
        self._buffer, self._held = [], 0
        return self.ciphertexts


class OfferPass:
    """The ordered combination of an offer's batches.

    Parameters
    ----------
    n_features, psi_dim : int
    seed : bytes
        The commitment's salt seed.
    sketch : MembershipSketch or None
    clip : float or None
        The DP clip bound (None without DP).
    per_record : bool
        Keep each record's values (passed to ``on_rows``) instead of the total.
    sealer : RecordSealer or None
        Receives each batch's per-record rows, in order, and seals them as they come.
    """

    def __init__(
        self,
        n_features: int,
        psi_dim: int,
        seed: bytes,
        sketch: MembershipSketch | None,
        clip: float | None = None,
        per_record: bool = False,
        sealer: RecordSealer | None = None,
    ) -> None:
        self.committer = Committer(n_features, seed)
        self.fingerprint = Fingerprint(n_features)
        self.tracker = RepeatTracker(sketch)
        self.total = ExactSum(psi_dim)
        self.seed = seed
        self.clip, self.per_record, self.sealer = clip, per_record, sealer
        self.n_records = 0
        self.n_zero = 0

    def screen(
        self,
        leaves: np.ndarray | None,
        digests: np.ndarray,
        cells: np.ndarray | None,
        excluded: np.ndarray,
    ) -> np.ndarray:
        """Take the next batch's hashes and screens; return its mask of records that score
        zero (repeats of an earlier record of the offer, known or outlying records).
        ``leaves`` None: the batch was already added to ``committer`` (by its own thread)."""
        if leaves is not None:
            self.committer.add_leaves(leaves)
        self.fingerprint.add_digests(digests)
        zero = self.tracker.update(digests, cells) | excluded
        self.n_records += len(zero)
        self.n_zero += int(zero.sum())
        return zero

    def add_values(self, values: ExactSum | np.ndarray) -> None:
        """Take the batch's :func:`scored_values`, in order."""
        if isinstance(values, ExactSum):
            self.total.merge(values)
            return
        if self.per_record:
            self.total.add(values.astype(np.float32))  # the rows are float32 values
        if self.sealer is not None:
            self.sealer.add(values)

    def add(
        self,
        leaves: np.ndarray | None,
        digests: np.ndarray,
        cells: np.ndarray | None,
        excluded: np.ndarray,
        psi: np.ndarray,
    ) -> None:
        """Both steps for a batch computed in this process."""
        zero = self.screen(leaves, digests, cells, excluded)
        self.add_values(scored_values(psi, zero, self.clip, self.per_record))
