"""Plug in your own pricing function.

A pricing function is anything with ``name``, ``params()`` and ``quote(report) -> Quote``.
Subclassing ``pricing.BasePricing`` gives validation and a never-negative price for free;
``register_pricing`` makes it usable from the command line (``mde open --pricing budget:...``).

    python examples/custom_pricing.py
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import mde
from mde import EfficacyReport
from pricing import BasePricing, parse_pricing, register_pricing


class BudgetPricing(BasePricing):
    """Buy the most valuable records first, at ``unit_price`` each, until ``budget`` is spent."""

    name = "budget"

    def __init__(self, unit_price: float, budget: float) -> None:
        if unit_price <= 0 or budget < 0:
            raise mde.PricingError("unit_price must be > 0 and budget >= 0.")
        self.unit_price, self.budget = float(unit_price), float(budget)

    def params(self) -> dict[str, float]:
        return {"unit_price": self.unit_price, "budget": self.budget}

    def _price(self, report: EfficacyReport) -> tuple[float, bool, list[int] | None]:
        if report.record_scores is None:
            raise mde.PricingError(
                "budget pricing needs per-record scores (score with per_record=True)."
            )
        scores = np.asarray(report.record_scores)
        best = [int(i) for i in np.argsort(-scores) if scores[i] > 0][
            : int(self.budget // self.unit_price)
        ]
        return self.unit_price * len(best), bool(best), sorted(best)


register_pricing("budget", BudgetPricing)

if __name__ == "__main__":
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(1).permutation(len(y))
    tr, te, offer = idx[:400], idx[400:800], idx[800:900]
    model = LogisticRegression(C=0.05, max_iter=3000).fit(X[tr], y[tr])
    proxy = mde.build_proxy(model, X[tr], y[tr], X[te], y[te], random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        proxy.export(os.path.join(tmp, "a.mde"))
        sealed = mde.load_artifact(os.path.join(tmp, "a.mde")).score(
            X[offer], y[offer], per_record=True
        )
    report = proxy.open(sealed)
    quote = parse_pricing("budget:unit_price=2,budget=50").quote(report)
    print(f"{len(quote.accepted_records)} records bought for {quote.price:.2f}")
    print(quote.model_dump_json())
