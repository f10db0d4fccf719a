"""The :class:`Quote` a pricing function returns, and the protocol pricing functions follow."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from mde.report import EfficacyReport

__all__ = ["Quote", "PricingFunction"]


class Quote(BaseModel):
    """A price offer for one scored data set.

    Attributes
    ----------
    price : float
        Amount offered (>= 0); 0 when not accepted.
    accepted : bool
        Whether the buyer wants (some of) the data.
    accepted_records : list of int or None
        Indices of the records bought, for per-record pricing; None means all or none.
    efficacy : float
        The report's efficacy the price is based on.
    n_records : int
    artifact_id : str
    commitment : str
        The scored records' commitment: delivery is checked against it.
    pricing : str
        Name of the pricing function.
    params : dict
        Its parameters.
    """

    model_config = ConfigDict(frozen=True)

    price: float = Field(ge=0.0)
    accepted: bool
    accepted_records: list[int] | None = None
    efficacy: float
    n_records: int
    artifact_id: str
    commitment: str
    pricing: str
    params: dict[str, Any]


@runtime_checkable
class PricingFunction(Protocol):
    """Anything with ``name``, ``params()`` and ``quote(report) -> Quote``."""

    name: str

    def params(self) -> dict[str, Any]: ...

    def quote(self, report: EfficacyReport) -> Quote: ...
