"""Name pricing functions on the command line: ``binary:price=100,threshold=0``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mde.errors import PricingError
from pricing.functions import BinaryPricing, LinearPricing, TieredPricing, UniformPricing
from pricing.quote import PricingFunction

__all__ = ["register_pricing", "get_pricing", "parse_pricing", "pricing_names"]

_REGISTRY: dict[str, Callable[..., PricingFunction]] = {}


def register_pricing(name: str, factory: Callable[..., PricingFunction]) -> None:
    """Register a pricing function factory under ``name`` (replaces an existing one)."""
    _REGISTRY[name] = factory


def pricing_names() -> list[str]:
    return sorted(_REGISTRY)


def get_pricing(name: str, **params: Any) -> PricingFunction:
    """Instantiate a registered pricing function."""
    if name not in _REGISTRY:
        raise PricingError(f"unknown pricing function {name!r}; choose one of {pricing_names()}.")
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        raise PricingError(f"bad parameters for pricing {name!r}: {exc}") from exc


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("none", "null", ""):
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise PricingError(f"pricing parameter value {text!r} is not a number.") from exc


def parse_pricing(spec: str) -> PricingFunction:
    """Parse ``name:key=value,key=value`` (``tiered:0=10,0.1=50`` maps thresholds to prices)."""
    name, _, rest = spec.partition(":")
    pairs = [p for p in rest.split(",") if p.strip()]
    kv: dict[str, Any] = {}
    for pair in pairs:
        key, eq, val = pair.partition("=")
        if not eq:
            raise PricingError(
                f"pricing parameter {pair!r} must look like key=value (in {spec!r})."
            )
        kv[key.strip()] = _value(val)
    if name.strip() == "tiered":
        try:
            return TieredPricing([(float(k), v) for k, v in kv.items()])
        except ValueError as exc:
            raise PricingError(
                f"tiered pricing wants threshold=price pairs; got {spec!r}."
            ) from exc
    return get_pricing(name.strip(), **kv)


register_pricing("binary", BinaryPricing)
register_pricing("uniform", UniformPricing)
register_pricing("linear", LinearPricing)
register_pricing("tiered", TieredPricing)
