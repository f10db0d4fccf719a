"""Data owner, step 1: load and check an artifact; get the session for its mode."""

from __future__ import annotations

import os

from mde.data_owner.base import DataOwnerSession
from mde.data_owner.hidden import HiddenClient
from mde.data_owner.sealed import Scorer
from mde.wire.artifact import HiddenArtifact, read_artifact

__all__ = ["load_artifact"]


def load_artifact(
    path: str | os.PathLike[str] | bytes, *, trust_graph: bool = False
) -> DataOwnerSession:
    """Load and verify a public artifact (every member hash, the version, no secret key).

    Returns
    -------
    DataOwnerSession
        A :class:`~mde.data_owner.sealed.Scorer` for a sealed-value artifact, a
        :class:`~mde.data_owner.hidden.HiddenClient` for a hidden-mode one; both offer
        ``prepare(X, y)`` / ``finish(reply)``.

    ``trust_graph=True`` admits a psi graph of a proxy kind the guard has no template for
    (:mod:`mde.data_owner.guard`); built-in kinds are always checked against their template.

    Raises
    ------
    ArtifactError
        If the psi graph is not its kind's documented graph, or the artifact is tampered,
        of another version, unsafe, or holds a secret key.
    """
    artifact = read_artifact(path)
    if isinstance(artifact, HiddenArtifact):
        return HiddenClient(artifact)
    return Scorer(artifact, trust_graph=trust_graph)
