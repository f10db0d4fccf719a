"""The data owner's interface, the same for both modes.

``message = session.prepare(X, y)`` makes the first message to send; while
``session.awaiting_reply`` is True, ``session.finish(reply)`` turns the model owner's reply
into the next message. Sealed-value mode (:class:`~mde.data_owner.sealed.Scorer`) sends one
sealed score and expects no reply; hidden mode (:class:`~mde.data_owner.hidden.HiddenClient`)
sends encrypted records, receives a masked result and sends back one flooded number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mde.data_owner.deliver import accept_settlement, deliver
from mde.data_owner.ledger import DataOwnerLedger
from mde.wire.artifact import ArtifactManifest, HiddenManifest
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.signing import SigningKey

__all__ = ["DataOwnerSession"]


class DataOwnerSession(ABC):
    """One data owner's deal against one artifact."""

    mode: str
    manifest: ArtifactManifest | HiddenManifest
    manifest_sha256: str
    buyer_key: str
    identity: SigningKey
    ledger: DataOwnerLedger

    @property
    def artifact_id(self) -> str:
        return self.manifest.artifact_id

    @property
    def classes(self) -> list[Any]:
        return list(self.manifest.classes)

    @property
    @abstractmethod
    def awaiting_reply(self) -> bool:
        """Whether the last message sent expects a reply from the model owner."""

    @abstractmethod
    def prepare(self, X: Any, y: Any, **options: Any) -> Any:
        """Score or encrypt the records; return the first message (it has ``to_bytes()``)."""

    @abstractmethod
    def finish(self, reply: Any, **options: Any) -> Any:
        """Answer the model owner's reply; return the next message, or None when done."""

    def deliver(
        self, quote: SignedQuote | bytes, X: Any, y: Any, *, indices: Any = None
    ) -> Delivery:
        """Deliver the scored records against a buyer's quote (``indices``: a bought subset,
        sent with salts and inclusion proofs); see :func:`mde.data_owner.deliver.deliver`."""
        if isinstance(quote, (bytes, bytearray)):
            quote = SignedQuote.from_bytes(bytes(quote))
        return deliver(self.manifest, self.ledger, self.identity, quote, X, y, indices)

    def accept_settlement(self, settlement: Settlement | bytes) -> Settlement:
        """Check and record the buyer's signed settlement in the data owner's ledger."""
        if isinstance(settlement, (bytes, bytearray)):
            settlement = Settlement.from_bytes(bytes(settlement))
        return accept_settlement(self.ledger, self.identity, settlement)
