"""Model owner, step 1: export the public artifact (sealed-value or hidden mode)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

from mde.crypto.context import public_context_bytes, secret_context_bytes
from mde.crypto.encrypted_graph import check_graph
from mde.crypto.flooding import flood_sigmas, norm_bounds
from mde.crypto.params import CKKSParams, galois_steps, hidden_params, make_layout
from mde.crypto.seal_io import galois_key_bytes
from mde.crypto.sealing import encrypt_values, pairwise_values
from mde.errors import InputError
from mde.owner.session import HiddenRecord, PairwiseRecord, SealedRecord, Session
from mde.proxies.base import CKKSEvaluable, Proxy
from mde.validation import as_native
from mde.wire.artifact import ArtifactManifest, HiddenArtifact, HiddenManifest, SealedArtifact
from mde.wire.signing import SigningKey

__all__ = ["default_ckks", "export_sealed", "export_hidden", "HIDDEN_FLOOD_SIGMA"]

HIDDEN_FLOOD_SIGMA = 2.0**-10


def default_ckks(proxy: Proxy) -> CKKSParams:
    """The default CKKS parameters (N = 8192) for every kind: the segment sum's rotations
    need a special prime as large as the data primes, which N = 4096 cannot afford."""
    return CKKSParams()


def _base_fields(proxy: Proxy, artifact_id: str) -> dict[str, Any]:
    return {
        "artifact_id": artifact_id,
        "proxy_kind": proxy.kind,
        "n_features": proxy.n_features_in_,
        "feature_names": proxy.feature_names_in_,
        "classes": [as_native(c) for c in proxy.classes_],
    }


def export_sealed(
    proxy: Proxy,
    session: Session,
    context: Any,
    params: CKKSParams,
    path: str | os.PathLike[str],
    identity: SigningKey,
) -> str:
    """Write a sealed-value artifact (psi graph, Enc(w / max|w|), public context, Galois keys
    for the layouts' rotations, sketch) and record its secrets in ``session``; return the new
    artifact id.

    ``w`` is scaled to max |w| = 1; the sentinel and meta key are fresh secrets per artifact,
    the pairwise values' sentinel comes from a disjoint range so swapped ciphertexts fail.
    """
    layout = make_layout(proxy.psi_dim_, params)
    rng = np.random.default_rng()
    scale = float(np.max(np.abs(proxy.w_))) or 1.0
    sentinel, meta_key = (float(v) for v in rng.uniform(1.0, 2.0, size=2))
    artifact_id = uuid.uuid4().hex
    members = {"psi.onnx": proxy.psi_graph(), "context.tenseal": public_context_bytes(context)}
    if proxy.known_ is not None:
        members["known.npz"] = proxy.known_.to_bytes()
    for c, blob in enumerate(encrypt_values(context, proxy.w_ / scale, layout, sentinel, meta_key)):
        members[f"w_{c}.ckks"] = blob
    pairwise = None
    if proxy.Q_ is not None:  # Enc(q) with <q, pairwise_products(s)> = s^T Q s
        q = pairwise_values(proxy.Q_)
        pairwise = PairwiseRecord(
            scale=float(np.max(np.abs(q))) or 1.0,
            sentinel=float(rng.uniform(3.0, 4.0)),
            meta_key=float(rng.uniform(1.0, 2.0)),
            layout=make_layout(len(q), params, per_record=False),
        )
        for c, blob in enumerate(
            encrypt_values(
                context, q / pairwise.scale, pairwise.layout, pairwise.sentinel, pairwise.meta_key
            )
        ):
            members[f"q_{c}.ckks"] = blob
    steps = galois_steps(layout, None if pairwise is None else pairwise.layout)
    members["galois.seal"] = galois_key_bytes(context, steps)
    manifest = ArtifactManifest(
        **_base_fields(proxy, artifact_id),
        psi_dim=proxy.psi_dim_,
        ckks=params,
        layout=layout,
        pairwise_layout=None if pairwise is None else pairwise.layout,
        psi_clip=proxy.psi_clip_,
    )
    artifact = SealedArtifact(manifest, members).signed(identity)
    # the secrets are recorded before the artifact leaves (a crash in between leaves a
    # record without an artifact, never an artifact that cannot be opened)
    session.add(
        artifact_id,
        SealedRecord(
            manifest_sha256=artifact.digest,
            scale=scale,
            sentinel=sentinel,
            meta_key=meta_key,
            flood_sigma=flood_sigmas(
                params,
                layout,
                norm_bounds(proxy.psi_clip_, proxy.psi_dim_),
                None if pairwise is None else pairwise.layout,
            ).values,
            ckks=params,
            psi_clip=proxy.psi_clip_,
            layout=layout,
            artifact_bytes=len(artifact.to_bytes()),
            pairwise=pairwise,
        ),
        secret=secret_context_bytes(context),  # each artifact has its own key
    )
    artifact.write(path)
    return artifact_id


def hidden_scale(proxy: CKKSEvaluable) -> float:
    """Scale of the encrypted score: per-record scores of test-like data at most ~4, far
    inside the CKKS range."""
    return 4.0 / float(proxy.score_bound_)


def export_hidden(
    proxy: Proxy, session: Session, path: str | os.PathLike[str], identity: SigningKey
) -> str:
    """Write a hidden-mode artifact (shapes, classes, CKKS parameters; no weights) and record
    it in ``session``; return the new artifact id.

    Raises
    ------
    InputError
        If the proxy's score is not CKKS-evaluable (only ``kind="influence-poly"`` is).
    """
    if not isinstance(proxy, CKKSEvaluable):
        raise InputError(
            f"the {proxy.kind!r} proxy has no CKKS-evaluable score; build kind='influence-poly' "
            "for hidden mode (or export in sealed-value mode)."
        )
    inputs = {"X": proxy.n_features_in_, "Y": len(proxy.classes_)}
    scale = hidden_scale(proxy)
    depth = check_graph(proxy.score_graph(scale), inputs, 7).depth
    params = hidden_params(depth)
    artifact_id = uuid.uuid4().hex
    manifest = HiddenManifest(
        **_base_fields(proxy, artifact_id),
        inputs=inputs,
        ckks=params,
        depth=depth,
        flood_sigma=HIDDEN_FLOOD_SIGMA,
    )
    artifact = HiddenArtifact(manifest).signed(identity)
    session.add(
        artifact_id,
        HiddenRecord(
            manifest_sha256=artifact.digest,
            scale=scale,
            flood_sigma=manifest.flood_sigma,
            ckks=params,
            artifact_bytes=len(artifact.to_bytes()),
        ),
    )
    artifact.write(path)
    return artifact_id
