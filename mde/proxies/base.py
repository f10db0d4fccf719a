"""The proxy contract: efficacy features ``psi``, secret value vector ``w``, estimator API.

Every proxy kind subclasses :class:`Proxy` and supplies ``_fit``, ``_psi_batch``,
``_psi_onnx``, ``_predict_idx`` and its state hooks. Efficacy is always ``sum over records
of <w, psi(x, y)>`` (plus the pairwise term of an ``order=2`` proxy), where records the
membership sketch recognises as (near-)copies of training records, or as lying outside the
training data's support, score zero. Nothing here knows CKKS, files or sessions: the model
owner's protocol steps (:mod:`mde.owner`) use only the public methods below.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from mde.errors import InputError, NotFittedError
from mde.proxies.membership import MembershipSketch
from mde.proxies.repeats import offer_repeats
from mde.proxies.second_order import second_order_efficacy
from mde.report import EFFICACY_UNITS
from mde.validation import check_matrix, check_Xy, feature_names_of

__all__ = ["Proxy", "CKKSEvaluable", "EFFICACY_UNITS"]

# below this many principal directions a data owner could list the sketch's occupied cells
_MIN_SKETCH_COMPONENTS = 12
# fitted scalars every proxy has, saved and restored by get_state / from_state
_SCALARS = tuple(
    "n_features_in_ feature_names_in_ n_train_ psi_dim_ fidelity_ build_seconds_ psi_clip_".split()
)


@runtime_checkable
class CKKSEvaluable(Protocol):
    """A proxy whose score is a low-degree polynomial of the record (hidden mode)."""

    score_bound_: float

    def score_graph(self, scale: float = 1.0) -> bytes:
        """ONNX graph of ``scale * score(x, y)`` from ``X`` float32 [n, d], ``Y`` one-hot [n, k]."""
        ...


class Proxy(ABC):
    """Base class of all proxies (a scikit-learn style estimator).

    Fitted attributes (set by ``fit``): ``classes_``, ``n_features_in_``, ``psi_dim_``,
    ``w_`` (secret), ``n_train_``, ``fidelity_``, ``build_seconds_``, ``psi_clip_`` (public
    99th percentile of test records' psi norm, the default DP clip bound), ``known_`` (the
    membership sketch of the training records, or None), ``Q_`` and ``data_curvature_``
    (``order=2`` only, else None).
    """

    kind: ClassVar[str]
    units: ClassVar[str] = EFFICACY_UNITS

    # constructor options every kind may have; a kind's __init__ overrides the ones it takes
    exclude_known: bool | str = False
    outlier_margin: float | None = None
    random_state: int | None = None

    # fitted state
    w_: np.ndarray
    classes_: np.ndarray
    n_features_in_: int
    feature_names_in_: list[str] | None = None
    n_train_: int
    psi_dim_: int
    fidelity_: float
    build_seconds_: float
    psi_clip_: float
    known_: MembershipSketch | None = None
    Q_: np.ndarray | None = None
    data_curvature_: float | None = None
    calibration_: dict[str, Any] | None = None

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
        agree = self._predict_idx(Xte) == np.argmax(bb.predict_proba(Xte), axis=1)
        self.fidelity_ = float(np.mean(agree))
        norms = np.linalg.norm(self._psi_batch(Xte, yte), axis=1)  # public DP clip bound
        self.psi_clip_ = float(np.quantile(norms, 0.99)) or 1.0
        self.build_seconds_ = time.perf_counter() - start
        return self

    @abstractmethod
    def _fit(
        self, bb: Any, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray
    ) -> None:
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

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays of this kind."""

    @abstractmethod
    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the learned arrays of this kind."""

    def _extra_state(self) -> dict[str, Any]:
        """Learned JSON scalars of this kind (none by default)."""
        return {}

    def _set_extra_state(self, extra: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore the JSON scalars of :meth:`_extra_state`."""

    def _fit_sketch(self, Xtr: np.ndarray, ytr: np.ndarray) -> MembershipSketch | None:
        mode = self.exclude_known
        if mode not in (True, False, "auto"):
            raise InputError(f"exclude_known must be True, False or 'auto'; got {mode!r}.")
        if mode is False:
            return None
        sketch = MembershipSketch(outlier_margin=self.outlier_margin).fit(
            Xtr, ytr, np.random.default_rng(self.random_state)
        )
        if mode == "auto" and sketch.n_components_ < _MIN_SKETCH_COMPONENTS:
            return None
        return sketch

    def _scores_batch(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        return self._psi_batch(X, y_idx) @ self.w_

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn convention: read from ``__init__``'s signature)."""
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: getattr(self, n) for n in names}

    # -- state (for the owner's private file) ------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Learned state as JSON scalars and arrays (restore with :meth:`from_state`)."""
        self._check_fitted()
        scalars = {k: getattr(self, k) for k in _SCALARS}
        scalars |= {
            "classes_": self.classes_.tolist(),
            "calibration_": self.calibration_,
            "extra": self._extra_state(),
        }
        arrays = dict(self._state())
        if self.known_ is not None:
            arrays["known_"] = np.frombuffer(self.known_.to_bytes(), dtype=np.uint8)
        return scalars, arrays

    @classmethod
    def from_state(
        cls, params: dict[str, Any], scalars: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> Proxy:
        """Rebuild a fitted proxy from :meth:`get_params` and :meth:`get_state`.

        Raises
        ------
        InputError
            If the parameters do not fit this kind; KeyError-free: missing state raises too.
        """
        try:
            proxy = cls(**params)
            arrays = dict(arrays)
            known = arrays.pop("known_", None)
            proxy._set_state(arrays)
            for key in _SCALARS:
                setattr(proxy, key, scalars[key])
            proxy.classes_ = np.asarray(scalars["classes_"])
            proxy.calibration_ = scalars.get("calibration_")
            proxy._set_extra_state(scalars.get("extra", {}))
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(f"saved state does not fit a {cls.__name__}: {exc!r}") from exc
        proxy.known_ = (
            None
            if known is None
            else MembershipSketch.from_bytes(known.tobytes(), proxy.n_features_in_)
        )
        return proxy

    # -- plaintext efficacy (the model owner's view) -----------------------------------
    def _check_fitted(self) -> None:
        if "w_" not in vars(self):  # scikit-learn convention: fitted state ends in "_"
            raise NotFittedError(
                f"this {type(self).__name__} is not built yet; call mde.build_proxy(...) first."
            )

    def validate(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validated records ``(X float64, class indices)``, checked against the fitted shapes."""
        self._check_fitted()
        return check_Xy(X, y, self.n_features_in_, list(self.classes_), self.feature_names_in_)

    def psi(self, X: Any, y: Any) -> np.ndarray:
        """Efficacy features psi(x, y) of each record, shape (n, psi_dim_)."""
        return self._psi_batch(*self.validate(X, y))

    def psi_graph(self) -> bytes:
        """Serialized ONNX graph of psi (inputs ``X`` float32 [n, d], ``y`` int64 [n])."""
        self._check_fitted()
        return self._psi_onnx()

    def record_scores(
        self, X: Any, y: Any, batch_size: int = 8192, *, exclude: bool = True
    ) -> np.ndarray:
        """Per-record efficacy ``<w, psi(x_i, y_i)>``; they sum to :meth:`efficacy` (to its
        first-order part for an ``order=2`` proxy). Records the sketch excludes and copies of
        an earlier record of the same offer score zero; ``exclude=False`` scores every record
        as it is (hidden mode, whose encrypted score graph applies neither screen)."""
        Xa, yi = self.validate(X, y)
        keep = ~offer_repeats(Xa, yi, self.known_) if exclude else np.ones(len(yi), dtype=bool)
        out = []
        for i in range(0, Xa.shape[0], batch_size):
            xb, yb = Xa[i : i + batch_size], yi[i : i + batch_size]
            scores = np.where(keep[i : i + batch_size], self._scores_batch(xb, yb), 0.0)
            if exclude and self.known_ is not None:
                scores = np.where(self.known_.excluded(xb, yb), 0.0, scores)
            out.append(scores)
        return np.concatenate(out)

    def known(self, X: Any, y: Any) -> np.ndarray:
        """Boolean mask of records the membership sketch recognises as (near-)copies of
        training records; they score zero. All False if the proxy has no sketch."""
        Xa, yi = self.validate(X, y)
        return (
            np.zeros(Xa.shape[0], dtype=bool) if self.known_ is None else self.known_.known(Xa, yi)
        )

    def excluded(self, X: Any, y: Any) -> np.ndarray:
        """Boolean mask of the records that score zero: known to the membership sketch or
        outside the training support (``outlier_margin``). All False without a sketch."""
        Xa, yi = self.validate(X, y)
        return (
            np.zeros(Xa.shape[0], dtype=bool)
            if self.known_ is None
            else self.known_.excluded(Xa, yi)
        )

    @property
    def curvature_share(self) -> float:
        """``data_curvature_`` of an ``order=2`` proxy (1.0 if it has none)."""
        return 1.0 if self.data_curvature_ is None else float(self.data_curvature_)

    @property
    def order_(self) -> int:
        """1 for an additive proxy, 2 if it was built with a pairwise term (``Q_``)."""
        return 1 if self.Q_ is None else 2

    def psi_sum(self, X: Any, y: Any, batch_size: int = 8192) -> np.ndarray:
        """Sum of psi over the records that count: not excluded by the sketch, not a copy of
        an earlier record of the offer."""
        Xa, yi = self.validate(X, y)
        keep = (~offer_repeats(Xa, yi, self.known_)).astype(float)
        total = np.zeros(self.psi_dim_)
        for i in range(0, Xa.shape[0], batch_size):
            xb, yb = Xa[i : i + batch_size], yi[i : i + batch_size]
            weight = keep[i : i + batch_size]
            if self.known_ is not None:
                weight = weight * ~self.known_.excluded(xb, yb)
            total += self._psi_sum(xb, yb, weight)
        return total

    def _psi_sum(
        self, X: np.ndarray, y_idx: np.ndarray, weight: np.ndarray | None = None
    ) -> np.ndarray:
        """Weighted sum of psi over validated records (subclasses may avoid materialising psi)."""
        psi = self._psi_batch(X, y_idx)
        return psi.sum(axis=0) if weight is None else weight @ psi

    def efficacy_terms(self, X: Any, y: Any, batch_size: int = 8192) -> tuple[float, float]:
        """``(A, B)`` of an ``order=2`` proxy: ``A = <w, s>`` and ``B = s^T Q s`` for the
        summed efficacy features ``s`` (see
        :func:`mde.proxies.second_order.second_order_efficacy`)."""
        if self.Q_ is None:
            raise InputError("efficacy_terms needs a proxy built with order=2.")
        s = self.psi_sum(X, y, batch_size)
        return float(self.w_ @ s), float(s @ self.Q_ @ s)

    def efficacy(self, X: Any, y: Any, batch_size: int = 8192) -> float:
        """Efficacy of a data set in plaintext: predicted reduction of the owner's mean test
        log-loss (nats) if the records were added to training; positive = useful."""
        if self.Q_ is not None:
            A, B = self.efficacy_terms(X, y, batch_size)
            return second_order_efficacy(
                A, B, len(np.asarray(y)), self.n_train_, self.curvature_share
            )
        return float(self.record_scores(X, y, batch_size).sum())

    def predict(self, X: Any) -> np.ndarray:
        """Class labels the proxy itself predicts."""
        self._check_fitted()
        Xa = check_matrix(X, self.n_features_in_, feature_names=self.feature_names_in_)
        return np.asarray(self.classes_[self._predict_idx(Xa)])

    def summary(self) -> dict[str, Any]:
        """Kind, fidelity, psi dimension, build time, sketch size and parameters."""
        self._check_fitted()
        sketch = None
        if self.known_ is not None:
            sketch = {
                "components": self.known_.n_components_,
                "tables": self.known_.n_tables,
                "bytes": len(self.known_.to_bytes()),
                "outlier_threshold": self.known_.outlier_threshold_,
            }
        return {
            "kind": self.kind,
            "fidelity": self.fidelity_,
            "psi_dim": self.psi_dim_,
            "order": self.order_,
            "n_features": self.n_features_in_,
            "n_classes": len(self.classes_),
            "build_seconds": self.build_seconds_,
            "membership_sketch": sketch,
            "params": self.get_params(),
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
