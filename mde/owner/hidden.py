"""Model owner, hidden mode: evaluate the proxy's score graph on encrypted records.

The data owner's records arrive encrypted under its own key (:mod:`mde.data_owner.hidden`);
the score graph runs under CKKS (:mod:`mde.crypto.encrypted_graph`), batches are summed
slot-wise, a random mask kept in the session is added to every slot, and one ciphertext
goes back. The mask is removed when the partial result is opened (:mod:`mde.owner.open`).
"""

from __future__ import annotations

import uuid

import numpy as np

from mde.crypto.context import context_matches, load_context
from mde.crypto.encrypted_graph import GraphPlan, check_graph, run_encrypted, run_float64
from mde.errors import MDEError, ProtocolError, require
from mde.owner.ledger import Ledger
from mde.owner.session import PendingMask, Session
from mde.proxies.base import CKKSEvaluable, Proxy
from mde.wire.messages import EncryptedRecords, MaskedResult, split_blobs
from mde.wire.signing import SigningKey

__all__ = ["evaluate_hidden"]


def _plan(proxy: Proxy, scale: float, max_depth: int) -> GraphPlan:
    if not isinstance(proxy, CKKSEvaluable):
        raise ProtocolError(f"the {proxy.kind!r} proxy has no CKKS-evaluable score.")
    return check_graph(
        proxy.score_graph(scale), {"X": proxy.n_features_in_, "Y": len(proxy.classes_)}, max_depth
    )


def evaluate_hidden(
    proxy: Proxy,
    session: Session,
    ledger: Ledger,
    request: EncryptedRecords,
    identity: SigningKey,
    *,
    allow_repeat: bool = False,
    random_state: int | np.random.Generator | None = None,
) -> MaskedResult:
    """Run the score graph on a data owner's encrypted records; return the masked result.

    Raises
    ------
    ProtocolError
        If the request is unsigned or changed after signing, is for another or a modified
        artifact, carries a secret key, has other
        CKKS parameters, or its ciphertexts do not load under its context.
    ReplayError
        If the artifact was already evaluated and ``allow_repeat`` is False.
    """
    ts = require("tenseal")
    seller = request.check_signature()
    rec = session.hidden(request.artifact_id, ProtocolError)
    if request.manifest_sha256 != rec.manifest_sha256:
        raise ProtocolError(
            "request was made against a modified copy of the artifact; refusing it."
        )
    ledger.check(request.artifact_id, allow_repeat)
    params = rec.ckks
    expected = {"context.tenseal"} | {
        f"b{b}_{n}" for b in range(request.n_batches) for n in ("X", "Y")
    }
    if (
        set(request.blobs) != expected
        or request.n_records > request.n_batches * params.slots
        or request.n_records <= (request.n_batches - 1) * params.slots
    ):
        raise ProtocolError(
            f"request holds members {sorted(request.blobs)[:5]}...; expected {request.n_batches} "
            "batches of X and Y ciphertexts for its record count."
        )
    ctx = load_context(
        request.blobs["context.tenseal"], ProtocolError, public=True, what="request's CKKS context"
    )
    if not context_matches(ctx, params):
        raise ProtocolError(
            "request's CKKS context has other parameters than the artifact; refusing it."
        )
    plan = _plan(proxy, rec.scale, len(params.coeff_mod_bit_sizes) - 2)
    widths = {"X": proxy.n_features_in_, "Y": len(proxy.classes_)}
    total = None
    for b in range(request.n_batches):
        try:
            cols = {
                n: [
                    ts.ckks_vector_from(ctx, blob)
                    for blob in split_blobs(request.blobs[f"b{b}_{n}"])
                ]
                for n in ("X", "Y")
            }
            if any(len(cols[n]) != widths[n] for n in cols):
                raise ProtocolError(
                    f"batch {b} holds {len(cols['X'])} feature and {len(cols['Y'])} label "
                    f"ciphertexts; the artifact needs {widths['X']} and {widths['Y']}."
                )
            out = run_encrypted(plan, cols)[0]
        except MDEError:
            raise
        except Exception as exc:  # TenSEAL raises bare exceptions on crafted ciphertexts
            raise ProtocolError(
                f"batch {b}'s ciphertexts do not load or evaluate under the request's context: "
                f"{exc}"
            ) from exc
        total = out if total is None else total + out
    rng = np.random.default_rng(random_state)
    mask = rng.uniform(-params.mask_bound, params.mask_bound, params.slots)
    masked = total + mask.tolist()
    zero = {"X": np.zeros((1, proxy.n_features_in_)), "Y": np.zeros((1, len(proxy.classes_)))}
    result_id = uuid.uuid4().hex
    pending = PendingMask(
        request_id=request.request_id,
        mask_sum=float(mask.sum()),
        padding=request.n_batches * params.slots - request.n_records,
        pad_score=float(run_float64(plan, zero).ravel()[0]),
        n_records=request.n_records,
        commitment=request.commitment,
        seller=seller,
    )
    # the evaluation and the mask that opens it are recorded together
    ledger.record_evaluation(
        request.artifact_id,
        "evaluate-hidden",
        allow_repeat,
        pending=(result_id, pending.model_dump_json()),
    )
    return MaskedResult(
        artifact_id=request.artifact_id,
        request_id=request.request_id,
        result_id=result_id,
        ciphertext=masked.serialize(),
    ).signed(identity)
