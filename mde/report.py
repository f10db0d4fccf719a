"""What the model owner learns from a sealed score: the :class:`EfficacyReport`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
        Sum of the record scores, in :data:`EFFICACY_UNITS`.
    n_records : int
    record_scores : list of float or None
        Per-record scores (in record order) if the data owner sealed them per record.
    artifact_id : str
    commitment : str
        SHA-256 commitment to the scored records (checked on delivery).
    proxy_kind : str
    """

    model_config = ConfigDict(frozen=True)

    efficacy: float
    n_records: int = Field(ge=1)
    record_scores: list[float] | None = None
    artifact_id: str
    commitment: str
    proxy_kind: str
    units: str = EFFICACY_UNITS
