"""Everything that crosses between the two owners, in one versioned envelope
(:mod:`mde.wire.envelope`; versions in :mod:`mde.wire.versions`)."""

from mde.wire.artifact import (
    ArtifactManifest,
    HiddenArtifact,
    HiddenManifest,
    SealedArtifact,
    read_artifact,
)
from mde.wire.commitment import Committer, commit
from mde.wire.envelope import Envelope
from mde.wire.messages import DataOwnerKey, EncryptedRecords, MaskedResult, PartialResult
from mde.wire.sealed_score import SealedHeader, SealedScore
from mde.wire.versions import FORMAT_VERSIONS

__all__ = [
    "ArtifactManifest",
    "HiddenManifest",
    "SealedArtifact",
    "HiddenArtifact",
    "read_artifact",
    "Committer",
    "commit",
    "Envelope",
    "EncryptedRecords",
    "MaskedResult",
    "PartialResult",
    "DataOwnerKey",
    "SealedScore",
    "SealedHeader",
    "FORMAT_VERSIONS",
    "read_message",
]


def read_message(data: bytes) -> SealedScore | PartialResult:
    """Parse a data owner's final message by its declared format: a sealed score
    (sealed-value mode) or a partial result (hidden mode).

    Raises
    ------
    SealedScoreError
        If the bytes are neither (or are damaged).
    """
    from mde.errors import SealedScoreError

    env = Envelope.from_bytes(data, (SealedScore.format, PartialResult.format), SealedScoreError)
    if env.format == PartialResult.format:  # parsed and hashed once, checked by its type
        return PartialResult.from_envelope(env)
    return SealedScore.from_envelope(env)
