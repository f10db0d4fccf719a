"""Data owner, sealed-value mode: score local data against an artifact and seal the result."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mde.crypto.context import load_context
from mde.crypto.flooding import norm_bounds
from mde.crypto.params import galois_steps
from mde.crypto.seal_io import check_artifact_encryptions, load_galois_keys
from mde.crypto.sealing import aggregate_exponent, pairwise_products, seal_blocks
from mde.data_owner.base import DataOwnerSession
from mde.data_owner.guard import admit_graph
from mde.data_owner.ledger import DataOwnerLedger
from mde.data_owner.policy import GuardPolicy
from mde.errors import ArtifactError, InputError, ProtocolError, require
from mde.numerics import clip_rows
from mde.proxies.membership import MembershipSketch, offer_repeats
from mde.validation import check_finite, check_matrix, encode_labels
from mde.wire.artifact import ArtifactManifest, SealedArtifact
from mde.wire.commitment import Committer, Fingerprint, new_seed
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
        ort = require("onnxruntime")
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
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # one compute thread: the other core hashes the commitment in parallel (measured
            # faster on 2 cores than two onnxruntime threads competing with the hasher)
            opts.intra_op_num_threads = 1
            self._session = ort.InferenceSession(
                members["psi.onnx"], opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types on crafted graphs
            raise ArtifactError(
                f"artifact's psi graph cannot be loaded by onnxruntime: {exc}"
            ) from exc
        self._known = (
            MembershipSketch.from_bytes(members["known.npz"], manifest.n_features)
            if "known.npz" in members
            else None
        )
        names = sorted(i.name for i in self._session.get_inputs())
        if names != ["X", "y"] or "psi" not in [o.name for o in self._session.get_outputs()]:
            raise ArtifactError(
                f"artifact's psi graph has inputs {names}; expected X and y with output psi."
            )

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
        out = self._session.run(
            ["psi"],
            {
                "X": np.ascontiguousarray(X, dtype=np.float32),
                "y": np.ascontiguousarray(y_idx, dtype=np.int64),
            },
        )[0]
        if out.shape != (X.shape[0], self.manifest.psi_dim):
            raise ArtifactError(
                f"psi graph returned shape {out.shape}; manifest says (n, {self.manifest.psi_dim})."
            )
        return out

    def score(
        self,
        X: Any,
        y: Any,
        per_record: bool = False,
        *,
        batch_size: int = 1024,
        progress: bool = False,
    ) -> SealedScore:
        """Score ``(X, y)`` against the artifact and seal it.

        Parameters
        ----------
        X : array (n, d)
        y : array (n,) of class labels (as in ``manifest.classes``)
        per_record : bool
            Seal each record's score separately (the model owner then learns every record's
            score); by default only the total is sealed.
        batch_size : int
            Records per ONNX batch; memory stays flat in n.
        progress : bool
            Show a progress bar.

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

        Returns
        -------
        SealedScore
            Signed by the data owner's identity. For an ``order=2`` artifact the ciphertexts
            of the pairwise total ``s^T Q s`` follow those of the first-order block(s).
        """
        if (
            not isinstance(batch_size, (int, np.integer))
            or isinstance(batch_size, bool)
            or batch_size < 1
        ):
            raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")
        # refuse what no data would change (pins, artifacts) before any record is scored
        self.ledger.precheck(self.buyer_key, self.manifest_sha256, self.policy, self.buyer_name)
        Xa, yi = self._validate(X, y, finite=False)  # finiteness is checked per float32 batch
        n, m = Xa.shape[0], self.manifest.psi_dim
        pair = self.manifest.pairwise_layout
        numbers = (n if per_record else 1) + (pair is not None)
        repeated = offer_repeats(Xa, yi, self._known)  # (near-)copies in the offer count once
        seed = new_seed()
        committer, fingerprint = Committer(Xa.shape[1], seed), Fingerprint(Xa.shape[1])
        dp = self.policy.dp
        clip = None if dp is None else self._dp_clip(dp.clip)
        total = np.zeros(m)
        per: list[np.ndarray] = []
        starts = range(0, n, batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="scoring", unit="batch")
        # hashing (one ordered worker thread; hashlib releases the GIL) overlaps with onnxruntime
        with ThreadPoolExecutor(max_workers=1) as hasher:
            pending = []
            for i in starts:
                xb = np.ascontiguousarray(Xa[i : i + batch_size], dtype=np.float32)
                check_finite(xb, offset=i)
                yb = yi[i : i + batch_size]
                pending.append(hasher.submit(committer.update, xb, yb))
                pending.append(hasher.submit(fingerprint.update, xb, yb))
                psi = self._psi_batch(xb, yb)
                psi[repeated[i : i + batch_size]] = 0.0
                if self._known is not None:
                    psi[self._known.excluded(xb, yb)] = (
                        0.0  # known or outlying records are worth nothing
                    )
                if clip is not None:
                    psi = clip_rows(psi, clip)
                if per_record:
                    per.append(psi.astype(np.float64))
                else:
                    total += psi.sum(axis=0, dtype=np.float64)
            for future in pending:
                future.result()  # re-raise any hashing error
        z = None
        if dp is not None and clip is not None:  # the Gaussian mechanism, before Enc(w)
            z = dp.noise_multiplier
            dp_rng = np.random.default_rng()  # never the caller's seed: DP noise must be fresh
            if per_record:
                per = [np.concatenate(per) + dp_rng.normal(0.0, z * clip, (n, m))]
            else:
                total = total + dp_rng.normal(0.0, z * clip, m)
        # a total is sealed as sum / 2**e with 2**e >= n: O(1) values keep CKKS precise
        exp = None if per_record else aggregate_exponent(n)
        blocks = np.concatenate(per) if exp is None else (total / 2.0**exp)[None, :]
        psi_clip = self.manifest.psi_clip  # the public norm bounds the owner's flooding covers
        norms = None if psi_clip is None else norm_bounds(psi_clip, m, clip, z)
        rows, pairs = (None, None) if norms is None else (norms.values, norms.pairwise)
        layout, ckks = self.manifest.layout, self.manifest.ckks
        keys = self._galois
        cts = seal_blocks(self._context, self._enc_w, keys, blocks, layout, ckks, exp, rows)
        if pair is not None:  # order-2 proxy: also seal s^T Q s
            e = aggregate_exponent(n)
            u = (blocks.sum(axis=0) if per_record else total) / 2.0**e
            cts += seal_blocks(
                self._context,
                self._enc_q,
                keys,
                pairwise_products(u)[None, :],
                pair,
                ckks,
                2 * e,
                pairs,
            )
        commitment = committer.hexdigest()
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
            dataset=fingerprint.hexdigest(),
            numbers=numbers,
            n_records=n,
            commitment=commitment,
            seed=seed,
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
