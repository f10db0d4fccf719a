"""Pricing functions: map an :class:`mde.EfficacyReport` to a :class:`Quote`.

pricing sees only reports, never models or data. Write your own by implementing the
:class:`PricingFunction` protocol (``name``, ``params()``, ``quote(report)``), or subclass
:class:`BasePricing` and implement ``_price``; ``register_pricing`` makes it nameable on the
command line.
"""

from __future__ import annotations

from pricing.functions import (
    BasePricing,
    BinaryPricing,
    LinearPricing,
    TieredPricing,
    UniformPricing,
)
from pricing.properties import PropertyCheck, check_pricing
from pricing.quote import PricingFunction, Quote
from pricing.registry import get_pricing, parse_pricing, pricing_names, register_pricing
from pricing.revenue import RevenueSplit, split_revenue

__all__ = [
    "Quote",
    "PricingFunction",
    "BasePricing",
    "BinaryPricing",
    "UniformPricing",
    "LinearPricing",
    "TieredPricing",
    "register_pricing",
    "get_pricing",
    "parse_pricing",
    "pricing_names",
    "split_revenue",
    "RevenueSplit",
    "check_pricing",
    "PropertyCheck",
]
