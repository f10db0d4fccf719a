"""The model owner's session: one typed record per exported artifact, evaluation counts and
pending hidden-mode masks. Saved inside the private proxy file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from mde.crypto.params import CKKSParams, Layout
from mde.errors import MDEError

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
    flood_sigma: float
    layout: Layout
    artifact_bytes: int
    pairwise: PairwiseRecord | None = None


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
    """State of one hidden-mode artifact: its scale, parameters and pending masks."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["hidden"] = "hidden"
    manifest_sha256: str
    scale: float
    flood_sigma: float
    ckks: CKKSParams
    artifact_bytes: int
    pending: dict[str, PendingMask] = Field(default_factory=dict)


ArtifactRecord = Annotated[SealedRecord | HiddenRecord, Field(discriminator="mode")]


class Session(BaseModel):
    """Every artifact a proxy exported, and how often each was evaluated."""

    model_config = ConfigDict(extra="forbid")

    artifacts: dict[str, ArtifactRecord] = Field(default_factory=dict)
    opened: dict[str, int] = Field(default_factory=dict)

    def sealed(self, artifact_id: str, error: type[MDEError]) -> SealedRecord:
        """The sealed-value record of ``artifact_id``; ``error`` if there is none."""
        rec = self.artifacts.get(artifact_id)
        if not isinstance(rec, SealedRecord):
            raise error(
                f"this is for artifact {artifact_id!r}, which this proxy did not export in "
                "sealed-value mode "
                f"(it exported {sorted(self.artifacts)[:5]}); use the proxy that made that "
                "artifact."
            )
        return rec

    def hidden(self, artifact_id: str, error: type[MDEError]) -> HiddenRecord:
        """The hidden-mode record of ``artifact_id``; ``error`` if there is none."""
        rec = self.artifacts.get(artifact_id)
        if not isinstance(rec, HiddenRecord):
            raise error(
                f"this is for artifact {artifact_id!r}, which this proxy did not export in hidden "
                "mode."
            )
        return rec

    def count(self, artifact_id: str) -> None:
        """Record one more evaluation of ``artifact_id``."""
        self.opened[artifact_id] = self.opened.get(artifact_id, 0) + 1
