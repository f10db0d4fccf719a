"""Model owner, last protocol step: open a sealed score (or a hidden-mode partial result)
into an :class:`~mde.report.EfficacyReport`."""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.crypto.sealing import aggregate_exponent, pairwise_values, unseal_blocks
from mde.errors import ProtocolError, SealedScoreError
from mde.owner.ledger import Ledger
from mde.owner.session import Session
from mde.proxies.base import Proxy
from mde.proxies.second_order import second_order_efficacy
from mde.report import EfficacyReport
from mde.wire.messages import PartialResult
from mde.wire.sealed_score import SealedScore

__all__ = ["open_sealed", "open_partial"]


def open_sealed(
    proxy: Proxy,
    session: Session,
    ledger: Ledger,
    context: Any,
    sealed: SealedScore,
    *,
    allow_repeat: bool = False,
    expect_seller: str | None = None,
) -> EfficacyReport:
    """Decrypt a sealed score with the owner's key.

    The score's signature must cover its header (count, mode, commitment, DP parameters)
    and every ciphertext in its position; ``expect_seller`` pins the data owner's key.

    Raises
    ------
    SealedScoreError
        If the score is unsigned or changed after signing, or was made for another artifact,
        a tampered artifact, or another key.
    IdentityError
        If it is signed by another key than ``expect_seller``.
    ReplayError
        If the artifact was already evaluated and ``allow_repeat`` is False.
    """
    seller = sealed.check_signature(expect_seller)
    head = sealed.header
    rec = session.sealed(head.artifact_id, SealedScoreError)
    if head.manifest_sha256 != rec.manifest_sha256:
        raise SealedScoreError(
            "sealed score was made against a modified copy of the artifact (content hash "
            "differs); refusing it."
        )
    ledger.check(head.artifact_id, allow_repeat)
    if head.dp_clip is not None and proxy.psi_clip_ is not None and head.dp_clip != proxy.psi_clip_:
        raise SealedScoreError(
            f"the data owner clipped psi at {head.dp_clip:g}, not at the artifact's psi_clip "
            f"{proxy.psi_clip_:g}; a clip of its choosing changes what its records score. "
            "Ask for a score with the artifact's clip (DPPolicy without clip)."
        )
    cts = sealed.ciphertexts
    pair = rec.pairwise
    n_pair = 0 if pair is None else 1  # the pairwise total's one ciphertext comes last
    if len(cts) <= n_pair:
        raise SealedScoreError(
            f"sealed score holds {len(cts)} ciphertexts; this artifact needs more than {n_pair}."
        )
    sig = rec.sigmas(head.dp_clip, head.dp_noise_multiplier)  # flooding per block kind
    norms = rec.norms(head.dp_clip, head.dp_noise_multiplier)
    # a block sum is at most |w| times the norm bound the data owner enforced
    w_bound = _max_abs(proxy.w_ / rec.scale, None if norms is None else norms.values)
    sums = unseal_blocks(
        context,
        cts[: len(cts) - n_pair],
        rec.layout,
        head.n_records,
        head.per_record,
        rec.sentinel,
        rec.meta_key,
        sig.values,
        error_bound=sig.values_bound,
        max_abs=w_bound,
    )
    sums *= rec.scale
    exp = aggregate_exponent(head.n_records)
    scores: list[float] | None = None
    if head.per_record:
        scores = sums.tolist()
        efficacy = float(sums.sum())
    else:
        efficacy = float(sums[0] * 2.0**exp)
    first_order: float | None = None
    pairwise: float | None = None
    if pair is not None:  # the pairwise total was sealed as q * products(s / 2**e)
        quad = unseal_blocks(
            context,
            cts[len(cts) - n_pair :],
            pair.layout,
            head.n_records,
            False,
            pair.sentinel,
            pair.meta_key,
            sig.values if sig.pairwise is None else sig.pairwise,
            exponent=2 * exp,
            error_bound=sig.values_bound if sig.pairwise_bound is None else sig.pairwise_bound,
            max_abs=_max_abs(
                pairwise_values(proxy.Q_) / pair.scale if proxy.Q_ is not None else None,
                None if norms is None else norms.pairwise,
            ),
        )
        first_order, pairwise = efficacy, float(quad[0] * pair.scale * 4.0**exp)
        efficacy = second_order_efficacy(
            first_order, pairwise, head.n_records, proxy.n_train_, proxy.curvature_share
        )
    dp_noise = None
    if head.dp_clip is not None and head.dp_noise_multiplier is not None:
        dp_noise = head.dp_clip * head.dp_noise_multiplier * float(np.linalg.norm(proxy.w_))
    flood = sig.values * rec.scale
    ledger.record_evaluation(head.artifact_id, "open", allow_repeat)  # concurrent opens race here
    return EfficacyReport(
        efficacy=efficacy,
        n_records=head.n_records,
        record_scores=scores,
        record_noise=float(np.hypot(flood, dp_noise or 0.0)) if head.per_record else None,
        dp_noise=dp_noise,
        dp_clip=head.dp_clip,
        artifact_id=head.artifact_id,
        commitment=head.commitment,
        seller=seller,
        proxy_kind=proxy.kind,
        units=proxy.units,
        first_order=first_order,
        pairwise=pairwise,
    )


def _max_abs(values: np.ndarray | None, norm_bound: float | None) -> float | None:
    """Largest block sum ``<values, x>`` with ``|x| <= norm_bound`` (plus CKKS slack)."""
    if values is None or norm_bound is None:
        return None
    return float(np.linalg.norm(values)) * norm_bound * (1.0 + 1e-6) + 1e-6


def open_partial(proxy: Proxy, session: Session, partial: PartialResult) -> EfficacyReport:
    """Remove the mask and the padding records' known score from a partial result.

    Raises
    ------
    ProtocolError
        If the partial result answers no pending result (unknown, already opened, or for
        another proxy), or is not signed by the data owner that sent the request.
    """
    rec = session.hidden(partial.artifact_id, ProtocolError)
    pending = session.pending_mask(partial.result_id, partial.artifact_id)
    if pending is None or pending.request_id != partial.request_id:
        raise ProtocolError(
            "this partial result answers no result this proxy is waiting for (unknown, "
            "already opened, or for another proxy); refusing it."
        )
    partial.check_signature(pending.seller)
    if not session.mark_opened(partial.result_id):
        raise ProtocolError("this result was opened meanwhile (by another process); refusing it.")
    value = partial.value - pending.mask_sum - pending.padding * pending.pad_score
    return EfficacyReport(
        efficacy=value / rec.scale,
        n_records=pending.n_records,
        record_scores=None,
        artifact_id=partial.artifact_id,
        commitment=pending.commitment,
        seller=pending.seller,
        proxy_kind=proxy.kind,
        units=proxy.units,
    )
