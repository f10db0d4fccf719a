"""The model owner's proxy: efficacy features ``psi``, secret value vector ``w``, and the
owner's half of the protocol (export, open, verify).

Every proxy kind subclasses :class:`Proxy` and supplies ``_fit``, ``_psi_batch`` and
``_psi_onnx``; efficacy is always ``sum over records of <w, psi(x, y)>``, where records the
membership sketch recognises as (near-)copies of training records, or as lying outside the
training data's support, score zero.
"""

from __future__ import annotations

import inspect
import os
import time
import uuid
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from mde.artifact import write_artifact
from mde.commitment import commit
from mde.errors import (
    DeliveryError,
    InputError,
    MDEError,
    NotFittedError,
    ReplayError,
    SealedScoreError,
    require,
)
from mde.membership import MembershipSketch
from mde.report import EFFICACY_UNITS, EfficacyReport, second_order_efficacy, second_order_step
from mde.sealed import SealedScore
from mde.sealing import (
    CKKSParams,
    aggregate_exponent,
    check_params,
    encrypt_values,
    make_layout,
    make_secret_context,
    pairwise_values,
    public_context_bytes,
    unseal_blocks,
)
from mde.validation import as_native, check_matrix, check_Xy, feature_names_of

__all__ = ["Proxy"]

# below this many principal directions a data owner could list the sketch's occupied cells
_MIN_SKETCH_COMPONENTS = 12


