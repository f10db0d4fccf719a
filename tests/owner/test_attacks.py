"""Attacks by a cheating data owner on the sealed score, stopped at open or at delivery."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.crypto.sealing import aggregate_exponent
from mde.data_owner.ledger import DataOwnerLedger
from mde.proxies.repeats import RepeatTracker, offer_repeats
from mde.wire.sealed_score import SealedScore
from mde.wire.signing import SigningKey

FORGER = SigningKey.generate()  # the cheating party signs what it crafts


class NoRepeats(RepeatTracker):
    """A data owner's scorer that skips the repeat screen (the attack)."""

    def update(self, digests: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        return np.zeros(len(digests), dtype=bool)


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


def _rebuild(sealed: SealedScore, ciphertexts: list[bytes], **header: object) -> SealedScore:
    fields = sealed.header.model_dump() | header
    fields.pop("n_ciphertexts")
    return SealedScore.build(key=FORGER, ciphertexts=ciphertexts, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def order2(digits, model):  # type: ignore[no-untyped-def]
    return mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        order=2,
        n_components=16,
        random_state=0,
    )


def test_swapped_total_and_pairwise_ciphertexts_are_refused_at_open(
    order2, digits, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.mde"
    aid = order2.export(path)
    rec = order2.session.artifacts[aid]
    assert rec.pairwise.layout.chunks == 15  # 14,535 pairwise values, summed by the seller
    sealed = mde.load_artifact(path).score(digits.Xc, digits.yc)
    cts = list(sealed.ciphertexts)
    assert len(cts) == 2  # the first-order total, then the pairwise total
    with pytest.raises(mde.SealedScoreError, match="reordered"):
        order2.open(_rebuild(sealed, cts[::-1]))
    # the honest score still opens: the refusal came from the order alone
    report = order2.open(sealed)
    # within 8 sigmas of the pairwise block's flooding (real units: sigma * scale * 4**e)
    flood = rec.sigmas().pairwise * rec.pairwise.scale * 4.0 ** aggregate_exponent(len(digits.yc))
    assert report.pairwise == pytest.approx(
        order2.efficacy_terms(digits.Xc, digits.yc)[1], rel=1e-6, abs=8 * flood
    )


def test_an_altered_record_count_is_refused_at_delivery(fresh_proxy, digits, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    X, y = digits.Xc[:300], digits.yc[:300]
    sealed = mde.load_artifact(path).score(X, y)
    # 300 -> 512 stays in the same power-of-two band, so the ciphertexts' meta codes agree
    forged = _rebuild(sealed, list(sealed.ciphertexts), n_records=512)
    report = fresh_proxy.open(forged)
    assert report.n_records == 512
    with pytest.raises(mde.DeliveryError, match="300 records delivered but the report is for 512"):
        fresh_proxy.verify_delivery(X, y, report, seed=_seed(report))


def test_a_report_of_another_kind_is_refused_at_delivery(fresh_proxy, digits, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    X, y = digits.Xc[:50], digits.yc[:50]
    report = fresh_proxy.open(mde.load_artifact(path).score(X, y))
    fresh_proxy.verify_delivery(X, y, report, seed=_seed(report))
    forged = report.model_copy(update={"proxy_kind": "tree"})
    with pytest.raises(mde.DeliveryError, match="'tree' proxy"):
        fresh_proxy.verify_delivery(X, y, forged, seed=_seed(forged))
    assert np.isfinite(report.efficacy)


def test_copies_inside_an_offer_count_once(fresh_proxy, digits, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    X, y = digits.Xc[:40], digits.yc[:40]
    X10, y10 = np.vstack([X] * 10), np.concatenate([y] * 10)
    X10[40:][X10[40:] == 0] = -0.0  # -0.0 for 0.0 must not make a copy look new
    honest = fresh_proxy.efficacy(X, y)
    assert fresh_proxy.efficacy(X10, y10) == pytest.approx(honest, rel=1e-12)
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    report = fresh_proxy.open(mde.load_artifact(path).score(X10, y10, per_record=True))
    assert report.efficacy == pytest.approx(honest, rel=1e-3, abs=1e-4)
    assert report.record_scores is not None and all(
        s == pytest.approx(0.0, abs=1e-4) for s in report.record_scores[40:]
    )
    fresh_proxy.verify_delivery(X10, y10, report, seed=_seed(report))
    # a data owner that skips the deduplication inflates its score 10x and fails at delivery
    monkeypatch.setattr("mde.data_owner.offer_pass.RepeatTracker", NoRepeats)
    path2 = tmp_path / "b.mde"
    fresh_proxy.export(path2)
    inflated = fresh_proxy.open(mde.load_artifact(path2).score(X10, y10))
    assert inflated.efficacy == pytest.approx(10 * honest, rel=1e-3)
    with pytest.raises(mde.DeliveryError, match="efficacy"):
        fresh_proxy.verify_delivery(X10, y10, inflated, seed=_seed(inflated))


def test_near_copies_inside_an_offer_count_once(fresh_proxy, digits, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert fresh_proxy.known_ is not None  # the sketch's grids define "near"
    X, y = digits.Xc[:40], digits.yc[:40]
    rng = np.random.default_rng(0)
    # nine near-copies of every record: pixel noise of 0.02 (pixels span 0..16)
    Xn = np.vstack([X] + [X + rng.normal(0.0, 0.02, X.shape) for _ in range(9)])
    yn = np.concatenate([y] * 10)
    assert not offer_repeats(X, y, fresh_proxy.known_).any()  # the 40 originals are distinct
    assert offer_repeats(Xn, yn, fresh_proxy.known_)[40:].all()
    honest = fresh_proxy.efficacy(X, y)
    assert fresh_proxy.efficacy(Xn, yn) == pytest.approx(honest, rel=1e-12)
    path = tmp_path / "a.mde"
    fresh_proxy.export(path)
    report = fresh_proxy.open(mde.load_artifact(path).score(Xn, yn, per_record=True))
    assert report.efficacy == pytest.approx(honest, rel=1e-3, abs=1e-4)
    assert report.record_scores is not None
    assert np.allclose(report.record_scores[40:], 0.0, atol=1e-4)
    verified = fresh_proxy.verify_delivery(Xn, yn, report, seed=_seed(report))
    assert verified.efficacy == pytest.approx(honest, rel=1e-9)
