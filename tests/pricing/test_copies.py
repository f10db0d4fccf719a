"""A price no copy can inflate: for every built-in pricing function, an offer plus k copies
(or near-copies) of it is priced at most 1.05x the offer (sealed reports, the real flow)."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from pricing import BinaryPricing, LinearPricing, TieredPricing, UniformPricing

PRICINGS = [
    BinaryPricing(price=100.0),
    UniformPricing(unit_price=1.0),
    LinearPricing(rate=1000.0),
    TieredPricing({0.0: 10.0, 0.2: 50.0, 0.5: 200.0}),
]


@pytest.mark.parametrize("noise", [0.0, 0.02])
@pytest.mark.parametrize("k", [1, 9])
def test_copies_do_not_raise_any_built_in_price(fresh_proxy, digits, tmp_path, k, noise) -> None:  # type: ignore[no-untyped-def]
    X, y = digits.Xc[:60], digits.yc[:60]
    rng = np.random.default_rng(k)
    # exact copies, or near-copies with pixel noise (pixels span 0..16)
    copies = [X + rng.normal(0.0, noise, X.shape) if noise else X for _ in range(k)]
    Xk, yk = np.vstack([X, *copies]), np.tile(y, k + 1)
    reports = []
    for i, (Xo, yo) in enumerate([(X, y), (Xk, yk)]):
        path = tmp_path / f"a{i}.mde"
        fresh_proxy.export(path)
        reports.append(fresh_proxy.open(mde.load_artifact(path).score(Xo, yo, per_record=True)))
    offer, padded = reports
    assert offer.efficacy > 0  # clean digits: a priced offer, so the bound is not vacuous
    for pricing in PRICINGS:
        base, inflated = pricing.quote(offer).price, pricing.quote(padded).price
        assert base > 0, pricing
        assert inflated <= 1.05 * base, (pricing, base, inflated)
