"""A cheating data owner cannot use the DP mode to inflate its price: a clip of its own
choosing is refused at open, and a DP answer settles at the value of the records as
delivered (unclipped), whatever the clip shrank."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.data_owner.policy import DPPolicy, GuardPolicy
from mde.owner.verify import recompute
from pricing import LinearPricing

pytest.importorskip("dp_accounting")

# one seller answering twice: a loose privacy budget keeps the test about the price
LOOSE = DPPolicy(epsilon=50.0, epsilon_budget=1000.0)


def test_a_seller_chosen_clip_is_refused_and_dp_settles_unclipped(fresh_proxy, digits, tmp_path):  # type: ignore[no-untyped-def]
    X, y = digits.Xc[:80], digits.yc[:80].copy()
    y[:30] = (y[:30] + 1) % 10  # mislabelled records: large gradients, negative value
    clip = fresh_proxy.psi_clip_
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    own = DPPolicy(epsilon=50.0, epsilon_budget=1000.0, clip=clip / 20)
    small = mde.load_artifact(path, policy=GuardPolicy(dp=own)).score(X, y)
    with pytest.raises(mde.SealedScoreError, match="not at the artifact's psi_clip"):
        fresh_proxy.open(small)
    assert fresh_proxy.ledger.evaluations(small.artifact_id) == 0  # refused before opening

    scorer = mde.load_artifact(path, policy=GuardPolicy(dp=LOOSE))
    sealed = scorer.score(X, y)
    assert sealed.header.dp_clip == clip
    report = fresh_proxy.open(sealed)
    pricing = LinearPricing(rate=1000.0)
    quote = fresh_proxy.quote(report, pricing)
    settlement = fresh_proxy.settle(scorer.deliver(quote, X, y), pricing)
    exact = fresh_proxy.efficacy(X, y)  # the records as delivered, no clip
    assert settlement.verified_efficacy == pytest.approx(exact, rel=1e-9, abs=1e-12)
    # linear pricing: the price of the unclipped value, never above the quote
    assert settlement.price == pytest.approx(min(1000.0 * exact, quote.price), rel=1e-9)
    Xa, yi = fresh_proxy.validate(X, y)
    clipped = recompute(fresh_proxy.proxy, Xa.astype(np.float32).astype(float), yi, clip)[0]
    assert clipped.sum() > 2 * exact  # the clip shrank the mislabelled records' harm
