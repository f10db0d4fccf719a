"""Built-in pricing functions. Every one returns prices >= 0.

=========  ======================================================  ==============
name       rule                                                    needs scores
=========  ======================================================  ==============
binary     ``price`` for the whole set if efficacy > threshold      no
uniform    ``unit_price`` per record whose score > threshold        per record
linear     ``clip(rate * efficacy, floor, cap)``; no sale if <= 0   no
tiered     the price of the highest tier whose threshold is met     no
=========  ======================================================  ==============
"""

from __future__ import annotations

import math
from typing import Any

from mde.errors import PricingError
from mde.report import EfficacyReport
from pricing.quote import Quote

__all__ = ["BasePricing", "BinaryPricing", "UniformPricing", "LinearPricing", "TieredPricing"]


def _finite(name: str, value: float, *, nonneg: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PricingError(f"{name} must be a number; got {value!r}.") from exc
    if not math.isfinite(v):
        raise PricingError(f"{name} must be finite; got {value!r}.")
    if nonneg and v < 0:
        raise PricingError(f"{name} must be >= 0 (prices are never negative); got {v}.")
    return v


class BasePricing:
    """Helper base class: subclasses set ``name`` and implement ``params`` and ``_price``."""

    name: str = "base"

    def params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _price(self, report: EfficacyReport) -> tuple[float, bool, list[int] | None]:
        raise NotImplementedError

    def quote(self, report: EfficacyReport) -> Quote:
        """Price a report."""
        if not isinstance(report, EfficacyReport):
            raise PricingError(f"quote() takes an EfficacyReport; got {type(report).__name__}.")
        if not math.isfinite(report.efficacy):
            raise PricingError("report efficacy is not finite; refusing to price it.")
        price, accepted, records = self._price(report)
        if not math.isfinite(price):
            raise PricingError(
                f"{self.name} pricing produced a non-finite price ({price}); check its parameters."
            )
        return Quote(
            price=max(0.0, float(price)),
            accepted=accepted,
            accepted_records=records,
            efficacy=report.efficacy,
            n_records=report.n_records,
            artifact_id=report.artifact_id,
            commitment=report.commitment,
            pricing=self.name,
            params=self.params(),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


class BinaryPricing(BasePricing):
    """Buy the whole set at ``price`` if its efficacy exceeds ``threshold``, else no sale.

    Non-negative and monotone in efficacy.
    """

    name = "binary"

    def __init__(self, price: float, threshold: float = 0.0) -> None:
        self.price = _finite("price", price, nonneg=True)
        self.threshold = _finite("threshold", threshold)

    def params(self) -> dict[str, Any]:
        return {"price": self.price, "threshold": self.threshold}

    def _price(self, report: EfficacyReport) -> tuple[float, bool, list[int] | None]:
        ok = report.efficacy > self.threshold
        return (self.price if ok else 0.0), ok, None


class UniformPricing(BasePricing):
    """Buy each record whose score exceeds ``threshold`` (plus 5 sigma of the report's
    per-record sealing noise, so records that score zero are never bought) at ``unit_price``.

    Needs per-record scores (``scorer.score(..., per_record=True)``). Non-negative,
    monotone in each record's score, and additive, so splitting a set earns nothing extra.
    """

    name = "uniform"

    def __init__(self, unit_price: float, threshold: float = 0.0) -> None:
        self.unit_price = _finite("unit_price", unit_price, nonneg=True)
        self.threshold = _finite("threshold", threshold)

    def params(self) -> dict[str, Any]:
        return {"unit_price": self.unit_price, "threshold": self.threshold}

    def _price(self, report: EfficacyReport) -> tuple[float, bool, list[int] | None]:
        if report.record_scores is None:
            raise PricingError(
                "uniform pricing needs per-record scores, but this report holds only the total; "
                "ask the data owner to score with per_record=True (mde score --per-record)."
            )
        # a record scored zero (a copy, a known record) opens as sealing noise: 5 sigma of it
        # must not buy the record (false positives about 3e-7 per record)
        cut = self.threshold + 5.0 * (report.record_noise or 0.0)
        chosen = [i for i, s in enumerate(report.record_scores) if s > cut]
        return self.unit_price * len(chosen), bool(chosen), chosen


class LinearPricing(BasePricing):
    """Price ``rate * efficacy`` clipped to ``[floor, cap]``; no sale when efficacy <= 0.

    Parameters
    ----------
    rate : float
        Currency per unit of efficacy (per nat of predicted test-loss reduction).
    floor : float
        Minimum price of an accepted sale (>= 0).
    cap : float, optional
        Maximum price.
    """

    name = "linear"

    def __init__(self, rate: float, floor: float = 0.0, cap: float | None = None) -> None:
        self.rate = _finite("rate", rate, nonneg=True)
        self.floor = _finite("floor", floor, nonneg=True)
        self.cap = None if cap is None else _finite("cap", cap, nonneg=True)
        if self.cap is not None and self.cap < self.floor:
            raise PricingError(f"cap ({self.cap}) must be >= floor ({self.floor}).")

    def params(self) -> dict[str, Any]:
        return {"rate": self.rate, "floor": self.floor, "cap": self.cap}

    def _price(self, report: EfficacyReport) -> tuple[float, bool, list[int] | None]:
        if report.efficacy <= 0:
            return 0.0, False, None
        price = max(self.floor, self.rate * report.efficacy)
        if self.cap is not None:
            price = min(price, self.cap)
        return price, True, None


class TieredPricing(BasePricing):
    """Step function: the price of the highest tier whose efficacy threshold is exceeded.

    Parameters
    ----------
    tiers : sequence of (threshold, price)
        Prices must not decrease as thresholds increase (monotone).
    """

    name = "tiered"

    def __init__(self, tiers: list[tuple[float, float]] | dict[float, float]) -> None:
        raw = list(tiers.items()) if isinstance(tiers, dict) else list(tiers)
        if not raw or not all(isinstance(t, (tuple, list)) and len(t) == 2 for t in raw):
            raise PricingError("tiered pricing needs a non-empty list of (threshold, price) pairs.")
        self.tiers = sorted(
            (_finite("threshold", t), _finite("price", p, nonneg=True)) for t, p in raw
        )
        prices = [p for _, p in self.tiers]
        if any(b < a for a, b in zip(prices, prices[1:])):
            raise PricingError("tier prices must not decrease as thresholds increase.")

    def params(self) -> dict[str, Any]:
        return {"tiers": [list(t) for t in self.tiers]}

    def _price(self, report: EfficacyReport) -> tuple[float, bool, list[int] | None]:
        met = [p for t, p in self.tiers if report.efficacy > t]
        return (met[-1], True, None) if met else (0.0, False, None)
