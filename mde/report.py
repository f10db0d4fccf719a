"""What the model owner learns from a sealed score: the :class:`EfficacyReport`."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EfficacyReport", "EFFICACY_UNITS", "second_order_efficacy", "second_order_step"]

EFFICACY_UNITS = (
    "predicted reduction of the model owner's mean test log-loss (nats) of the proxy if the "
    "records were added to its training set; positive = useful"
)


def second_order_step(n_records: int, n_train: int, data_curvature: float = 1.0) -> float:
    """Step factor ``r = n_train / (n_train + data_curvature * n_records)`` of an ``order=2``
    proxy: the added records bring curvature like D_tr's records, ``n_records`` times the
    data part of ``H`` (share ``data_curvature`` of its trace, the rest is L2), which
    shortens the step ``d = -r H^-1 s / n_train``."""
    return n_train / (n_train + data_curvature * n_records)


def second_order_efficacy(first_order: float, pairwise: float, n_records: int, n_train: int,
                          data_curvature: float = 1.0) -> float:
    """Efficacy of an ``order=2`` proxy from its two sealed quantities.

    Along the step ``d = -r H^-1 s / n_train`` (``r`` from :func:`second_order_step`) the
    test loss falls by ``r A - r^2 B / 2`` to second order, with ``A = first_order = <w, s>``
    and ``B = pairwise = s^T Q s``; that is returned.
    """
    r = second_order_step(n_records, n_train, data_curvature)
    return r * first_order - r * r * pairwise / 2.0


class EfficacyReport(BaseModel):
    """The opened score of one data set against one artifact.

    Attributes
    ----------
    efficacy : float
        Sum of the record scores, in :data:`EFFICACY_UNITS` (for an ``order=2`` proxy,
        :func:`second_order_efficacy` of ``first_order`` and ``pairwise``, not a sum).
    n_records : int
    record_scores : list of float or None
        Per-record scores (in record order) if the data owner sealed them per record
        (first-order contributions; they sum to ``first_order`` for an ``order=2`` proxy).
    first_order, pairwise : float or None
        For an ``order=2`` proxy: ``<w, sum psi>`` and ``(sum psi)^T Q (sum psi)``.
    artifact_id : str
    commitment : str
        SHA-256 commitment to the scored records (checked on delivery).
    proxy_kind : str
    """

    model_config = ConfigDict(frozen=True)

    efficacy: float
    n_records: int = Field(ge=1)
    record_scores: list[float] | None = None
    first_order: float | None = None
    pairwise: float | None = None
    artifact_id: str
    commitment: str
    proxy_kind: str
    units: str = EFFICACY_UNITS

    @model_validator(mode="after")
    def _consistent(self) -> EfficacyReport:
        if not math.isfinite(self.efficacy):
            raise ValueError("efficacy must be finite")
        if (self.first_order is None) != (self.pairwise is None):
            raise ValueError("first_order and pairwise come together (order-2 proxies) or not at all")
        if self.pairwise is not None and not (math.isfinite(self.pairwise) and math.isfinite(self.first_order)):
            raise ValueError("first_order and pairwise must be finite")
        if self.record_scores is not None:
            if len(self.record_scores) != self.n_records:
                raise ValueError(f"{len(self.record_scores)} record scores for {self.n_records} records")
            if not all(math.isfinite(s) for s in self.record_scores):
                raise ValueError("record scores must be finite")
        return self
