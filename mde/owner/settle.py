"""Model owner, after opening: quote a provisional price, verify the delivery, settle.

``quote = owner.quote(report, pricing)`` prices an opened report and records the quote
(with the report) in the model owner's ledger; it is signed and sent to the data owner.
``settlement = owner.settle(delivery, pricing)`` checks the delivery against the commitment
(the salt seed, or each record's inclusion proof for a subset), re-runs every screen
(membership sketch, outliers, copies) on the delivered records, checks the report's values,
prices the *recomputed* report with the same pricing function, and records the settlement
once per quote. A retry after a crash returns the settlement that was recorded.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import numpy as np

from mde.errors import DeliveryError, InputError, PricingError, ProtocolError, StorageError
from mde.owner.ledger import Ledger
from mde.owner.session import Session
from mde.owner.verify import verified_scores, verify_delivery
from mde.proxies.base import Proxy
from mde.report import EfficacyReport
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.merkle import (
    SALT_BYTES,
    commitment_hex,
    leaf_hashes,
    proof_length,
    verify_inclusion,
)
from mde.wire.signing import SigningKey

__all__ = ["make_quote", "settle", "Prices"]


class Prices(Protocol):
    """A pricing function (:mod:`pricing`): ``quote(report).price``."""

    def quote(self, report: EfficacyReport) -> Any: ...


def _price(pricing: Prices, report: EfficacyReport) -> float:
    price = float(pricing.quote(report).price)
    if not np.isfinite(price) or price < 0:
        raise PricingError(f"pricing returned {price}; a price must be finite and >= 0.")
    return price


def make_quote(
    report: EfficacyReport,
    pricing: Prices,
    identity: SigningKey,
    ledger: Ledger,
    spec: str | None = None,
) -> SignedQuote:
    """Price an opened report provisionally, record it, and sign the quote.

    ``spec`` names the pricing function in the quote (default its repr); the command line
    passes its ``--pricing`` spec so that ``mde settle`` prices with the same function.

    Raises
    ------
    DeliveryError
        If the report names no seller (it was not opened from a signed score).
    """
    if report.seller is None:
        raise DeliveryError("this report names no seller key; open a signed score to quote it.")
    price = _price(pricing, report)
    quote = SignedQuote(
        quote_id=uuid.uuid4().hex,
        artifact_id=report.artifact_id,
        commitment=report.commitment,
        seller=report.seller,
        n_records=report.n_records,
        efficacy=report.efficacy,
        price=price,
        pricing=(spec or repr(pricing))[:400],
    ).signed(identity)
    ledger.record_quote(
        quote.quote_id,
        report.artifact_id,
        report.commitment,
        report.seller,
        price,
        report.model_dump_json(),
        quote.pricing,
    )
    return quote


def _subset_proofs_ok(delivery: Delivery, X: np.ndarray, y: np.ndarray, index: np.ndarray) -> bool:
    """Whether every delivered record's salted leaf is in the committed tree."""
    root = bytes.fromhex(delivery.root)
    n = delivery.n_records
    if commitment_hex(root, n, delivery.n_features) != delivery.commitment:
        return False
    salts = np.frombuffer(delivery.data["salts"], dtype=np.uint8).reshape(-1, SALT_BYTES)
    nodes, pos = delivery.data["proofs"], 0
    for i, leaf in zip(index.tolist(), leaf_hashes(X, y, salts)):
        k = proof_length(i, n)
        proof = [nodes[pos + 32 * j : pos + 32 * (j + 1)] for j in range(k)]
        pos += 32 * k
        if not verify_inclusion(root, bytes(leaf), i, n, proof):
            return False
    return pos == len(nodes)


def _check_subset(report: EfficacyReport, pricing: Prices) -> None:
    """A subset settles only under per-record pricing (its quote lists accepted records) of
    an order-1 report: a whole-offer price for part of the offer would pay for records never
    delivered."""
    if report.pairwise is not None:
        raise DeliveryError(
            "an order-2 score prices the offer as a whole (its pairwise term is not a sum over "
            "records): deliver every record."
        )
    if pricing.quote(report).accepted_records is None:
        raise DeliveryError(
            "this quote prices the whole offer, not records one by one: deliver every record "
            "(a subset is settled under per-record pricing only)."
        )


def settle(
    proxy: Proxy,
    session: Session,
    ledger: Ledger,
    identity: SigningKey,
    delivery: Delivery,
    pricing: Prices,
    *,
    spec: str | None = None,
    rtol: float = 1e-4,
) -> Settlement:
    """Verify a delivery against its quote and settle at the verified price, with the
    pricing function the quote was made with (``spec`` as given to :func:`make_quote`;
    default its repr): a buyer cannot re-price after the delivery.

    Raises
    ------
    DeliveryError
        If the delivery is not the committed records, does not come from the seller that was
        quoted, or its values differ from the report.
    ProtocolError
        If the quote is unknown or the delivery is malformed.
    """
    seller, report_json, quoted, quoted_with = ledger.quote(delivery.quote_id)
    delivery.check_signature(seller)
    stored = ledger.settlement(delivery.quote_id)
    if stored is not None:
        return Settlement.from_bytes(stored)
    if (spec or repr(pricing))[:400] != quoted_with:
        raise ProtocolError(
            f"this quote was made with {quoted_with!r}; settle with the same pricing function "
            "(re-pricing after the delivery is refused)."
        )
    try:
        report = EfficacyReport.from_json(report_json)
    except InputError as exc:
        raise StorageError(f"the quote's report in the owner's ledger is damaged: {exc}") from exc
    if (delivery.commitment, delivery.n_records) != (report.commitment, report.n_records):
        raise DeliveryError(
            "the delivery is for another commitment or record count than the quoted score."
        )
    X, y, index = delivery.arrays()
    if np.any(y < 0) or np.any(y >= len(proxy.classes_)):
        raise DeliveryError("delivered class indices are outside the proxy's classes.")
    labels = proxy.classes_[y]
    if delivery.full:
        verified = verify_delivery(
            proxy, session, X, labels, report, seed=delivery.data["seed"], rtol=rtol
        )
        paid = report.n_records
    else:
        _check_subset(report, pricing)
        if not _subset_proofs_ok(delivery, X, y, index):
            raise DeliveryError(
                "a delivered record's salt or inclusion proof does not lead to the committed "
                "root: these are not the records that were scored. Do not pay for them."
            )
        scores = verified_scores(proxy, session, X, labels, index, report, rtol=rtol)
        verified = report.model_copy(
            update={
                "efficacy": float(scores.sum()),
                "n_records": len(scores),
                "record_scores": scores.tolist(),
                "first_order": None,
                "pairwise": None,
                "dp_noise": None,
            }
        )
        paid = len(scores)
    settlement = Settlement(
        quote_id=delivery.quote_id,
        artifact_id=report.artifact_id,
        commitment=report.commitment,
        seller=seller,
        n_records_paid=paid,
        quoted_price=quoted,
        price=min(_price(pricing, verified), quoted),  # verification only lowers a quote
        verified_efficacy=verified.efficacy,
    ).signed(identity)
    blob = ledger.record_settlement(delivery.quote_id, settlement.price, settlement.to_bytes())
    return Settlement.from_bytes(blob)
