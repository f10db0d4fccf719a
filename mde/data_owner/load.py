"""Data owner, step 1: load and check an artifact; get the session for its mode."""

from __future__ import annotations

import os

from mde.data_owner.base import DataOwnerSession
from mde.data_owner.hidden import HiddenClient
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.policy import GuardPolicy
from mde.data_owner.sealed import Scorer
from mde.wire.artifact import HiddenArtifact, read_artifact
from mde.wire.signing import SigningKey, check_public_key

__all__ = ["load_artifact"]


def load_artifact(
    path: str | os.PathLike[str] | bytes,
    *,
    trust_graph: bool = False,
    identity: SigningKey | None = None,
    ledger: DataOwnerLedger | str | os.PathLike[str] | None = None,
    policy: GuardPolicy | None = None,
    buyer: str | None = None,
) -> DataOwnerSession:
    """Load and verify a public artifact (every member hash, the version, no secret key).

    Returns
    -------
    DataOwnerSession
        A :class:`~mde.data_owner.sealed.Scorer` for a sealed-value artifact, a
        :class:`~mde.data_owner.hidden.HiddenClient` for a hidden-mode one; both offer
        ``prepare(X, y)`` / ``finish(reply)``.

    The artifact must be signed; its signer is the buyer. ``buyer`` names it: the first
    artifact under a name pins its key in the data owner's ledger (trust on first use), and
    an artifact signed by another key under that name is refused. ``identity`` is the data
    owner's signing key (default ``$MDE_HOME/identity.pem``, made on first use), ``ledger``
    its ledger (default ``$MDE_HOME/data-owner-ledger.sqlite``), ``policy`` the guard's
    budgets and DP mode (:class:`~mde.data_owner.policy.GuardPolicy`).

    ``trust_graph=True`` admits a psi graph of a proxy kind the guard has no template for
    (:mod:`mde.data_owner.guard`); built-in kinds are always checked against their template.

    Raises
    ------
    ArtifactError
        If the psi graph is not its kind's documented graph, or the artifact is unsigned,
        tampered, of another version, unsafe, or holds a secret key.
    IdentityError
        If ``buyer`` is pinned to another key than the artifact's signer.
    """
    artifact = read_artifact(path)
    identity = identity if identity is not None else SigningKey.load_or_create()
    book = ledger if isinstance(ledger, DataOwnerLedger) else DataOwnerLedger(ledger)
    session: DataOwnerSession = (
        HiddenClient(artifact, identity=identity, ledger=book, policy=policy)
        if isinstance(artifact, HiddenArtifact)
        else Scorer(
            artifact,
            trust_graph=trust_graph,
            identity=identity,
            ledger=book,
            policy=policy,
            buyer=buyer,
        )
    )
    if buyer is not None:  # pinned only once the guard admitted the artifact
        book.pin(buyer, check_public_key(artifact.signer, "the artifact's signer"))
    return session
