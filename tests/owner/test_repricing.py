"""A buyer cannot re-price after the delivery: settlement uses the quote's pricing function,
and a guard-refused artifact pins nothing."""

from __future__ import annotations

import pytest

import mde
from pricing import UniformPricing


def test_settling_with_another_pricing_than_quoted_is_refused(fresh_proxy, digits, tmp_path):  # type: ignore[no-untyped-def]
    X, y = digits.Xc[:60], digits.yc[:60]
    fresh_proxy.export(tmp_path / "a.mde")
    scorer = mde.load_artifact(tmp_path / "a.mde")
    report = fresh_proxy.open(scorer.score(X, y, per_record=True))
    quoted_with = UniformPricing(unit_price=1.0)
    quote = fresh_proxy.quote(report, quoted_with)
    delivery = scorer.deliver(quote, X, y)
    with pytest.raises(mde.ProtocolError, match="settle with the same pricing function"):
        fresh_proxy.settle(delivery, UniformPricing(unit_price=0.0))
    assert fresh_proxy.ledger.settlement(quote.quote_id) is None
    settled = fresh_proxy.settle(delivery, quoted_with)
    assert 0 < settled.price <= quote.price


def test_a_refused_artifact_pins_nothing(artifact, tmp_path):  # type: ignore[no-untyped-def]
    from mde.data_owner.ledger import DataOwnerLedger
    from mde.wire.artifact import SealedArtifact
    from mde.wire.signing import SigningKey

    forger = SigningKey.generate()
    art = SealedArtifact.from_bytes(open(artifact, "rb").read())
    kind = art.manifest.model_copy(update={"proxy_kind": "my-kind"})  # no template: refused
    crafted = SealedArtifact(kind, dict(art.members)).signed(forger).to_bytes()
    with pytest.raises(mde.ArtifactError):
        mde.load_artifact(crafted, buyer="alice")
    assert DataOwnerLedger().buyer_name(forger.public_hex) is None
    mde.load_artifact(artifact, buyer="alice")  # the real alice is still welcome
