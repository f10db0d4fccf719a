"""Data owner, sealed-value mode: score local data against an artifact and seal the result."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from mde.crypto.context import load_context
from mde.crypto.flooding import norm_bounds
from mde.crypto.params import galois_steps
from mde.crypto.seal_io import check_artifact_encryptions, load_galois_keys
from mde.crypto.sealing import aggregate_exponent, pairwise_products, seal_blocks
from mde.data_owner.base import DataOwnerSession
from mde.data_owner.batch_work import PsiEngine, check_batch, run_local
from mde.data_owner.guard import admit_graph
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.offer_pass import OfferPass, OfferSummary, RecordSealer
from mde.data_owner.policy import GuardPolicy
from mde.errors import ArtifactError, InputError, ProtocolError, require
from mde.offers import RecordBatch, offer_batches
from mde.validation import check_matrix, encode_labels
from mde.wire.artifact import ArtifactManifest, SealedArtifact
from mde.wire.commitment import new_seed
from mde.wire.sealed_score import SealedScore
from mde.wire.signing import SigningKey, check_public_key

__all__ = ["Scorer"]


class Scorer(DataOwnerSession):
    """Scores local data against a sealed-value artifact and seals the result.

    Use :func:`mde.load_artifact` to make one. ``manifest`` holds the public metadata; the
    value vector stays encrypted and cannot be decrypted here.
    """

    mode = "sealed-value"
    manifest: ArtifactManifest
    last_summary: OfferSummary | None = None  # the last offer sealed (local, never sent)

    def __init__(
        self,
        artifact: SealedArtifact,
        *,
        trust_graph: bool = False,
        identity: SigningKey | None = None,
        ledger: DataOwnerLedger | None = None,
        policy: GuardPolicy | None = None,
        buyer: str | None = None,
    ) -> None:
        ts = require("tenseal")
        manifest, members = artifact.manifest, artifact.members
        self.policy = policy if policy is not None else GuardPolicy()
        if self.policy.dp is not None and trust_graph:
            raise InputError(
                "differential privacy needs an admitted (row-wise) psi graph: a trusted foreign "
                "graph could mix records across a batch. Do not combine dp with trust_graph."
            )
        admit_graph(members["psi.onnx"], manifest, trust_graph=trust_graph)
        self.manifest = manifest
        self.manifest_sha256 = artifact.digest
        self.buyer_key = check_public_key(artifact.signer, "the artifact's signer")
        self.buyer_name = buyer
        self.identity = identity if identity is not None else SigningKey.load_or_create()
        self.ledger = ledger if ledger is not None else DataOwnerLedger()
        self._context = load_context(
            members["context.tenseal"], ArtifactError, public=True, what="artifact's CKKS context"
        )
        try:
            self._enc_w = [
                ts.ckks_vector_from(self._context, members[f"w_{c}.ckks"])
                for c in range(manifest.layout.chunks)
            ]
            pairwise = manifest.pairwise_layout
            self._enc_q = (
                []
                if pairwise is None
                else [
                    ts.ckks_vector_from(self._context, members[f"q_{c}.ckks"])
                    for c in range(pairwise.chunks)
                ]
            )
        except Exception as exc:  # TenSEAL raises bare exceptions on crafted ciphertexts
            raise ArtifactError(
                f"artifact's encrypted value vector does not match its context: {exc}"
            ) from exc
        steps = galois_steps(manifest.layout, pairwise)
        self._galois = load_galois_keys(self._context, members["galois.seal"], steps, ArtifactError)
        check_artifact_encryptions(
            self._context, manifest.ckks, self._enc_w + self._enc_q, ArtifactError
        )
        self._members = {k: members[k] for k in ("psi.onnx", "known.npz") if k in members}
        self._engine = PsiEngine(
            members["psi.onnx"], members.get("known.npz"), manifest.n_features, manifest.psi_dim
        )
        self._known = self._engine.sketch

    @property
    def has_membership_sketch(self) -> bool:
        """Whether the artifact ships a membership sketch (its known records score zero)."""
        return self._known is not None

    def _validate(self, X: Any, y: Any, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
        Xa = check_matrix(
            X, self.manifest.n_features, finite=finite, feature_names=self.manifest.feature_names
        )
        return Xa, encode_labels(y, self.manifest.classes, Xa.shape[0])

    def psi(self, X: Any, y: Any, batch_size: int = 8192) -> np.ndarray:
        """Efficacy features of each record (n, m), computed with the artifact's ONNX graph."""
        Xa, yi = self._validate(X, y)
        return np.concatenate(
            [
                self._psi_batch(Xa[i : i + batch_size], yi[i : i + batch_size])
                for i in range(0, Xa.shape[0], batch_size)
            ]
        )

    def known(self, X: Any, y: Any) -> np.ndarray:
        """Boolean mask of records the artifact's membership sketch recognises as (near-)copies
        of the model owner's training records; they score zero. All False without a sketch."""
        Xa, yi = self._validate(X, y)
        if self._known is None:
            return np.zeros(Xa.shape[0], dtype=bool)
        return self._known.known(Xa, yi)

    def excluded(self, X: Any, y: Any) -> np.ndarray:
        """Boolean mask of the records that score zero: known to the membership sketch or
        outside the model owner's training support. All False without a sketch."""
        Xa, yi = self._validate(X, y)
        if self._known is None:
            return np.zeros(Xa.shape[0], dtype=bool)
        return self._known.excluded(Xa, yi)

    def _psi_batch(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        return self._engine.psi(np.ascontiguousarray(X, dtype=np.float32), y_idx)

    def score(
        self,
        X: Any,
        y: Any = None,
        per_record: bool = False,
        *,
        batch_size: int = 4096,
        label_column: str = "label",
        progress: bool = False,
        seed: bytes | None = None,
    ) -> SealedScore:
        """Score an offer against the artifact and seal it.

        Parameters
        ----------
        X : array (n, d), memory map, Parquet path, ``.npy`` path or iterable of batches
            The offer, read one batch at a time (:func:`mde.offers.offer_batches`).
        y : array (n,) of class labels (as in ``manifest.classes``), or None
            None for a Parquet offer (labels in ``label_column``) or an iterable of
            ``(X, y)`` batches.
        per_record : bool
            Seal each record's score separately (the model owner then learns every record's
            score); by default only the total is sealed.
        batch_size : int
            Records per batch; memory stays flat in n.
        label_column : str
            The label column of a Parquet offer.
        progress : bool
            Show a progress bar.
        seed : bytes or None
            The commitment's 32-byte salt seed; None draws a fresh one (always, unless
            re-scoring the same offer on another engine to compare).

        The guard (:class:`~mde.data_owner.policy.GuardPolicy`) checks this buyer's budgets
        and records the answer, with the commitment's salt seed, in the data owner's ledger
        before the score is returned; with ``policy.dp`` each record's psi is clipped and the
        released sum (or each record) gets Gaussian noise first.

        Raises
        ------
        BudgetError
            If the answer would pass a budget (nothing is released).
        IdentityError
            If the buyer's name is pinned to another key.
        InputError
            If a batch is malformed (the message names the record).

        Returns
        -------
        SealedScore
            Signed by the data owner's identity. For an ``order=2`` artifact the ciphertexts
            of the pairwise total ``s^T Q s`` follow those of the first-order block(s).
        """
        batches = self._batches(X, y, batch_size, label_column)
        passer = self.begin(per_record, seed)
        for _ in run_local(self._engine, self.check_batch, batches, passer, progress):
            pass
        return self.finish_offer(passer)

    def _batches(self, X: Any, y: Any, batch_size: int, label_column: str) -> Iterator[RecordBatch]:
        m = self.manifest
        return offer_batches(
            X,
            y,
            n_features=m.n_features,
            batch_size=batch_size,
            feature_names=m.feature_names,
            label_column=label_column,
        )

    def begin(self, per_record: bool, seed: bytes | None = None) -> OfferPass:
        """Start an offer's pass (refusing first what no data would change: pins, artifacts)."""
        if seed is not None and (not isinstance(seed, bytes) or len(seed) != 32):
            raise InputError("seed must be 32 bytes (mde.wire.commitment.new_seed()).")
        self.ledger.precheck(self.buyer_key, self.manifest_sha256, self.policy, self.buyer_name)
        m, dp = self.manifest, self.policy.dp
        clip = None if dp is None else self._dp_clip(dp.clip)
        z = None if dp is None else dp.noise_multiplier
        sealer = None
        if per_record:
            bound = (
                None if m.psi_clip is None else norm_bounds(m.psi_clip, m.psi_dim, clip, z).values
            )
            ctx, enc_w, keys, layout = self._context, self._enc_w, self._galois, m.layout

            def seal(block: np.ndarray) -> list[bytes]:
                return seal_blocks(ctx, enc_w, keys, block, layout, m.ckks, None, bound)

            std = None if z is None or clip is None else z * clip
            sealer = RecordSealer(seal, 16 * layout.tiles, std)
        seed = new_seed() if seed is None else seed
        return OfferPass(m.n_features, m.psi_dim, seed, self._known, clip, per_record, sealer)

    def check_batch(self, batch: RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        """A batch as scored: float32 records (finite) and class indices."""
        return check_batch(batch, list(self.manifest.classes))

    def finish_offer(self, passer: OfferPass) -> SealedScore:
        """Seal a finished pass, record the answer in the ledger, return the signed score."""
        n, m, pair = passer.n_records, self.manifest.psi_dim, self.manifest.pairwise_layout
        per_record, clip = passer.per_record, passer.clip
        numbers = (n if per_record else 1) + (pair is not None)
        dp = self.policy.dp
        z = None if dp is None or clip is None else dp.noise_multiplier
        psi_clip = self.manifest.psi_clip  # the public norm bounds the owner's flooding covers
        norms = None if psi_clip is None else norm_bounds(psi_clip, m, clip, z)
        rows, pairs = (None, None) if norms is None else (norms.values, norms.pairwise)
        layout, ckks, keys = self.manifest.layout, self.manifest.ckks, self._galois
        total = passer.total.value()
        if passer.sealer is not None:
            cts = passer.sealer.finish()
            u = passer.sealer.noised_sum if z is not None else total
        else:
            if z is not None and clip is not None:  # the Gaussian mechanism, before Enc(w)
                total = total + np.random.default_rng().normal(0.0, z * clip, m)
            # a total is sealed as sum / 2**e with 2**e >= n: O(1) values keep CKKS precise
            exp = aggregate_exponent(n)
            cts = seal_blocks(
                self._context,
                self._enc_w,
                keys,
                (total / 2.0**exp)[None, :],
                layout,
                ckks,
                exp,
                rows,
            )
            u = total
        assert u is not None  # n >= 1 records were combined
        if pair is not None:  # order-2 proxy: also seal s^T Q s
            e = aggregate_exponent(n)
            block = pairwise_products(u / 2.0**e)[None, :]
            cts += seal_blocks(self._context, self._enc_q, keys, block, pair, ckks, 2 * e, pairs)
        commitment = passer.committer.hexdigest()
        self.last_summary = OfferSummary(n, passer.n_zero, passer.total.value(), commitment)
        dataset = passer.fingerprint.hexdigest()
        passer.fingerprint.close()
        sealed = SealedScore.build(
            artifact_id=self.manifest.artifact_id,
            manifest_sha256=self.manifest_sha256,
            n_records=n,
            per_record=per_record,
            commitment=commitment,
            ciphertexts=cts,
            key=self.identity,
            dp_clip=clip,
            dp_noise_multiplier=z,
        )
        # the guard's budgets: checked and recorded (with the salt seed) before release
        self.ledger.record_answer(
            buyer=self.buyer_key,
            artifact=self.manifest_sha256,
            dataset=dataset,
            numbers=numbers,
            n_records=n,
            commitment=commitment,
            seed=passer.committer.seed,
            policy=self.policy,
            buyer_name=self.buyer_name,
        )
        return sealed

    def _dp_clip(self, clip: float | None) -> float:
        if clip is not None:
            return clip
        if self.manifest.psi_clip is None:
            raise InputError(
                "this artifact declares no psi_clip; give the DP clip bound (DPPolicy(clip=...))."
            )
        return self.manifest.psi_clip

    @property
    def awaiting_reply(self) -> bool:
        return False

    def prepare(self, X: Any, y: Any, **options: Any) -> SealedScore:
        """Same as :meth:`score` (the data owner's one message in sealed-value mode)."""
        return self.score(X, y, **options)

    def finish(self, reply: Any, **options: Any) -> None:
        """Sealed-value mode has no reply step: any message after the sealed score is refused.

        Raises
        ------
        ProtocolError
            Always: the model owner has nothing to send back in this mode.
        """
        raise ProtocolError(
            "sealed-value mode ends with the sealed score: no reply is expected, so this "
            "message is refused. Was it meant for a hidden-mode client?"
        )

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"Scorer(artifact_id={m.artifact_id!r}, kind={m.proxy_kind!r}, "
            f"n_features={m.n_features}, classes={m.classes})"
        )