class Proxy(ABC):
    """Base class of all proxies.

    Fitted attributes (set by ``fit``): ``classes_``, ``n_features_in_``, ``psi_dim_``,
    ``w_`` (secret), ``n_train_``, ``fidelity_``, ``build_seconds_``, ``known_`` (the
    membership sketch of the training records, or None).
    """

    kind: ClassVar[str]
    units: ClassVar[str] = EFFICACY_UNITS

    # -- building ---------------------------------------------------------------------
    def fit(self, blackbox: Any, X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Proxy:
        """Build the proxy from black-box queries and the owner's training and test sets.

        Returns
        -------
        self
        """
        from adapters import wrap

        start = time.perf_counter()
        bb = wrap(blackbox)
        classes = list(bb.classes_)
        names = feature_names_of(X_train)
        Xtr, ytr = check_Xy(X_train, y_train, bb.n_features_in_, classes)
        Xte, yte = check_Xy(X_test, y_test, bb.n_features_in_, classes, names)
        self.feature_names_in_ = names
        self.classes_ = np.asarray(bb.classes_)
        self.n_features_in_ = int(bb.n_features_in_)
        self.n_train_ = int(Xtr.shape[0])
        self._fit(bb, Xtr, ytr, Xte, yte)
        self.known_ = self._fit_sketch(Xtr, ytr)
        self.psi_dim_ = int(self.w_.shape[0])
        self.fidelity_ = float(np.mean(self._predict_idx(Xte) == np.argmax(bb.predict_proba(Xte), axis=1)))
        self.build_seconds_ = time.perf_counter() - start
        self._context: Any = None
        self.calibration_: dict[str, Any] | None = None
        self.artifacts_: dict[str, dict[str, Any]] = {}
        self.opened_: dict[str, int] = {}
        return self

    @abstractmethod
    def _fit(self, bb: Any, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray) -> None:
        """Set ``w_`` and the state ``_psi_batch`` needs."""

    @abstractmethod
    def _psi_batch(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """Efficacy features (n, m) of validated records."""

    @abstractmethod
    def _psi_onnx(self) -> bytes:
        """Serialized ONNX graph computing ``psi`` from ``X`` float32 and ``y`` int64."""

    @abstractmethod
    def _predict_idx(self, X: np.ndarray) -> np.ndarray:
        """Arg-max class index the proxy itself predicts (for fidelity)."""

    def _fit_sketch(self, Xtr: np.ndarray, ytr: np.ndarray) -> MembershipSketch | None:
        mode = getattr(self, "exclude_known", False)
        if mode not in (True, False, "auto"):
            raise InputError(f"exclude_known must be True, False or 'auto'; got {mode!r}.")
        if mode is False:
            return None
        sketch = MembershipSketch(outlier_margin=getattr(self, "outlier_margin", None)).fit(
            Xtr, ytr, np.random.default_rng(getattr(self, "random_state", None)))
        if mode == "auto" and sketch.n_components_ < _MIN_SKETCH_COMPONENTS:
            return None
        return sketch

    def _scores_batch(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        return self._psi_batch(X, y_idx) @ self.w_

    def _record_scores(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        scores = self._scores_batch(X, y_idx)
        if getattr(self, "known_", None) is not None:
            scores = np.where(self.known_.excluded(X, y_idx), 0.0, scores)
        return scores

    def known(self, X: Any, y: Any) -> np.ndarray:
        """Boolean mask of records the membership sketch recognises as (near-)copies of
        training records; they score zero. All False if the proxy has no sketch."""
        Xa, yi = self._validate(X, y)
        if getattr(self, "known_", None) is None:
            return np.zeros(Xa.shape[0], dtype=bool)
        return self.known_.known(Xa, yi)

    def excluded(self, X: Any, y: Any) -> np.ndarray:
        """Boolean mask of the records that score zero: known to the membership sketch or
        outside the training support (``outlier_margin``). All False without a sketch."""
        Xa, yi = self._validate(X, y)
        if getattr(self, "known_", None) is None:
            return np.zeros(Xa.shape[0], dtype=bool)
        return self.known_.excluded(Xa, yi)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn convention: read from ``__init__``'s signature)."""
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: getattr(self, n) for n in names}

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save in the owner's private file."""

    @abstractmethod
    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore learned arrays."""

    # -- plaintext efficacy (the model owner's view) -----------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "w_"):
            raise NotFittedError(f"this {type(self).__name__} is not built yet; call mde.build_proxy(...) first.")

    def _validate(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        return check_Xy(X, y, self.n_features_in_, list(self.classes_), getattr(self, "feature_names_in_", None))

    def psi(self, X: Any, y: Any) -> np.ndarray:
        """Efficacy features psi(x, y) of each record, shape (n, psi_dim_)."""
        Xa, yi = self._validate(X, y)
        return self._psi_batch(Xa, yi)

    def record_scores(self, X: Any, y: Any, batch_size: int = 8192) -> np.ndarray:
        """Per-record efficacy ``<w, psi(x_i, y_i)>``; they sum to :meth:`efficacy` (to the
        first-order part of it for an ``order=2`` proxy)."""
        Xa, yi = self._validate(X, y)
        return np.concatenate(
            [self._record_scores(Xa[i : i + batch_size], yi[i : i + batch_size]) for i in range(0, Xa.shape[0], batch_size)]
        )

    @property
    def order_(self) -> int:
        """1 for an additive proxy, 2 if it was built with a pairwise term (``Q_``)."""
        return 1 if getattr(self, "Q_", None) is None else 2

    def _psi_total(self, X: np.ndarray, y_idx: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Sum of psi over the validated records that are not excluded by the sketch."""
        total = np.zeros(self.psi_dim_)
        for i in range(0, X.shape[0], batch_size):
            xb, yb = X[i : i + batch_size], y_idx[i : i + batch_size]
            weight = None if getattr(self, "known_", None) is None else (~self.known_.excluded(xb, yb)).astype(float)
            total += self._psi_sum(xb, yb, weight)
        return total

    def _psi_sum(self, X: np.ndarray, y_idx: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """Weighted sum of psi over validated records (subclasses may avoid materialising psi)."""
        psi = self._psi_batch(X, y_idx)
        return psi.sum(axis=0) if weight is None else weight @ psi

    def efficacy_terms(self, X: Any, y: Any, batch_size: int = 8192) -> tuple[float, float]:
        """``(A, B)`` of an ``order=2`` proxy: ``A = <w, s>`` and ``B = s^T Q s`` for the
        summed efficacy features ``s`` (see :func:`mde.report.second_order_efficacy`)."""
        if self.order_ != 2:
            raise InputError("efficacy_terms needs a proxy built with order=2.")
        Xa, yi = self._validate(X, y)
        s = self._psi_total(Xa, yi, batch_size)
        return float(self.w_ @ s), float(s @ self.Q_ @ s)

    def efficacy(self, X: Any, y: Any, batch_size: int = 8192) -> float:
        """Efficacy of a data set in plaintext: predicted reduction of the owner's mean test
        log-loss (nats) if the records were added to training; positive = useful."""
        if self.order_ == 2:
            A, B = self.efficacy_terms(X, y, batch_size)
            return second_order_efficacy(A, B, len(np.asarray(y)), self.n_train_, self.data_curvature_)
        return float(self.record_scores(X, y, batch_size).sum())

    def gradient_norm(self, X: Any, y: Any) -> float:
        """Baseline appraisal: norm of the summed efficacy features (seed 000 eq. 3)."""
        return float(np.linalg.norm(self.psi(X, y).sum(axis=0)))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels the proxy itself predicts."""
        self._check_fitted()
        names = getattr(self, "feature_names_in_", None)
        return self.classes_[self._predict_idx(check_matrix(X, self.n_features_in_, feature_names=names))]

    # -- protocol -------------------------------------------------------------------------
    def export(self, path: str | os.PathLike[str], ckks: CKKSParams | None = None, mode: str = "sealed-value") -> str:
        """Write the public artifact (psi graph, Enc(w), public context); return its id.

        ``mode="hidden"`` writes a hidden-mode artifact instead (:mod:`mde.hidden`): shapes,
        classes and CKKS parameters only, for proxies with a CKKS-evaluable score
        (``kind="influence-poly"``); the data owner's encrypted records then come back to
        :meth:`evaluate_hidden`.

        ``ckks`` defaults to the parameters of this proxy's key if it has one, else to the
        kind's default (:class:`CKKSParams`, or ``CKKSParams.compact()`` for small trees).

        The artifact holds no secret key and no plaintext ``w``. Each export gets a new id;
        the proxy remembers it so that :meth:`open` accepts scores made against it.
        """
        from mde import __version__

        self._check_fitted()
        if mode == "hidden":
            return self._export_hidden(path)
        if mode != "sealed-value":
            raise InputError(f"mode must be 'sealed-value' or 'hidden'; got {mode!r}.")
        params = ckks or (self._ckks if self._context is not None else self._default_ckks())
        problem = check_params(params)
        if problem:
            raise InputError(f"bad CKKS parameters: {problem}")
        if self._context is None:
            self._context = make_secret_context(params)
            self._ckks = params
        elif params != self._ckks:
            raise SealedScoreError("this proxy's key was made with other CKKS parameters; export with those.")
        layout = make_layout(self.psi_dim_, params)
        rng = np.random.default_rng()
        scale = float(np.max(np.abs(self.w_))) or 1.0
        sentinel, meta_key = (float(v) for v in rng.uniform(1.0, 2.0, size=2))
        artifact_id = uuid.uuid4().hex
        members = {"psi.onnx": self._psi_onnx(), "context.tenseal": public_context_bytes(self._context)}
        if getattr(self, "known_", None) is not None:
            members["known.npz"] = self.known_.to_bytes()
        for c, blob in enumerate(encrypt_values(self._context, self.w_ / scale, layout, sentinel, meta_key)):
            members[f"w_{c}.ckks"] = blob
        pairwise: dict[str, Any] | None = None
        if self.order_ == 2:  # Enc(q) with <q, pairwise_products(s)> = s^T Q s
            q = pairwise_values(self.Q_)
            # its own sentinel, from a range disjoint from w's: swapped ciphertexts never pass
            pairwise = {"scale": float(np.max(np.abs(q))) or 1.0, "sentinel": float(rng.uniform(3.0, 4.0)),
                        "meta_key": float(rng.uniform(1.0, 2.0)), "layout": make_layout(len(q), params)}
            for c, blob in enumerate(encrypt_values(self._context, q / pairwise["scale"], pairwise["layout"],
                                                    pairwise["sentinel"], pairwise["meta_key"])):
                members[f"q_{c}.ckks"] = blob
        _, digest = write_artifact(
            path,
            dict(
                mde_version=__version__,
                artifact_id=artifact_id,
                proxy_kind=self.kind,
                n_features=self.n_features_in_,
                feature_names=getattr(self, "feature_names_in_", None),
                psi_dim=self.psi_dim_,
                classes=[as_native(c) for c in self.classes_],
                ckks=params,
                layout=layout,
                pairwise_layout=None if pairwise is None else pairwise["layout"],
            ),
            members,
        )
        self.artifacts_[artifact_id] = {
            "manifest_sha256": digest,
            "scale": scale,
            "sentinel": sentinel,
            "meta_key": meta_key,
            "flood_sigma": params.flood_sigma,
            "layout": layout.model_dump(),
            "artifact_bytes": os.path.getsize(path),
        }
        if pairwise is not None:
            self.artifacts_[artifact_id]["pairwise"] = {**pairwise, "layout": pairwise["layout"].model_dump()}
        return artifact_id

    def _default_ckks(self) -> CKKSParams:
        return CKKSParams()

    def open(self, sealed: SealedScore | bytes, *, allow_repeat: bool = False) -> EfficacyReport:
        """Decrypt a sealed score into an :class:`EfficacyReport`.

        Parameters
        ----------
        sealed : SealedScore or bytes
        allow_repeat : bool
            Accept a further sealed score for an artifact already evaluated once. Off by
            default: repeated queries against one artifact leak the value vector.

        Raises
        ------
        SealedScoreError
            If the score was made for another artifact, a tampered artifact, or another key.
        ReplayError
            If the artifact was already evaluated and ``allow_repeat`` is False.
        """
        from mde.hidden import PartialResult
        from mde.sealing import Layout

        self._check_fitted()
        if isinstance(sealed, (bytes, bytearray)) and bytes(sealed[:2]) == b"PK":
            sealed = PartialResult.from_bytes(bytes(sealed))
        if isinstance(sealed, PartialResult):
            return self._open_hidden(sealed)
        if isinstance(sealed, (bytes, bytearray)):
            sealed = SealedScore.from_bytes(sealed)
        head = sealed.header
        info = self.artifacts_.get(head.artifact_id)
        if info is None:
            raise SealedScoreError(
                f"sealed score was made for artifact {head.artifact_id!r}, which this proxy did not export "
                f"(it exported {sorted(self.artifacts_)}); open it with the proxy that made that artifact."
            )
        if head.manifest_sha256 != info["manifest_sha256"]:
            raise SealedScoreError(
                "sealed score was made against a modified copy of the artifact (content hash differs); refusing it."
            )
        if self.opened_.get(head.artifact_id, 0) >= 1 and not allow_repeat:
            raise ReplayError(
                f"artifact {head.artifact_id!r} was already evaluated once; repeated evaluations leak the "
                "value vector. Export a new artifact, or pass allow_repeat=True if you accept that."
            )
        layout = Layout(**info["layout"])
        cts = sealed.ciphertexts
        pair = info.get("pairwise")
        n_pair = 0 if pair is None else Layout(**pair["layout"]).chunks
        if len(cts) <= n_pair:
            raise SealedScoreError(f"sealed score holds {len(cts)} ciphertexts; this artifact needs more than {n_pair}.")
        sums = unseal_blocks(self._context, cts[: len(cts) - n_pair], layout, head.n_records, head.per_record,
                             info["sentinel"], info["meta_key"], info["flood_sigma"])
        sums *= info["scale"]
        exp = aggregate_exponent(head.n_records)
        if head.per_record:
            scores: list[float] | None = sums.tolist()
            efficacy = float(sums.sum())
        else:
            scores = None
            efficacy = float(sums[0] * 2.0**exp)
        terms: dict[str, float] = {}
        if pair is not None:  # the pairwise total was sealed as q * products(s / 2**e)
            quad = unseal_blocks(self._context, cts[len(cts) - n_pair :], Layout(**pair["layout"]), head.n_records,
                                 False, pair["sentinel"], pair["meta_key"], info["flood_sigma"], exponent=2 * exp)
            terms = {"first_order": efficacy, "pairwise": float(quad[0] * pair["scale"] * 4.0**exp)}
            efficacy = second_order_efficacy(terms["first_order"], terms["pairwise"], head.n_records, self.n_train_,
                                             self.data_curvature_)
        self.opened_[head.artifact_id] = self.opened_.get(head.artifact_id, 0) + 1
        return EfficacyReport(
            efficacy=efficacy,
            n_records=head.n_records,
            record_scores=scores,
            artifact_id=head.artifact_id,
            commitment=head.commitment,
            proxy_kind=self.kind,
            units=self.units,
            **terms,
        )

    def verify_delivery(self, X: Any, y: Any, report: EfficacyReport, *, rtol: float = 1e-4) -> None:
        """Check delivered data against what was scored: same commitment, same efficacy.

        Every value (the total, and each record's score if the report has them) must match
        the plaintext recomputation within ``rtol`` of its own magnitude plus the sealing
        noise (flooding and CKKS error, known from the artifact). Scores are recomputed on
        the records rounded to float32, the form the data owner scored and committed.

        Raises
        ------
        DeliveryError
            If the records differ from the committed ones, or a value differs from the report.
        """
        Xa, yi = self._validate(X, y)
        if commit(Xa, yi) != report.commitment:
            raise DeliveryError(
                "delivered records do not match the commitment made when they were scored "
                f"({Xa.shape[0]} records delivered, {report.n_records} scored); do not pay for them."
            )
        info = self.artifacts_.get(report.artifact_id)
        if info is None:
            raise DeliveryError(f"report is for artifact {report.artifact_id!r}, which this proxy did not export.")
        # recompute on the records as the data owner scored and committed them, float32: the
        # sketch's cells are discontinuous, and a record on a cell edge may round across it
        Xa = Xa.astype(np.float32).astype(np.float64)
        if info.get("mode") == "hidden":  # the score graph has no membership sketch
            scores = self._scores_batch(Xa, yi)
            # 8 sigma of the flooding noise, plus the CKKS error (~2^-20 per record, scaled units)
            total_noise = (8.0 * info["flood_sigma"] + len(scores) * 2.0**-20) / info["scale"]
            return self._check_value("efficacy", float(scores.sum()), report.efficacy, rtol, total_noise)
        scores = self._record_scores(Xa, yi)
        noise = 8.0 * info["flood_sigma"] * info["scale"]  # 8 sigma of the flooding noise per block
        pair = info.get("pairwise")
        if (pair is None) != (report.pairwise is None) or (report.first_order is None) != (report.pairwise is None):
            raise DeliveryError("report's terms do not match its artifact: an order-2 artifact's report has a "
                                "first-order and a pairwise term, an order-1 artifact's has neither.")
        if report.record_scores is not None:
            diff = np.abs(scores - np.asarray(report.record_scores))
            bad = diff > rtol * np.abs(scores) + noise
            if np.any(bad):
                i = int(np.argmax(bad))
                raise DeliveryError(
                    f"record {i}'s score is {scores[i]:.6g} but the sealed score said {report.record_scores[i]:.6g}; "
                    "the data owner's scores do not match the proxy's."
                )
            total_noise = noise * np.sqrt(len(scores))
        else:
            total_noise = noise * 2.0 ** aggregate_exponent(len(scores))
        A = float(scores.sum())
        if pair is None:
            return self._check_value("efficacy", A, report.efficacy, rtol, total_noise)
        self._check_value("first-order efficacy", A, report.first_order, rtol, total_noise)
        s = self._psi_total(Xa, yi)
        B = float(s @ self.Q_ @ s)
        pair_noise = 8.0 * info["flood_sigma"] * pair["scale"] * 4.0 ** aggregate_exponent(len(scores))
        self._check_value("pairwise term", B, report.pairwise, rtol, pair_noise)
        r = second_order_step(len(scores), self.n_train_, self.data_curvature_)
        self._check_value("efficacy", second_order_efficacy(A, B, len(scores), self.n_train_, self.data_curvature_),
                          report.efficacy,
                          rtol, r * (total_noise + rtol * abs(A)) + r * r * (pair_noise + rtol * abs(B)) / 2)

    @staticmethod
    def _check_value(what: str, recomputed: float, reported: float, rtol: float, noise: float) -> None:
        if abs(recomputed - reported) > rtol * abs(recomputed) + noise:
            raise DeliveryError(
                f"delivered data has {what} {recomputed:.6g} but the sealed score said {reported:.6g}; "
                "the data owner's score does not match the proxy's."
            )

    # -- hidden-proxy mode ----------------------------------------------------------------
    def _hidden_plan(self, info: dict[str, Any]) -> Any:
        from mde.encrypted_graph import check_graph

        graph = self.score_graph(info["scale"])  # type: ignore[attr-defined]
        return check_graph(graph, {"X": self.n_features_in_, "Y": len(self.classes_)},
                           len(info["ckks"]["coeff_mod_bit_sizes"]) - 2)

    def _export_hidden(self, path: str | os.PathLike[str]) -> str:
        from mde import __version__
        from mde.artifact import write_manifest_zip
        from mde.encrypted_graph import check_graph
        from mde.hidden import HiddenManifest, hidden_params

        if not hasattr(self, "score_graph"):
            raise InputError(f"the {self.kind!r} proxy has no CKKS-evaluable score; build kind='influence-poly' "
                             "for hidden mode (or export in sealed-value mode).")
        inputs = {"X": self.n_features_in_, "Y": len(self.classes_)}
        # per-record scores of test-like data at most ~4: values stay far inside the CKKS range
        scale = 4.0 / float(getattr(self, "score_bound_", 1.0))
        depth = check_graph(self.score_graph(scale), inputs, 7).depth
        params = hidden_params(depth)
        artifact_id = uuid.uuid4().hex
        manifest = HiddenManifest(mde_version=__version__, artifact_id=artifact_id, proxy_kind=self.kind,
                                  n_features=self.n_features_in_, feature_names=getattr(self, "feature_names_in_", None),
                                  classes=[as_native(c) for c in self.classes_], inputs=inputs, ckks=params, depth=depth,
                                  flood_sigma=2.0**-10)
        digest = write_manifest_zip(path, manifest, {})
        self.artifacts_[artifact_id] = {"mode": "hidden", "manifest_sha256": digest, "scale": scale,
                                        "flood_sigma": manifest.flood_sigma, "ckks": params.model_dump(),
                                        "artifact_bytes": os.path.getsize(path), "pending": {}}
        return artifact_id

    def evaluate_hidden(self, request: Any, *, allow_repeat: bool = False,
                        random_state: int | np.random.Generator | None = None) -> Any:
        """Evaluate the proxy on a data owner's encrypted records (hidden mode).

        Runs the score graph under CKKS batch by batch, sums slot-wise, adds a random mask
        kept here, and returns the :class:`~mde.hidden.MaskedResult` to send back.

        Raises
        ------
        ProtocolError
            If the request is for another or a modified artifact, carries a secret key,
            has other CKKS parameters, or its ciphertexts do not load under its context.
        ReplayError
            If the artifact was already evaluated and ``allow_repeat`` is False.
        """
        from mde.encrypted_graph import run_encrypted, run_float64
        from mde.hidden import (
            EncryptedRecords,
            MaskedResult,
            ProtocolError,
            _split,
            context_matches,
        )

        ts = require("tenseal")
        self._check_fitted()
        if isinstance(request, (bytes, bytearray)):
            request = EncryptedRecords.from_bytes(bytes(request))
        info = self.artifacts_.get(request.artifact_id)
        if info is None or info.get("mode") != "hidden":
            raise ProtocolError(f"request is for artifact {request.artifact_id!r}, which this proxy did not export "
                                "in hidden mode.")
        if request.manifest_sha256 != info["manifest_sha256"]:
            raise ProtocolError("request was made against a modified copy of the artifact; refusing it.")
        if self.opened_.get(request.artifact_id, 0) >= 1 and not allow_repeat:
            raise ReplayError(f"artifact {request.artifact_id!r} was already evaluated once; export a new one, "
                              "or pass allow_repeat=True if you accept the extra leakage.")
        params = CKKSParams(**info["ckks"])
        try:
            ctx = ts.context_from(request.blobs["context.tenseal"])
        except Exception as exc:
            raise ProtocolError(f"request's CKKS context cannot be loaded: {exc}") from exc
        if ctx.is_private():
            raise ProtocolError("request carries the data owner's secret key (anyone holding it could decrypt the "
                                "records); refusing it. The data owner must send a public context.")
        if not context_matches(ctx, params):
            raise ProtocolError("request's CKKS context has other parameters than the artifact; refusing it.")
        expected = {"context.tenseal"} | {f"b{b}_{n}" for b in range(request.n_batches) for n in ("X", "Y")}
        if set(request.blobs) != expected or request.n_records > request.n_batches * params.slots:
            raise ProtocolError(f"request holds members {sorted(request.blobs)[:5]}...; expected {request.n_batches} "
                                "batches of X and Y ciphertexts for its record count.")
        plan = self._hidden_plan(info)
        total = None
        for b in range(request.n_batches):
            try:
                cols = {n: [ts.ckks_vector_from(ctx, blob) for blob in _split(request.blobs[f"b{b}_{n}"])]
                        for n in ("X", "Y")}
                out = run_encrypted(plan, cols)[0]
            except MDEError:
                raise
            except Exception as exc:
                raise ProtocolError(f"batch {b}'s ciphertexts do not load or evaluate under the request's context: "
                                    f"{exc}") from exc
            total = out if total is None else total + out
        rng = np.random.default_rng(random_state)
        mask = rng.uniform(-params.mask_bound, params.mask_bound, params.slots)
        masked = total + mask.tolist()
        zero = {"X": np.zeros((1, self.n_features_in_)), "Y": np.zeros((1, len(self.classes_)))}
        pad_score = float(run_float64(plan, zero).ravel()[0])
        result_id = uuid.uuid4().hex
        info["pending"][result_id] = {
            "request_id": request.request_id, "mask_sum": float(mask.sum()),
            "padding": request.n_batches * params.slots - request.n_records, "pad_score": pad_score,
            "n_records": request.n_records, "commitment": request.commitment,
        }
        self.opened_[request.artifact_id] = self.opened_.get(request.artifact_id, 0) + 1
        return MaskedResult(artifact_id=request.artifact_id, request_id=request.request_id, result_id=result_id,
                            ciphertext=masked.serialize())

    def _open_hidden(self, partial: Any) -> EfficacyReport:
        from mde.hidden import ProtocolError

        info = self.artifacts_.get(partial.artifact_id)
        pending = (info or {}).get("pending", {}).get(partial.result_id)
        if pending is None or pending["request_id"] != partial.request_id:
            raise ProtocolError("this partial result answers no result this proxy is waiting for (unknown, "
                                "already opened, or for another proxy); refusing it.")
        if not np.isfinite(partial.value):
            raise ProtocolError("partial result is not a finite number; refusing it.")
        del info["pending"][partial.result_id]
        value = partial.value - pending["mask_sum"] - pending["padding"] * pending["pad_score"]
        return EfficacyReport(efficacy=value / info["scale"], n_records=pending["n_records"], record_scores=None,
                              artifact_id=partial.artifact_id, commitment=pending["commitment"],
                              proxy_kind=self.kind, units=self.units)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the owner's private proxy file (secret key inside); reload with ``mde.load_proxy``.

        Keep it private: it holds ``w`` and the key that opens every sealed score.
        """
        from mde.storage import save_proxy

        save_proxy(self, path)

    def summary(self) -> dict[str, Any]:
        """Kind, fidelity, psi dimension, build time and the size of the last exported artifact."""
        self._check_fitted()
        sizes = [info.get("artifact_bytes") for info in self.artifacts_.values()]
        return {
            "kind": self.kind,
            "fidelity": self.fidelity_,
            "psi_dim": self.psi_dim_,
            "order": self.order_,
            "n_features": self.n_features_in_,
            "n_classes": len(self.classes_),
            "build_seconds": self.build_seconds_,
            "artifact_bytes": sizes[-1] if sizes else None,
            "membership_sketch": None if getattr(self, "known_", None) is None else
            {"components": self.known_.n_components_, "tables": self.known_.n_tables, "bytes": len(self.known_.to_bytes()),
             "outlier_threshold": self.known_.outlier_threshold_},
            "params": self.get_params(),
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

