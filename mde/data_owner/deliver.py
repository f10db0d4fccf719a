"""Data owner, after a quote: deliver the records (all, or a bought subset), accept the
settlement.

A delivery sends the float32 records and class indices that were scored. For every record
it sends the salt seed; for a subset it sends only the bought records, each with its salt
and its Merkle inclusion proof, so the model owner verifies them against the commitment
without seeing the rest. The quote must be signed by the buyer the commitment was made for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.data_owner.ledger import DataOwnerLedger
from mde.errors import InputError, ProtocolError
from mde.validation import check_matrix, encode_labels
from mde.wire.artifact import ArtifactManifest, HiddenManifest
from mde.wire.commitment import Committer
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.merkle import inclusion_proofs, leaf_hashes, record_salts
from mde.wire.signing import SigningKey

__all__ = ["deliver", "accept_settlement"]


def _records(manifest: ArtifactManifest | HiddenManifest, X: Any, y: Any) -> tuple[Any, Any]:
    Xa = check_matrix(X, manifest.n_features, feature_names=manifest.feature_names)
    yi = encode_labels(y, manifest.classes, Xa.shape[0])
    return np.ascontiguousarray(Xa, dtype="<f4"), np.ascontiguousarray(yi, dtype="<i8")


def deliver(
    manifest: ArtifactManifest | HiddenManifest,
    ledger: DataOwnerLedger,
    identity: SigningKey,
    quote: SignedQuote,
    X: Any,
    y: Any,
    indices: Any = None,
) -> Delivery:
    """Deliver the scored records (``indices`` selects a bought subset) against ``quote``.

    Raises
    ------
    ProtocolError
        If the quote is not signed by the buyer the records were scored for, or names
        another seller.
    InputError
        If ``(X, y)`` are not the records that were scored, or ``indices`` are invalid.
    StorageError
        If this ledger made no such commitment.
    """
    seed, n, buyer = ledger.commitment(quote.commitment)
    quote.check_signature(buyer)
    if quote.seller != identity.public_hex:
        raise ProtocolError("this quote names another seller key than this data owner's.")
    X32, yi = _records(manifest, X, y)
    if X32.shape[0] != n:
        raise InputError(f"{X32.shape[0]} records given; {n} were scored. Pass the whole offer.")
    committer = Committer(X32.shape[1], seed)
    committer.update(X32, yi)
    if committer.hexdigest() != quote.commitment:
        raise InputError(
            "these records are not the ones that were scored (the commitment differs); "
            "deliver exactly the data you scored, in the same order."
        )
    root = committer.root_hex()
    if indices is None:
        index = np.arange(n, dtype="<i8")
        data = {"seed": seed}
    else:
        index = np.asarray(indices)
        if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer):
            raise InputError("indices must be a non-empty 1-d array of record positions.")
        index = np.unique(index).astype("<i8")
        if index[0] < 0 or index[-1] >= n:
            raise InputError(f"indices must lie in [0, {n}).")
        salts = np.concatenate([record_salts(seed, int(i), 1) for i in index])
        leaves = leaf_hashes(X32, yi, record_salts(seed, 0, n))
        proofs = inclusion_proofs(leaves, index.tolist())
        data = {"salts": salts.tobytes(), "proofs": b"".join(b"".join(p) for p in proofs)}
    data |= {
        "X.f4": X32[index].tobytes(),
        "y.i8": yi[index].tobytes(),
        "index.i8": index.tobytes(),
    }
    ledger.record_quote(quote.quote_id, buyer, quote.commitment, quote.price)
    return Delivery(
        quote_id=quote.quote_id,
        commitment=quote.commitment,
        root=root,
        n_records=n,
        n_features=X32.shape[1],
        n_delivered=len(index),
        data=data,
    ).signed(identity)


def accept_settlement(
    ledger: DataOwnerLedger, identity: SigningKey, settlement: Settlement
) -> Settlement:
    """Check the buyer's signed settlement against the quote delivered on and record it.

    Raises
    ------
    IdentityError
        If it is not signed by the buyer the records were scored for.
    ProtocolError
        If no delivery was made against its quote, or it names another commitment, seller
        or quoted price than that quote, pays more than the quote, or the quote was already
        settled by another settlement.
    StorageError
        If this ledger made no such commitment.
    """
    _, _, buyer = ledger.commitment(settlement.commitment)
    settlement.check_signature(buyer)
    quote = ledger.quote(settlement.quote_id)
    if quote is None:
        raise ProtocolError(
            f"no delivery was made against quote {settlement.quote_id!r} from this ledger; a "
            "settlement for it is refused."
        )
    q_buyer, q_commitment, q_price = quote
    if (q_buyer, q_commitment, q_price) != (buyer, settlement.commitment, settlement.quoted_price):
        raise ProtocolError(
            "this settlement names another commitment, buyer or quoted price than the quote the "
            "records were delivered against; refusing it."
        )
    if settlement.seller != identity.public_hex or settlement.price > q_price:
        raise ProtocolError(
            "this settlement is for another seller, or pays more than its own quote (a quote "
            "can only be lowered by verification); refusing it."
        )
    blob = ledger.record_settlement(
        settlement.quote_id, buyer, settlement.price, settlement.to_bytes()
    )
    return Settlement.from_bytes(blob)
