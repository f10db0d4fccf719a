"""Check that a pricing function is safe for a market: non-negative, monotone in
efficacy, and arbitrage-free over splits (selling a data set in parts must not earn more
than selling it whole).

Built-ins: all are non-negative and monotone. Only ``uniform`` is arbitrage-free: it
prices records one by one. ``binary`` (each part above the threshold sells at the full
price), ``linear`` (parts escape the cap, claim the floor, or shed negative records) and
``tiered`` are not; the checker finds a counterexample for each.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from mde.report import EfficacyReport
from pricing.quote import PricingFunction

__all__ = ["PropertyCheck", "check_pricing"]


class PropertyCheck(BaseModel):
    """Which properties held on the trials, with a counterexample for each that failed."""

    model_config = ConfigDict(frozen=True)

    non_negative: bool
    monotone: bool
    arbitrage_free: bool
    counterexamples: dict[str, str]


def _report(scores: np.ndarray) -> EfficacyReport:
    return EfficacyReport(
        efficacy=float(scores.sum()),
        n_records=len(scores),
        record_scores=scores.tolist(),
        artifact_id="check",
        commitment="check",
        proxy_kind="check",
    )


def check_pricing(
    pricing: PricingFunction, n_trials: int = 300, scale: float = 1.0, random_state: int | None = 0
) -> PropertyCheck:
    """Probe ``pricing`` on random per-record reports (scores ~ N(0, scale), 1-30 records).

    - non-negative: every price >= 0;
    - monotone: raising one record's score never lowers the price;
    - arbitrage-free: for random splits into 2-4 parts, the parts' prices sum to at most
      the whole's price (1e-9 relative slack).
    """
    rng = np.random.default_rng(random_state)
    found: dict[str, str] = {}
    for _ in range(n_trials):
        n = int(rng.integers(1, 31))
        scores = rng.normal(0.0, scale, n) * rng.choice([0.1, 1.0, 10.0])
        whole = pricing.quote(_report(scores)).price
        if whole < 0 and "non_negative" not in found:
            found["non_negative"] = f"scores {scores.round(4).tolist()} priced {whole}"
        up = scores.copy()
        j = int(rng.integers(n))
        up[j] += abs(rng.normal(0.0, scale)) + 1e-3
        if (
            pricing.quote(_report(up)).price < whole - 1e-9 * max(1.0, abs(whole))
            and "monotone" not in found
        ):
            found["monotone"] = (
                f"raising record {j} of {scores.round(4).tolist()} lowered the price"
            )
        if n >= 2:
            parts = np.array_split(rng.permutation(n), int(rng.integers(2, min(n, 4) + 1)))
            split = sum(pricing.quote(_report(scores[p])).price for p in parts if len(p))
            if split > whole + 1e-9 * max(1.0, abs(whole)) and "arbitrage_free" not in found:
                found["arbitrage_free"] = (
                    f"{len(parts)} parts of {scores.round(4).tolist()} earn {split:.6g} "
                    f"> whole {whole:.6g}"
                )
    return PropertyCheck(
        non_negative="non_negative" not in found,
        monotone="monotone" not in found,
        arbitrage_free="arbitrage_free" not in found,
        counterexamples=found,
    )
