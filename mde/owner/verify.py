"""Model owner, before settling: check the delivered data against what was scored.

The delivered records must match the commitment (the salted Merkle root: with the seed for a
full delivery, with each record's salt and inclusion proof for a subset), and every value of
the report (the total, each record's score if it has them, the pairwise term of an
``order=2`` artifact) must match the plaintext recomputation within ``rtol`` of its own
magnitude plus the noise the data owner was allowed (flooding and CKKS error, known from
the artifact's record; the Gaussian noise of a DP answer, declared in its signed header).
The recomputation, not the report, is what a settlement prices: without the DP clipping
(a clip is checked as declared, but the delivered data is worth what it is worth unclipped:
clipping shrinks the large-gradient records, mislabelled ones most, and would pay for them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.crypto.flooding import FloodSigmas
from mde.crypto.sealing import aggregate_exponent
from mde.errors import DeliveryError
from mde.numerics import clip_rows
from mde.owner.session import HiddenRecord, SealedRecord, Session
from mde.proxies.base import Proxy
from mde.proxies.repeats import offer_repeats
from mde.proxies.second_order import second_order_efficacy, second_order_step
from mde.report import EfficacyReport
from mde.wire.commitment import commit

__all__ = ["verify_delivery", "verified_scores", "recompute"]

# a reported value may differ from the recomputation by this many sigmas of its noise
_SIGMAS = 8.0
# CKKS error per record in hidden mode (scaled units)
_HIDDEN_CKKS_ERROR = 2.0**-20


def _check(what: str, recomputed: float, reported: float | None, rtol: float, noise: float) -> None:
    if reported is None or not abs(recomputed - reported) <= rtol * abs(recomputed) + noise:
        raise DeliveryError(
            f"delivered data has {what} {recomputed:.6g} but the sealed score said {reported}; "
            "the data owner's score does not match the proxy's. Do not pay for it."
        )


def _sigmas(proxy: Proxy, rec: SealedRecord, report: EfficacyReport) -> FloodSigmas:
    """The flooding sigmas the report was opened with (a DP answer's from its header)."""
    if report.dp_clip is None or not report.dp_noise:
        return rec.sigmas()
    z = report.dp_noise / (report.dp_clip * float(np.linalg.norm(proxy.w_)))
    return rec.sigmas(report.dp_clip, z)


def _prepare(
    proxy: Proxy, session: Session, X: Any, y: Any, report: EfficacyReport
) -> tuple[np.ndarray, np.ndarray, np.ndarray, SealedRecord | HiddenRecord]:
    Xa, yi = proxy.validate(X, y)
    if (report.proxy_kind, report.units) != (proxy.kind, proxy.units):
        raise DeliveryError(
            f"the report is for a {report.proxy_kind!r} proxy in other units; this proxy is "
            f"{proxy.kind!r}. Verify with the proxy that opened it."
        )
    rec = session.get(report.artifact_id)
    if rec is None:
        raise DeliveryError(
            f"report is for artifact {report.artifact_id!r}, which this proxy did not export."
        )
    return Xa, yi, Xa.astype(np.float32).astype(np.float64), rec


def recompute(
    proxy: Proxy, X: np.ndarray, y: np.ndarray, clip: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-record scores and the summed psi of validated float32-rounded records, with the
    data owner's screens (sketch, copies) and its DP clipping if it declared one."""
    labels = proxy.classes_[y]
    psi = proxy.psi(X, labels)
    psi[offer_repeats(X, y, proxy.known_) | proxy.excluded(X, labels)] = 0.0
    if clip is not None:
        psi = clip_rows(psi, clip)
    return psi @ proxy.w_, psi.sum(axis=0)


def verify_delivery(
    proxy: Proxy,
    session: Session,
    X: Any,
    y: Any,
    report: EfficacyReport,
    *,
    seed: bytes,
    rtol: float = 1e-4,
) -> EfficacyReport:
    """Check a full delivery against its report; return the verified report.

    Scores are recomputed on the records rounded to float32, the form the data owner scored
    and committed. ``seed`` is the data owner's salt seed (sent with the delivery).

    Returns
    -------
    EfficacyReport
        The recomputed (exact, noise-free) report: what a settlement prices.

    Raises
    ------
    DeliveryError
        If the records differ from the committed ones, or a value differs from the report.
    """
    Xa, yi, X32, rec = _prepare(proxy, session, X, y, report)
    if Xa.shape[0] != report.n_records:
        raise DeliveryError(
            f"{Xa.shape[0]} records delivered but the report is for {report.n_records}; "
            "the record count was altered or the delivery is incomplete. Do not pay."
        )
    if commit(Xa, yi, seed) != report.commitment:
        raise DeliveryError(
            "delivered records do not match the commitment made when they were scored "
            f"({Xa.shape[0]} records delivered, {report.n_records} scored); do not pay for them."
        )
    if isinstance(rec, HiddenRecord):
        scores = proxy.record_scores(X32, proxy.classes_[yi], exclude=False)  # no screens
        noise = (_SIGMAS * rec.flood_sigma + len(scores) * _HIDDEN_CKKS_ERROR) / rec.scale
        _check("efficacy", float(scores.sum()), report.efficacy, rtol, noise)
        return report.model_copy(update={"efficacy": float(scores.sum())})
    return _verify_sealed(proxy, rec, X32, yi, report, rtol)


def _verify_sealed(
    proxy: Proxy,
    rec: SealedRecord,
    X: np.ndarray,
    y: np.ndarray,
    report: EfficacyReport,
    rtol: float,
) -> EfficacyReport:
    scores, s = recompute(proxy, X, y, report.dp_clip)
    dp = report.dp_noise or 0.0
    sig = _sigmas(proxy, rec, report)
    noise = _SIGMAS * (sig.values * rec.scale + dp)  # per sealed block
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
                f"{reported[i]:.6g}; the data owner's scores do not match the proxy's."
            )
        total_noise = noise * np.sqrt(len(scores))
    else:
        flood = _SIGMAS * sig.values * rec.scale * 2.0 ** aggregate_exponent(len(scores))
        total_noise = flood + _SIGMAS * dp
    A = float(scores.sum())
    exact: dict[str, Any] = {"efficacy": A, "dp_noise": None}
    if report.record_scores is not None:
        exact["record_scores"] = scores.tolist()
    if pair is None:
        _check("efficacy", A, report.efficacy, rtol, total_noise)
        return _unclipped(proxy, X, y, report.model_copy(update=exact))
    if proxy.Q_ is None:
        raise DeliveryError(
            "the report is for an order-2 artifact but this proxy has no pairwise term."
        )
    _check("first-order efficacy", A, report.first_order, rtol, total_noise)
    Q = proxy.Q_
    B = float(s @ Q @ s)
    pair_sigma = sig.values if sig.pairwise is None else sig.pairwise
    pair_noise = _SIGMAS * pair_sigma * pair.scale * 4.0 ** aggregate_exponent(len(scores))
    if report.dp_clip is not None and report.dp_noise is not None:  # B of the noisy sum
        sd = report.dp_noise / float(np.linalg.norm(proxy.w_))  # noise per psi coordinate
        spread = 2 * float(np.linalg.norm(Q @ s)) * sd
        pair_noise += _SIGMAS * (spread + float(np.linalg.norm(Q)) * sd**2)
        pair_noise += abs(float(np.trace(Q))) * sd**2
    _check("pairwise term", B, report.pairwise, rtol, pair_noise)
    c = proxy.curvature_share
    r = second_order_step(len(scores), proxy.n_train_, c)
    efficacy = second_order_efficacy(A, B, len(scores), proxy.n_train_, c)
    _check(
        "efficacy",
        efficacy,
        report.efficacy,
        rtol,
        r * (total_noise + rtol * abs(A)) + r * r * (pair_noise + rtol * abs(B)) / 2,
    )
    checked = report.model_copy(
        update=exact | {"efficacy": efficacy, "first_order": A, "pairwise": B}
    )
    return _unclipped(proxy, X, y, checked)


def _unclipped(
    proxy: Proxy, X: np.ndarray, y: np.ndarray, report: EfficacyReport
) -> EfficacyReport:
    """The verified report priced on the records as they are (no DP clip)."""
    if report.dp_clip is None:
        return report
    scores, s = recompute(proxy, X, y, None)
    A = float(scores.sum())
    update: dict[str, Any] = {"efficacy": A}
    if report.record_scores is not None:
        update["record_scores"] = scores.tolist()
    if report.pairwise is not None and proxy.Q_ is not None:
        B = float(s @ proxy.Q_ @ s)
        c = proxy.curvature_share
        update |= {
            "first_order": A,
            "pairwise": B,
            "efficacy": second_order_efficacy(A, B, len(scores), proxy.n_train_, c),
        }
    return report.model_copy(update=update)


def verified_scores(
    proxy: Proxy,
    session: Session,
    X: Any,
    y: Any,
    index: np.ndarray,
    report: EfficacyReport,
    *,
    rtol: float = 1e-4,
) -> np.ndarray:
    """Verified scores of a delivered subset (its commitment proofs already checked).

    Each record is scored on its own; a record the report scored as zero (within its
    noise: a copy of an earlier record or a known one in the whole offer) stays zero.

    Raises
    ------
    DeliveryError
        If the report has no per-record scores, or a record's score differs from the
        report's.
    """
    if report.record_scores is None:
        raise DeliveryError(
            "a subset can only be settled against per-record scores; this report has a total."
        )
    Xa, yi, X32, rec = _prepare(proxy, session, X, y, report)
    if not isinstance(rec, SealedRecord):
        raise DeliveryError("subsets are settled in sealed-value mode only.")
    scores, _ = recompute(proxy, X32, yi, report.dp_clip)
    reported = np.asarray(report.record_scores)[index]
    noise = _SIGMAS * (_sigmas(proxy, rec, report).values * rec.scale + (report.dp_noise or 0.0))
    zero = np.abs(reported) <= noise
    bad = ~zero & ~(np.abs(scores - reported) <= rtol * np.abs(scores) + noise)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise DeliveryError(
            f"record {int(index[i])}'s score is {scores[i]:.6g} but the sealed score said "
            f"{reported[i]:.6g}; the data owner's scores do not match the proxy's."
        )
    if report.dp_clip is not None:  # checked clipped, priced as delivered
        scores = recompute(proxy, X32, yi, None)[0]
    return np.where(zero, 0.0, scores)
