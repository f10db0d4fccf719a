"""Data owner, hidden mode: the model owner evaluates its proxy on encrypted records.

Nothing of the proxy but its shapes leaves the model owner. The protocol (each message is a
wire envelope, :mod:`mde.wire.messages`; no pickle):

1. model owner: ``proxy.export(path, mode="hidden")`` writes a :class:`HiddenManifest`
   (shapes, classes, CKKS parameters, packing, flooding noise) and **no weights**;
2. data owner: ``client = mde.load_artifact(path)`` (a :class:`HiddenClient`);
   ``request = client.encrypt(X, y)`` encrypts the records under a fresh key it keeps,
   one ciphertext per feature and per one-hot label column, records packed in the slots,
   and sends them with a public context (relinearisation keys, no secret or rotation keys)
   and a commitment to the records;
3. model owner: ``result = proxy.evaluate_hidden(request)`` runs the score graph under CKKS
   (:mod:`mde.crypto.encrypted_graph`), sums over batches slot-wise, adds a random mask to every
   slot that it keeps, and returns one ciphertext;
4. data owner: ``partial = client.decrypt(result)`` decrypts, sums the slots, adds Gaussian
   flooding noise (never an exact decryption: Li and Micciancio's attack on CKKS) and
   returns one number;
5. model owner: ``report = proxy.open(partial)`` removes the mask and the padding slots'
   known score and returns an :class:`~mde.report.EfficacyReport`, priced as before.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

from mde.crypto.context import load_context, new_context, public_context_bytes, secret_context_bytes
from mde.data_owner.base import DataOwnerSession
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.policy import GuardPolicy
from mde.errors import InputError, ProtocolError, require
from mde.validation import check_matrix, encode_labels
from mde.wire.artifact import HiddenArtifact, HiddenManifest
from mde.wire.commitment import Committer, Fingerprint, new_seed
from mde.wire.envelope import read_bytes
from mde.wire.messages import (
    DataOwnerKey,
    EncryptedRecords,
    MaskedResult,
    PartialResult,
    join_blobs,
)
from mde.wire.signing import SigningKey, check_public_key

__all__ = ["HiddenClient"]


class HiddenClient(DataOwnerSession):
    """The data owner's side of hidden mode. Make one with :func:`mde.load_artifact`.

    The CKKS secret key is created by :meth:`encrypt` and stays here (save it with
    :meth:`save_key` to decrypt in another process).
    """

    mode = "hidden"
    manifest: HiddenManifest

    def __init__(
        self,
        artifact: HiddenArtifact,
        *,
        identity: SigningKey | None = None,
        ledger: DataOwnerLedger | None = None,
        policy: GuardPolicy | None = None,
    ) -> None:
        self.manifest = artifact.manifest
        self.manifest_sha256 = artifact.digest
        self.buyer_key = check_public_key(artifact.signer, "the artifact's signer")
        self.identity = identity if identity is not None else SigningKey.load_or_create()
        self.ledger = ledger if ledger is not None else DataOwnerLedger()
        self.policy = policy if policy is not None else GuardPolicy()
        if self.policy.dp is not None:
            raise InputError(
                "the DP mode is for sealed-value artifacts; hidden mode releases one flooded "
                "number per request (budgeted as one number)."
            )
        self._ctx: Any = None
        self._request_id: str | None = None
        self._decrypted: set[str] = set()
        self._request: tuple[str, str, int] | None = None  # commitment, dataset, n_records

    @property
    def awaiting_reply(self) -> bool:
        return self._ctx is not None and not self._decrypted

    def prepare(self, X: Any, y: Any, **options: Any) -> EncryptedRecords:
        """Same as :meth:`encrypt`."""
        return self.encrypt(X, y, **options)

    def finish(self, reply: Any, **options: Any) -> PartialResult:
        """Same as :meth:`decrypt`."""
        return self.decrypt(reply, **options)

    def encrypt(self, X: Any, y: Any, *, progress: bool = False) -> EncryptedRecords:
        """Encrypt records under a fresh key kept here; returns the message to send.

        Each batch of up to N/2 records becomes one ciphertext per feature and per class
        (one-hot label); the last batch is padded with zero records (the model owner removes
        their known score).
        """
        ts = require("tenseal")
        m = self.manifest
        self.ledger.precheck(self.buyer_key, self.manifest_sha256, self.policy)
        Xa = check_matrix(X, m.n_features, feature_names=m.feature_names)
        yi = encode_labels(y, m.classes, Xa.shape[0])
        X32 = Xa.astype(np.float32)
        seed = new_seed()
        committer, fingerprint = Committer(m.n_features, seed), Fingerprint(m.n_features)
        committer.update(X32, yi)
        fingerprint.update(X32, yi)
        self._ctx = new_context(m.ckks, symmetric=True)
        self._request_id = uuid.uuid4().hex
        self._decrypted = set()  # a new request: nothing of it was decrypted yet
        slots = m.ckks.slots
        k = len(m.classes)
        blobs = {}
        starts = range(0, Xa.shape[0], slots)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encrypting", unit="batch")
        for b, i in enumerate(starts):
            xb = np.zeros((slots, m.n_features))  # zero records pad the batch to full slots
            Yb = np.zeros((slots, k))
            rows = min(slots, Xa.shape[0] - i)
            xb[:rows] = X32[i : i + rows]
            Yb[np.arange(rows), yi[i : i + rows]] = 1.0
            blobs[f"b{b}_X"] = join_blobs(
                [ts.ckks_vector(self._ctx, xb[:, j]).serialize() for j in range(m.n_features)]
            )
            blobs[f"b{b}_Y"] = join_blobs(
                [ts.ckks_vector(self._ctx, Yb[:, j]).serialize() for j in range(k)]
            )
        blobs["context.tenseal"] = public_context_bytes(self._ctx, relin_keys=True)
        commitment = committer.hexdigest()
        self._request = (commitment, fingerprint.hexdigest(), Xa.shape[0])
        self.ledger.record_commitment(
            commitment, seed, Xa.shape[0], self._request[1], self.buyer_key, self.manifest_sha256
        )
        return EncryptedRecords(
            artifact_id=m.artifact_id,
            manifest_sha256=self.manifest_sha256,
            request_id=self._request_id,
            n_records=Xa.shape[0],
            n_batches=-(-Xa.shape[0] // slots),
            commitment=commitment,
            blobs=blobs,
        ).signed(self.identity)

    def decrypt(
        self, result: MaskedResult | bytes, *, random_state: int | np.random.Generator | None = None
    ) -> PartialResult:
        """Decrypt the masked result, sum its slots and add flooding noise; returns the one
        number to send back (the exact decryption never leaves this object).

        Raises
        ------
        ProtocolError
            If the result is for another request or artifact, is not signed by the buyer,
            answers a request already decrypted (this client or its ledger), or its
            ciphertext is not under this client's key.
        BudgetError
            If the answer would pass the buyer's budgets.
        """
        ts = require("tenseal")
        if isinstance(result, (bytes, bytearray)):
            result = MaskedResult.from_bytes(bytes(result))
        result.check_signature(self.buyer_key)
        if (
            self._ctx is None
            or result.request_id != self._request_id
            or result.artifact_id != self.artifact_id
        ):
            raise ProtocolError(
                "this result answers another request (or this client encrypted nothing); "
                "decrypt it with the client (or key file) that made the request."
            )
        if self._decrypted or self.ledger.decrypted(result.request_id):
            raise ProtocolError(
                "a result for this request was already decrypted once; a second decryption "
                "would leak more. Encrypt again (a new request) to score again."
            )
        try:
            values = np.asarray(ts.ckks_vector_from(self._ctx, result.ciphertext).decrypt())
        except Exception as exc:
            raise ProtocolError(
                f"result ciphertext does not belong to this client's key or is damaged: {exc}"
            ) from exc
        cap = self.manifest.ckks.capacity
        if (
            values.shape != (self.manifest.ckks.slots,)
            or not np.all(np.isfinite(values))
            or np.abs(values).max() > cap
        ):
            raise ProtocolError(
                f"decrypted slots are outside the CKKS range (|v| <= {cap:g}): the result is "
                "corrupt or the records overflowed the parameters; no score is returned."
            )
        rng = np.random.default_rng(random_state)
        value = float(values.sum() + rng.normal(0.0, self.manifest.flood_sigma))
        if self._request is None:  # pragma: no cover - set with _ctx by encrypt or load_key
            raise ProtocolError("this client has no request state; load its key file.")
        commitment, dataset, n = self._request
        # budget and the one decryption, recorded before the number is released
        self.ledger.record_answer(
            buyer=self.buyer_key,
            artifact=self.manifest_sha256,
            dataset=dataset,
            numbers=1,
            n_records=n,
            commitment=commitment,
            seed=None,  # recorded when the request was encrypted
            policy=self.policy,
            decryption=(result.request_id, result.result_id),
        )
        self._decrypted.add(result.result_id)
        return PartialResult(
            artifact_id=result.artifact_id,
            request_id=result.request_id,
            result_id=result.result_id,
            value=value,
        ).signed(self.identity)

    def save_key(self, path: str | os.PathLike[str]) -> None:
        """Save the secret key and request state (keep this file private)."""
        if self._ctx is None or self._request_id is None or self._request is None:
            raise ProtocolError("nothing was encrypted yet, so there is no key to save.")
        commitment, dataset, n = self._request
        key = DataOwnerKey(
            artifact_id=self.artifact_id,
            request_id=self._request_id,
            decrypted=sorted(self._decrypted),
            commitment=commitment,
            dataset=dataset,
            n_records=n,
            secret_context=secret_context_bytes(self._ctx),
        )
        key.write(path, private=True)  # the CKKS secret key

    def load_key(self, path: str | os.PathLike[str]) -> None:
        """Load a key saved with :meth:`save_key`.

        Raises
        ------
        ProtocolError
            If the file is not a key file, is damaged, or belongs to another artifact.
        """
        key = DataOwnerKey.from_bytes(read_bytes(path, "key", ProtocolError))
        if key.artifact_id != self.artifact_id:
            raise ProtocolError("this key file belongs to a request for another artifact.")
        self._ctx = load_context(
            key.secret_context, ProtocolError, public=False, what="the key file's context"
        )
        if not self._ctx.is_private():
            raise ProtocolError("the key file holds no secret key; it cannot decrypt anything.")
        self._request_id = key.request_id
        self._decrypted = set(key.decrypted)
        self._request = (key.commitment, key.dataset, key.n_records)

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"HiddenClient(artifact_id={m.artifact_id!r}, kind={m.proxy_kind!r}, "
            f"n_features={m.n_features})"
        )
