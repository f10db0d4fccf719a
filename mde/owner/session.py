"""The model owner's session: one typed record per exported artifact (the secrets needed to
open what comes back) and the pending hidden-mode masks, kept in the owner's ledger
(:mod:`mde.owner.ledger`), not in the proxy file: the proxy file holds the model."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mde.crypto.flooding import FloodSigmas, NormBounds, flood_sigmas, norm_bounds
from mde.crypto.params import CKKSParams, Layout
from mde.errors import MDEError, StorageError
from mde.owner.ledger import Ledger

__all__ = [
    "SealedRecord",
    "PairwiseRecord",
    "HiddenRecord",
    "PendingMask",
    "Session",
    "ArtifactRecord",
]


class PairwiseRecord(BaseModel):
    """Secrets of the encrypted pairwise values of an ``order=2`` artifact."""

    model_config = ConfigDict(extra="forbid")

    scale: float
    sentinel: float
    meta_key: float
    layout: Layout


class SealedRecord(BaseModel):
    """Secrets the owner needs to open sealed scores made against one artifact."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["sealed-value"] = "sealed-value"
    manifest_sha256: str
    scale: float
    sentinel: float
    meta_key: float
    flood_sigma: float  # the values sigma without DP (what records saved before ckks use)
    layout: Layout
    artifact_bytes: int
    pairwise: PairwiseRecord | None = None
    ckks: CKKSParams | None = None  # with psi_clip: per-block flooding (mde.crypto.flooding)
    psi_clip: float | None = None

    def sigmas(
        self, dp_clip: float | None = None, dp_noise_multiplier: float | None = None
    ) -> FloodSigmas:
        """Flooding sigma per block kind for one answer (its DP parameters, if any, from the
        signed header): ``flood_sigmas`` at the artifact's public norm bounds."""
        norms = self.norms(dp_clip, dp_noise_multiplier)
        if self.ckks is None or norms is None:  # recorded before per-block flooding
            pair = None if self.pairwise is None else self.flood_sigma
            return FloodSigmas(self.flood_sigma, pair, self.flood_sigma, pair)
        pairwise = None if self.pairwise is None else self.pairwise.layout
        return flood_sigmas(self.ckks, self.layout, norms, pairwise)

    def norms(
        self, dp_clip: float | None = None, dp_noise_multiplier: float | None = None
    ) -> NormBounds | None:
        """The public norm bounds the data owner enforced for one answer (None for records
        from before ``psi_clip`` was declared)."""
        if self.psi_clip is None:
            return None
        return norm_bounds(self.psi_clip, self.layout.dim, dp_clip, dp_noise_multiplier)


class PendingMask(BaseModel):
    """A masked result sent to the data owner and not yet opened."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    mask_sum: float
    padding: int
    pad_score: float
    n_records: int
    commitment: str
    seller: str


class HiddenRecord(BaseModel):
    """State of one hidden-mode artifact: its scale and parameters."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["hidden"] = "hidden"
    manifest_sha256: str
    scale: float
    flood_sigma: float
    ckks: CKKSParams
    artifact_bytes: int


ArtifactRecord = Annotated[SealedRecord | HiddenRecord, Field(discriminator="mode")]
_RECORD: TypeAdapter[SealedRecord | HiddenRecord] = TypeAdapter(ArtifactRecord)
T = TypeVar("T")
_MASK: TypeAdapter[PendingMask] = TypeAdapter(PendingMask)


class Session:
    """The artifacts one proxy exported, read from and written to the owner's ledger.

    Parameters
    ----------
    ledger : Ledger
    proxy_id : str
        The proxy's id (kept in its proxy file): artifacts of other proxies sharing the
        ledger are not this session's.
    """

    def __init__(self, ledger: Ledger, proxy_id: str) -> None:
        self.ledger = ledger
        self.proxy_id = proxy_id

    def _parse(self, artifact_id: str, text: str) -> SealedRecord | HiddenRecord:
        return self._read(_RECORD, text, f"record of artifact {artifact_id!r}")

    def _read(self, adapter: TypeAdapter[T], text: str, what: str) -> T:
        """Parse a row the ledger holds; a damaged one is a StorageError naming it."""
        try:
            return adapter.validate_json(text)
        except ValidationError as exc:
            raise StorageError(
                f"ledger {str(self.ledger.path)!r} holds a damaged {what}: {exc.errors()[0]['msg']}"
            ) from exc

    def add(
        self, artifact_id: str, record: SealedRecord | HiddenRecord, secret: bytes | None = None
    ) -> None:
        """Record an exported artifact's secrets, with its own CKKS secret key ``secret``
        (sealed-value mode), before its file is written."""
        self.ledger.record_artifact(artifact_id, self.proxy_id, record.model_dump_json(), secret)

    def secret(self, artifact_id: str) -> bytes | None:
        """The CKKS secret key ``artifact_id`` was exported under, or None."""
        return self.ledger.artifact_secret(artifact_id, self.proxy_id)

    def get(self, artifact_id: str) -> SealedRecord | HiddenRecord | None:
        """The record of ``artifact_id`` if this proxy exported it, else None."""
        found = self.ledger.artifact(artifact_id)
        if found is None or found[0] != self.proxy_id:
            return None
        return self._parse(artifact_id, found[1])

    @property
    def artifacts(self) -> dict[str, SealedRecord | HiddenRecord]:
        """Every artifact this proxy exported, in export order."""
        return {a: self._parse(a, t) for a, t in self.ledger.artifacts(self.proxy_id)}

    @property
    def opened(self) -> dict[str, int]:
        """How often each exported artifact was evaluated (artifacts never evaluated are
        left out)."""
        counts = {a: self.ledger.evaluations(a) for a, _ in self.ledger.artifacts(self.proxy_id)}
        return {a: c for a, c in counts.items() if c}

    def sealed(self, artifact_id: str, error: type[MDEError]) -> SealedRecord:
        """The sealed-value record of ``artifact_id``; ``error`` if there is none."""
        rec = self.get(artifact_id)
        if not isinstance(rec, SealedRecord):
            raise error(
                f"this is for artifact {artifact_id!r}, which this proxy did not export in "
                "sealed-value mode; use the proxy (and ledger) that made that artifact."
            )
        return rec

    def hidden(self, artifact_id: str, error: type[MDEError]) -> HiddenRecord:
        """The hidden-mode record of ``artifact_id``; ``error`` if there is none."""
        rec = self.get(artifact_id)
        if not isinstance(rec, HiddenRecord):
            raise error(
                f"this is for artifact {artifact_id!r}, which this proxy did not export in hidden "
                "mode; use the proxy (and ledger) that made that artifact."
            )
        return rec

    def pending(self, artifact_id: str) -> list[str]:
        """Result ids of ``artifact_id``'s masked results not opened yet."""
        return self.ledger.pending(artifact_id)

    def pending_mask(self, result_id: str, artifact_id: str) -> PendingMask | None:
        """The mask of a result of ``artifact_id`` not opened yet, or None."""
        text = self.ledger.pending_mask(result_id, artifact_id)
        if text is None:
            return None
        return self._read(_MASK, text, f"mask for result {result_id!r}")

    def mark_opened(self, result_id: str) -> bool:
        """Mark a pending result opened, once; False if it already was."""
        return self.ledger.mark_opened(result_id)
