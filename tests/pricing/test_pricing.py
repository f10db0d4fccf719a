"""Pricing functions give exact prices on hand-made reports and are never negative."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mde
from mde import EfficacyReport
from pricing import (
    BinaryPricing,
    LinearPricing,
    PricingFunction,
    TieredPricing,
    UniformPricing,
    get_pricing,
    parse_pricing,
    pricing_names,
)


def report(efficacy, scores=None, n=None):
    n = n or (len(scores) if scores is not None else 10)
    return EfficacyReport(
        efficacy=efficacy,
        n_records=n,
        record_scores=scores,
        artifact_id="a" * 32,
        commitment="c" * 64,
        proxy_kind="influence",
    )


def test_binary():
    f = BinaryPricing(price=100, threshold=0.05)
    assert f.quote(report(0.06)).price == 100 and f.quote(report(0.06)).accepted
    q = f.quote(report(0.05))
    assert (q.price, q.accepted) == (0, False)
    assert f.quote(report(-3)).price == 0


def test_uniform():
    f = UniformPricing(unit_price=2.5, threshold=0.0)
    q = f.quote(report(0.3, [0.1, -0.2, 0.0, 0.4, 1e-9]))
    assert q.price == pytest.approx(7.5) and q.accepted_records == [0, 3, 4]
    none = f.quote(report(-1.0, [-0.5, -0.5]))
    assert (none.price, none.accepted, none.accepted_records) == (0, False, [])
    with pytest.raises(mde.PricingError, match="per-record"):
        f.quote(report(0.3))


def test_linear_floor_cap():
    f = LinearPricing(rate=1000, floor=20, cap=300)
    assert f.quote(report(0.1)).price == pytest.approx(100)
    assert f.quote(report(0.001)).price == pytest.approx(20)
    assert f.quote(report(5.0)).price == pytest.approx(300)
    assert f.quote(report(-0.1)).price == 0 and not f.quote(report(-0.1)).accepted
    assert LinearPricing(rate=10).quote(report(2.0)).price == pytest.approx(20)


def test_tiered():
    f = TieredPricing([(0.0, 10), (0.1, 50), (0.5, 200)])
    assert [f.quote(report(e)).price for e in (-1, 0.05, 0.1, 0.3, 0.9)] == [0, 10, 10, 50, 200]
    with pytest.raises(mde.PricingError, match="decrease"):
        TieredPricing([(0.0, 50), (0.1, 10)])


def test_quote_carries_the_report_identity():
    q = BinaryPricing(price=1).quote(report(0.2))
    assert (q.artifact_id, q.commitment, q.efficacy, q.pricing) == (
        "a" * 32,
        "c" * 64,
        0.2,
        "binary",
    )
    assert q.params == {"price": 1.0, "threshold": 0.0}


def test_bad_parameters_are_refused():
    for bad in (
        lambda: BinaryPricing(price=-1),
        lambda: UniformPricing(unit_price=float("nan")),
        lambda: LinearPricing(rate=1, floor=5, cap=1),
        lambda: LinearPricing(rate=-2),
    ):
        with pytest.raises(mde.PricingError):
            bad()
    with pytest.raises(mde.PricingError, match="EfficacyReport"):
        BinaryPricing(price=1).quote({"efficacy": 1.0})


def test_registry_and_parsing():
    assert {"binary", "uniform", "linear", "tiered"} <= set(pricing_names())
    f = parse_pricing("binary:price=100,threshold=0.01")
    assert isinstance(f, BinaryPricing) and (f.price, f.threshold) == (100, 0.01)
    assert parse_pricing("linear:rate=10,cap=none").cap is None
    assert parse_pricing("tiered:0=5,0.2=50").quote(report(0.3)).price == 50
    assert isinstance(get_pricing("uniform", unit_price=1), PricingFunction)
    for bad in ("auction:price=1", "binary:price", "binary:price=abc", "binary:prize=3"):
        with pytest.raises(mde.PricingError):
            parse_pricing(bad)


@given(
    efficacy=st.floats(-1e6, 1e6, allow_nan=False),
    scores=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
    price=st.floats(0, 1e6),
    threshold=st.floats(-1, 1),
)
def test_prices_are_never_negative(efficacy, scores, price, threshold):
    for f in (
        BinaryPricing(price, threshold),
        UniformPricing(price, threshold),
        LinearPricing(price, floor=0),
        TieredPricing([(threshold, price)]),
    ):
        assert f.quote(report(efficacy, scores)).price >= 0


@given(a=st.floats(-10, 10, allow_nan=False), b=st.floats(-10, 10, allow_nan=False))
def test_monotone_in_efficacy(a, b):
    lo, hi = sorted((a, b))
    for f in (
        BinaryPricing(10, 0.1),
        LinearPricing(3, floor=1, cap=20),
        TieredPricing([(0, 1), (1, 5)]),
    ):
        assert f.quote(report(lo)).price <= f.quote(report(hi)).price


def test_pricing_edge_cases_raise_pricing_errors():
    with pytest.raises(mde.PricingError):
        UniformPricing(unit_price=10**400)
    for bad in ([1, 2], [(0, 1), ("a", 2)], []):
        with pytest.raises(mde.PricingError):
            TieredPricing(bad)
    with pytest.raises(mde.PricingError, match="non-finite"):
        LinearPricing(rate=1e10).quote(report(1e300))


def test_reports_are_consistent():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        report(0.3, [0.1, 0.2], n=3)  # two scores for three records
    with pytest.raises(ValidationError):
        report(float("inf"))
