"""Model owner, after payment: check the delivered data against what was scored.

The delivered records must match the commitment, and every value of the report (the total,
each record's score if it has them, the pairwise term of an ``order=2`` artifact) must match
the plaintext recomputation within ``rtol`` of its own magnitude plus the sealing noise
(flooding and CKKS error, known from the artifact's record in the session).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.crypto.sealing import aggregate_exponent
from mde.errors import DeliveryError
from mde.owner.session import HiddenRecord, SealedRecord, Session
from mde.proxies.base import Proxy
from mde.proxies.second_order import second_order_efficacy, second_order_step
from mde.report import EfficacyReport
from mde.wire.commitment import commit

__all__ = ["verify_delivery"]

# a reported value may differ from the recomputation by this many sigmas of flooding noise
_SIGMAS = 8.0
# CKKS error per record in hidden mode (scaled units)
_HIDDEN_CKKS_ERROR = 2.0**-20


def _check(what: str, recomputed: float, reported: float | None, rtol: float, noise: float) -> None:
    if reported is None or not abs(recomputed - reported) <= rtol * abs(recomputed) + noise:
        raise DeliveryError(
            f"delivered data has {what} {recomputed:.6g} but the sealed score said {reported}; "
            "the data owner's score does not match the proxy's. Do not pay for it."
        )


def verify_delivery(
    proxy: Proxy, session: Session, X: Any, y: Any, report: EfficacyReport, *, rtol: float = 1e-4
) -> None:
    """Check delivered data against a report; return None if it matches.

    Scores are recomputed on the records rounded to float32, the form the data owner scored
    and committed (the sketch's cells are discontinuous, so a record on a cell edge may
    round across it).

    Raises
    ------
    DeliveryError
        If the records differ from the committed ones, or a value differs from the report.
    """
    Xa, yi = proxy.validate(X, y)
    if Xa.shape[0] != report.n_records:
        raise DeliveryError(
            f"{Xa.shape[0]} records delivered but the report is for {report.n_records}; "
            "the record count was altered or the delivery is incomplete. Do not pay."
        )
    if (report.proxy_kind, report.units) != (proxy.kind, proxy.units):
        raise DeliveryError(
            f"the report is for a {report.proxy_kind!r} proxy in other units; this proxy is "
            f"{proxy.kind!r}. Verify with the proxy that opened it."
        )
    if commit(Xa, yi) != report.commitment:
        raise DeliveryError(
            "delivered records do not match the commitment made when they were scored "
            f"({Xa.shape[0]} records delivered, {report.n_records} scored); do not pay for them."
        )
    rec = session.artifacts.get(report.artifact_id)
    if rec is None:
        raise DeliveryError(
            f"report is for artifact {report.artifact_id!r}, which this proxy did not export."
        )
    X32 = Xa.astype(np.float32).astype(np.float64)
    labels = proxy.classes_[yi]
    if isinstance(rec, HiddenRecord):
        _verify_hidden(proxy, rec, X32, labels, report, rtol)
    else:
        _verify_sealed(proxy, rec, X32, labels, report, rtol)


def _verify_hidden(
    proxy: Proxy,
    rec: HiddenRecord,
    X: np.ndarray,
    y: np.ndarray,
    report: EfficacyReport,
    rtol: float,
) -> None:
    scores = proxy.record_scores(X, y, exclude=False)  # the score graph has no membership sketch
    noise = (_SIGMAS * rec.flood_sigma + len(scores) * _HIDDEN_CKKS_ERROR) / rec.scale
    _check("efficacy", float(scores.sum()), report.efficacy, rtol, noise)


def _verify_sealed(
    proxy: Proxy,
    rec: SealedRecord,
    X: np.ndarray,
    y: np.ndarray,
    report: EfficacyReport,
    rtol: float,
) -> None:
    scores = proxy.record_scores(X, y)
    noise = _SIGMAS * rec.flood_sigma * rec.scale  # per sealed block
    pair = rec.pairwise
    if (pair is None) != (report.pairwise is None):
        raise DeliveryError(
            "report's terms do not match its artifact: an order-2 artifact's report has a "
            "first-order and a pairwise term, an order-1 artifact's has neither."
        )
    if report.record_scores is not None:
        reported = np.asarray(report.record_scores)
        bad = ~(np.abs(scores - reported) <= rtol * np.abs(scores) + noise)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise DeliveryError(
                f"record {i}'s score is {scores[i]:.6g} but the sealed score said "
                f"{reported[i]:.6g}; "
                "the data owner's scores do not match the proxy's."
            )
        total_noise = noise * np.sqrt(len(scores))
    else:
        total_noise = noise * 2.0 ** aggregate_exponent(len(scores))
    A = float(scores.sum())
    if pair is None:
        return _check("efficacy", A, report.efficacy, rtol, total_noise)
    if proxy.Q_ is None:
        raise DeliveryError(
            "the report is for an order-2 artifact but this proxy has no pairwise term."
        )
    _check("first-order efficacy", A, report.first_order, rtol, total_noise)
    s = proxy.psi_sum(X, y)
    B = float(s @ proxy.Q_ @ s)
    pair_noise = _SIGMAS * rec.flood_sigma * pair.scale * 4.0 ** aggregate_exponent(len(scores))
    _check("pairwise term", B, report.pairwise, rtol, pair_noise)
    c = proxy.curvature_share
    r = second_order_step(len(scores), proxy.n_train_, c)
    _check(
        "efficacy",
        second_order_efficacy(A, B, len(scores), proxy.n_train_, c),
        report.efficacy,
        rtol,
        r * (total_noise + rtol * abs(A)) + r * r * (pair_noise + rtol * abs(B)) / 2,
    )
