"""What the model owner learns from a sealed score: the :class:`EfficacyReport`."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mde.errors import InputError

__all__ = ["EfficacyReport", "EFFICACY_UNITS"]

EFFICACY_UNITS = (
    "predicted reduction of the model owner's mean test log-loss (nats) of the proxy if the "
    "records were added to its training set; positive = useful"
)


class EfficacyReport(BaseModel):
    """The opened score of one data set against one artifact.

    Attributes
    ----------
    efficacy : float
        Sum of the record scores, in :data:`EFFICACY_UNITS` (for an ``order=2`` proxy,
        :func:`mde.proxies.second_order.second_order_efficacy` of ``first_order`` and
        ``pairwise``, not a sum).
    n_records : int
    record_scores : list of float or None
        Per-record scores (in record order) if the data owner sealed them per record
        (first-order contributions; they sum to ``first_order`` for an ``order=2`` proxy).
    record_noise : float or None
        Standard deviation of the sealing (flooding) noise on each record score, when the
        report has them: a record scored zero (a copy, a known record) opens as +-this.
    first_order, pairwise : float or None
        For an ``order=2`` proxy: ``<w, sum psi>`` and ``(sum psi)^T Q (sum psi)``.
    dp_noise : float or None
        If the data owner answered with differential privacy: the standard deviation of its
        Gaussian noise on the efficacy (and on each record score), in efficacy units;
        ``dp_clip`` is the L2 bound it clipped each record's psi to.
    artifact_id : str
    commitment : str
        Salted Merkle commitment to the scored records (checked on delivery).
    seller : str or None
        The data owner's Ed25519 public key (hex) that signed the score.
    proxy_kind : str
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["mde-report"] = "mde-report"
    format_version: Literal[2] = 2
    efficacy: float
    n_records: int = Field(ge=1)
    record_scores: list[float] | None = None
    record_noise: float | None = Field(default=None, ge=0.0)
    first_order: float | None = None
    pairwise: float | None = None
    dp_noise: float | None = Field(default=None, ge=0.0)
    dp_clip: float | None = Field(default=None, gt=0.0)
    artifact_id: str
    commitment: str
    seller: str | None = None
    proxy_kind: str
    units: str = EFFICACY_UNITS

    @classmethod
    def from_json(cls, data: str | bytes) -> EfficacyReport:
        """Read a report written by ``report.model_dump_json()``.

        Raises
        ------
        InputError
            If ``data`` is not a valid report of this format version.
        """
        try:
            return cls.model_validate_json(data)
        except (ValidationError, ValueError, RecursionError) as exc:
            raise InputError(
                f"not a valid MDE efficacy report (format mde-report version 2): {exc}. Open "
                "the sealed score again to get a fresh report."
            ) from exc

    @model_validator(mode="after")
    def _consistent(self) -> EfficacyReport:
        if not math.isfinite(self.efficacy):
            raise ValueError("efficacy must be finite")
        if (self.first_order is None) != (self.pairwise is None):
            raise ValueError(
                "first_order and pairwise come together (order-2 proxies) or not at all"
            )
        if (
            self.pairwise is not None
            and self.first_order is not None
            and not (math.isfinite(self.pairwise) and math.isfinite(self.first_order))
        ):
            raise ValueError("first_order and pairwise must be finite")
        if self.record_scores is not None:
            if len(self.record_scores) != self.n_records:
                raise ValueError(
                    f"{len(self.record_scores)} record scores for {self.n_records} records"
                )
            if not all(math.isfinite(s) for s in self.record_scores):
                raise ValueError("record scores must be finite")
        return self
