"""The one data-owner interface: ``load_artifact`` gives a DataOwnerSession for either mode,
and ``prepare`` / ``finish`` drive a whole deal while ``awaiting_reply`` tracks it."""

from __future__ import annotations

import numpy as np
import pytest

import mde
from mde.data_owner.ledger import DataOwnerLedger
from mde.wire.commitment import commit
from mde.wire.messages import EncryptedRecords, MaskedResult, PartialResult
from mde.wire.sealed_score import SealedScore


def _seed(report):
    """The data owner's salt seed for a report's commitment (its ledger, this MDE_HOME)."""
    return DataOwnerLedger().seed(report.commitment)


@pytest.fixture(scope="module")
def poly(digits, model):
    return mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, kind="influence-poly", random_state=0
    )


def test_load_artifact_returns_a_session_for_both_modes(fresh_proxy, poly, tmp_path):
    fresh_proxy.export(tmp_path / "s.mde")
    poly.export(tmp_path / "h.mde", mode="hidden")
    sealed = mde.load_artifact(tmp_path / "s.mde")
    hidden = mde.load_artifact((tmp_path / "h.mde").read_bytes())
    assert isinstance(sealed, mde.DataOwnerSession) and isinstance(sealed, mde.Scorer)
    assert isinstance(hidden, mde.DataOwnerSession) and isinstance(hidden, mde.HiddenClient)
    assert not isinstance(sealed, mde.HiddenClient) and not isinstance(hidden, mde.Scorer)
    assert (sealed.mode, hidden.mode) == ("sealed-value", "hidden")
    assert (
        sealed.artifact_id == fresh_proxy.artifacts_[-1]
        and hidden.artifact_id == poly.artifacts_[-1]
    )
    # the same entry point is exported at every level
    from mde.data_owner import load_artifact

    assert load_artifact is mde.load_artifact


def test_a_sealed_value_deal_through_prepare_and_finish(fresh_proxy, digits, tmp_path):
    X, y = digits.Xc[:60], digits.yc[:60]
    fresh_proxy.export(tmp_path / "a.mde")
    session = mde.load_artifact(tmp_path / "a.mde")
    assert not session.awaiting_reply
    message = session.prepare(X, y, per_record=True, batch_size=16)
    assert isinstance(message, SealedScore) and message.header.per_record
    assert not session.awaiting_reply  # sealed-value mode sends one message and is done
    report = fresh_proxy.open(message.to_bytes())
    assert report.efficacy == pytest.approx(fresh_proxy.efficacy(X, y), rel=1e-3)
    assert len(report.record_scores) == 60
    fresh_proxy.verify_delivery(X, y, report, seed=_seed(report))
    # prepare is score: the same records, a new salted commitment to them
    again = session.score(X, y).commitment
    assert again != message.commitment
    assert commit(X.astype(np.float32), y, _seed(report)) == message.commitment


def test_scorer_finish_refuses_anything(fresh_proxy, poly, digits, tmp_path):
    fresh_proxy.export(tmp_path / "a.mde")
    session = mde.load_artifact(tmp_path / "a.mde")
    sealed = session.prepare(digits.Xc[:10], digits.yc[:10])
    poly.export(tmp_path / "h.mde", mode="hidden")
    client = mde.load_artifact(tmp_path / "h.mde")
    masked = poly.evaluate_hidden(client.prepare(digits.Xc[:10], digits.yc[:10]))
    for reply in (None, b"", b"anything", sealed, sealed.to_bytes(), masked, masked.to_bytes(), 42):
        with pytest.raises(mde.ProtocolError, match="no reply is expected"):
            session.finish(reply)
    assert not session.awaiting_reply


def test_a_hidden_mode_deal_through_prepare_and_finish(poly, digits, tmp_path):
    X, y = digits.Xc[:80], digits.yc[:80]
    poly.export(tmp_path / "h.mde", mode="hidden")
    session = mde.load_artifact(tmp_path / "h.mde")
    assert not session.awaiting_reply  # nothing sent yet
    request = session.prepare(X, y)
    assert isinstance(request, EncryptedRecords) and request.n_records == 80
    assert session.awaiting_reply  # waiting for the masked result
    reply = poly.evaluate_hidden(request.to_bytes())
    assert isinstance(reply, MaskedResult)
    assert session.awaiting_reply  # evaluating does not change the data owner's state
    final = session.finish(reply.to_bytes(), random_state=0)
    assert isinstance(final, PartialResult) and final.result_id == reply.result_id
    assert not session.awaiting_reply  # done: the deal needs no further message
    with pytest.raises(mde.ProtocolError, match="already decrypted"):
        session.finish(reply)
    assert not session.awaiting_reply
    report = poly.open(final.to_bytes())
    assert report.efficacy == pytest.approx(
        float(poly.record_scores(X, y, exclude=False).sum()), rel=1e-3
    )
    poly.verify_delivery(X, y, report, seed=_seed(report))
    # a new request starts a new deal: awaiting again, and it can be finished once
    again = session.prepare(X, y)
    assert session.awaiting_reply
    second = session.finish(poly.evaluate_hidden(again, allow_repeat=True))
    assert not session.awaiting_reply and second.request_id == again.request_id


def test_hidden_finish_before_prepare_is_refused(poly, digits, tmp_path):
    poly.export(tmp_path / "h.mde", mode="hidden")
    first = mde.load_artifact(tmp_path / "h.mde")
    session = mde.load_artifact(tmp_path / "h.mde")
    reply = poly.evaluate_hidden(first.prepare(digits.Xc[:10], digits.yc[:10]))
    with pytest.raises(mde.ProtocolError, match="another request"):
        session.finish(reply)
    assert not session.awaiting_reply and first.awaiting_reply


def test_hidden_decrypt_refuses_a_second_result_for_one_request(poly, digits, tmp_path):
    """Even under a different result id (the model owner evaluated the request twice)."""
    poly.export(tmp_path / "h.mde", mode="hidden")
    session = mde.load_artifact(tmp_path / "h.mde")
    request = session.prepare(digits.Xc[:10], digits.yc[:10])
    one = poly.evaluate_hidden(request)
    two = poly.evaluate_hidden(request, allow_repeat=True)
    assert one.result_id != two.result_id and one.request_id == two.request_id
    session.decrypt(two)
    for reply in (one, two):
        with pytest.raises(mde.ProtocolError, match="already decrypted"):
            session.decrypt(reply)
        with pytest.raises(mde.ProtocolError, match="already decrypted"):
            session.finish(reply)
