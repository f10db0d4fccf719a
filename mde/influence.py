"""Influence proxy: a softmax head on compressed inputs, valued with influence functions.

The head ``p(x) = softmax(Theta phi(x))`` (``phi`` = whitened PCA or random projection of
``x`` plus a constant 1) is fitted with L2 strength ``l2`` to the black box's probabilities
on ``X_train``. With ``H`` the Hessian of the regularised mean training loss and
``g_test`` the mean gradient of the test log-loss (true test labels),

    psi(x, y) = vec((p(x) - e_y) phi(x)^T)        (the record's loss gradient)
    w        = H^-1 g_test / n_train

so ``<w, psi(z)>`` is the first-order reduction of the head's mean test log-loss (nats)
when ``z`` is added to the ``n_train`` training records (Koh & Liang; seed 000 eq. 7 with
the sign turned so that useful is positive). The efficacy of a set is the sum over its
records (additive, first order).

With ``order=2`` the proxy also keeps the curvature of the test loss along the step: for a
set of ``n_S`` records with summed features ``s``, ``A = <w, s>`` and ``B = s^T Q s`` with
``Q = H^-1 H_test H^-1 / n_train^2`` (``H_test`` the test loss Hessian), and the efficacy is
``r A - r^2 B / 2`` with ``r = n_train / (n_train + c n_S)``: the new records' own curvature
shortens the step, taken as ``n_S`` times D_tr's mean curvature and reduced to a scalar by
its share ``c = tr(H^-1 H_data) / m`` of the regularised Hessian
(:func:`mde.report.second_order_efficacy`). It is no longer additive over records: value
grows with diminishing returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from adapters.base import softmax
from mde.compression import fit_compression
from mde.errors import InputError
from mde.proxy import Proxy
from mde.validation import check_number

__all__ = ["InfluenceProxy", "HeadProxy", "fit_softmax_head", "head_hessian", "head_test_loss"]


def _residual(phi: np.ndarray, theta: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """p(x) - e_y: the head's loss gradient with respect to its logits."""
    diff = softmax(phi @ theta.T)
    diff[np.arange(len(y_idx)), y_idx] -= 1.0
    return diff


def _head_psi(phi: np.ndarray, theta: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    diff = _residual(phi, theta, y_idx)
    return (diff[:, :, None] * phi[:, None, :]).reshape(len(y_idx), -1)


def head_test_loss(phi: np.ndarray, theta: np.ndarray, y_idx: np.ndarray) -> float:
    """Mean log-loss of the head ``softmax(phi theta^T)`` on labelled records."""
    p = softmax(phi @ theta.T)
    return float(-np.log(np.clip(p[np.arange(len(y_idx)), y_idx], 1e-300, None)).mean())


def fit_softmax_head(
    phi: np.ndarray, targets: np.ndarray, l2: float, sample_weight: np.ndarray | None = None, n: int | None = None
) -> np.ndarray:
    """Minimise ``sum_i s_i CE(targets_i, softmax(Theta phi_i)) / n + (l2 / 2) ||Theta||^2``
    with L-BFGS (``s`` = ``sample_weight``, default ones; ``n`` default ``len(phi)``)."""
    q = phi.shape[1]
    k = targets.shape[1]
    n = phi.shape[0] if n is None else n
    if sample_weight is not None:
        targets = targets * sample_weight[:, None]
    sw = np.ones(phi.shape[0]) if sample_weight is None else sample_weight

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        theta = flat.reshape(k, q)
        logits = phi @ theta.T
        logits -= logits.max(axis=1, keepdims=True)
        logz = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        logp = logits - logz
        loss = -(targets * logp).sum() / n + 0.5 * l2 * (flat @ flat)
        grad = (np.exp(logp) * sw[:, None] - targets).T @ phi / n + l2 * theta
        return loss, grad.ravel()

    res = minimize(fun, np.zeros(k * q), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15})
    theta = res.x.reshape(k, q)
    # Newton polish: influence functions assume an exact stationary point
    for _ in range(5):
        _, grad = fun(theta.ravel())
        if np.abs(grad).max() < 1e-11:
            break
        H = head_hessian(phi, theta, l2, sample_weight=sw, n=n)
        theta = theta - np.linalg.solve(H, grad).reshape(k, q)
    return theta


def head_hessian(
    phi: np.ndarray,
    theta: np.ndarray,
    l2: float,
    chunk: int = 2048,
    sample_weight: np.ndarray | None = None,
    n: int | None = None,
) -> np.ndarray:
    """Hessian of the regularised (weighted) mean cross-entropy of a softmax head, in the
    row-major ``vec(Theta)`` order of ``psi``."""
    q = phi.shape[1]
    k = theta.shape[0]
    n = phi.shape[0] if n is None else n
    sw = np.ones(phi.shape[0]) if sample_weight is None else sample_weight
    H = np.zeros((k * q, k * q))
    for i in range(0, phi.shape[0], chunk):
        f = phi[i : i + chunk]
        p = softmax(f @ theta.T)
        s = sw[i : i + chunk, None]
        # H = sum_i s_i (diag(p_i) - p_i p_i^T) kron f_i f_i^T
        pf = ((p * np.sqrt(s))[:, :, None] * f[:, None, :]).reshape(len(f), k * q)
        H -= pf.T @ pf
        diag = np.einsum("ia,ij,il->ajl", p * s, f, f)
        for a in range(k):
            H[a * q : (a + 1) * q, a * q : (a + 1) * q] += diag[a]
    H /= n
    H[np.diag_indices_from(H)] += l2
    return H


class HeadProxy(Proxy):
    """Base of proxies whose psi is the loss gradient of a softmax head on features phi(x).

    Subclasses define ``_phi`` (features with a trailing constant 1) and the ONNX graph of
    it; this class fits the head to the black box's probabilities on ``X_train`` with L2
    strength ``l2``, and sets ``w = H^-1 g_test / n_train``. With ``projection_dim`` k,
    psi is projected by a fixed Gaussian matrix R (m x k, low-rank gradient projection as
    in seed 003) and ``w = (R^T H R)^-1 R^T g_test / n_train``: the Newton step restricted
    to the projected subspace.
    """

    R_: np.ndarray | None = None

    def _phi(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fit_head(self, bb: Any, Xtr: np.ndarray, Xte: np.ndarray, yte: np.ndarray, l2: float,
                  projection_dim: int | None, rng: np.random.Generator) -> None:
        order = getattr(self, "order", 1)
        if order not in (1, 2) or isinstance(order, bool):
            raise InputError(f"order must be 1 (additive, first-order influence) or 2 (with the pairwise term); got {order!r}.")
        phi = self._phi(Xtr)
        n = Xtr.shape[0]
        self.theta_ = fit_softmax_head(phi, bb.predict_proba(Xtr), l2)
        H = head_hessian(phi, self.theta_, l2)
        phi_te = self._phi(Xte)
        g_test = _head_psi(phi_te, self.theta_, yte).mean(axis=0)
        m = H.shape[0]
        self.R_ = None
        if projection_dim is not None and projection_dim < m:
            self.R_ = rng.standard_normal((m, projection_dim)) / np.sqrt(projection_dim)
        R = np.eye(m) if self.R_ is None else self.R_
        H_r = H if self.R_ is None else R.T @ H @ R  # Newton step restricted to the span of R
        self.w_ = np.linalg.solve(H_r, R.T @ g_test) / n
        self.Q_ = None
        self.data_curvature_ = None
        if order == 2:
            # step d = -R H_r^-1 s / n moves the test loss by -<w, s> + d^T H_test d / 2
            H_test = head_hessian(phi_te, self.theta_, 0.0)
            A = np.linalg.solve(H_r, R.T @ H_test @ R)
            Q = np.linalg.solve(H_r, A.T).T / n**2  # H_r^-1 (R^T H_test R) H_r^-1 / n^2
            self.Q_ = (Q + Q.T) / 2.0
            # share of the curvature that comes from the data (the rest is L2): new records
            # add curvature like D_tr's records, which shortens the step (see report.py)
            H_data = R.T @ (H - l2 * np.eye(m)) @ R
            self.data_curvature_ = float(np.trace(np.linalg.solve(H_r, H_data)) / H_r.shape[0])

    def _head_residual(self, phi: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """The head's loss gradient with respect to its outputs (softmax: p(x) - e_y)."""
        return _residual(phi, self.theta_, y_idx)

    def _psi_batch(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        phi = self._phi(X)
        diff = self._head_residual(phi, y_idx)
        psi = (diff[:, :, None] * phi[:, None, :]).reshape(len(y_idx), -1)
        return psi if self.R_ is None else psi @ self.R_

    def _psi_sum(self, X: np.ndarray, y_idx: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        # sum_i w_i vec(diff_i phi_i^T) = vec((w diff)^T phi): one product, psi never materialised
        phi = self._phi(X)
        diff = self._head_residual(phi, y_idx)
        if weight is not None:
            diff *= weight[:, None]
        total = (diff.T @ phi).ravel()
        return total if self.R_ is None else total @ self.R_

    def _scores_batch(self, X: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        # <w, vec(diff phi^T)> = sum_a diff_a (W phi)_a, without materialising psi
        phi = self._phi(X)
        diff = self._head_residual(phi, y_idx)
        w_full = self.w_ if self.R_ is None else self.R_ @ self.w_
        W = w_full.reshape(self.theta_.shape)
        return np.einsum("ia,ia->i", diff, phi @ W.T)

    def _predict_idx(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self._phi(X) @ self.theta_.T, axis=1)

    def _head_state(self) -> dict[str, np.ndarray]:
        out = {"theta_": self.theta_, "w_": self.w_}
        if self.R_ is not None:
            out["R_"] = self.R_
        if getattr(self, "Q_", None) is not None:
            out["Q_"] = self.Q_
            out["data_curvature_"] = np.array(self.data_curvature_)
        return out

    def _set_head_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.theta_, self.w_ = arrays["theta_"], arrays["w_"]
        self.R_ = arrays.get("R_")
        self.Q_ = arrays.get("Q_")
        self.data_curvature_ = float(arrays["data_curvature_"]) if "data_curvature_" in arrays else None


class InfluenceProxy(HeadProxy):
    """Influence of records on a compressed softmax head of the black box.

    Parameters
    ----------
    n_components : int
        Compression dimension r (clipped to the data). psi has ``k * (r + 1)`` features.
    compression : {"pca", "random"}
        PCA fitted on ``X_train`` or a Gaussian random projection; both whitened.
    l2 : float
        L2 strength of the head (on whitened features, so comparable across data sets).
    order : {1, 2}
        1: additive first-order influence. 2: with the pairwise (second-order) term; the
        artifact then carries an encrypted ``m (m + 1) / 2`` matrix as well (see the module).
    exclude_known : bool or "auto"
        Ship a membership sketch of ``X_train`` (:mod:`mde.membership`) so that copies and
        near-copies of training records score zero. ``"auto"``: on when the training data
        has at least 12 principal directions (with fewer, the sketch's cells could be listed).
    outlier_margin : float or None
        With the sketch, records farther from the training data's principal subspace than
        ``outlier_margin`` times the farthest training record (records from another
        distribution) score zero too. None: no outlier screen.
    random_state : int, optional
    """

    kind = "influence"

    def __init__(
        self,
        *,
        n_components: int = 16,
        compression: str = "pca",
        l2: float = 0.1,
        order: int = 1,
        exclude_known: bool | str = "auto",
        outlier_margin: float | None = 1.1,
        random_state: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.compression = compression
        self.l2 = l2
        self.order = order
        self.exclude_known = exclude_known
        self.outlier_margin = outlier_margin
        self.random_state = random_state

    def _fit(self, bb: Any, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray) -> None:
        l2 = check_number("l2 (the head's Hessian is singular without it)", self.l2, low=0.0, low_open=True)
        r = check_number("n_components", self.n_components, integer=True, low=1)
        rng = np.random.default_rng(self.random_state)
        self.P_, self.c_ = fit_compression(Xtr, self.compression, r, rng)
        self._fit_head(bb, Xtr, Xte, yte, l2, None, rng)

    def _phi(self, X: np.ndarray) -> np.ndarray:
        return X @ self.P_ + self.c_

    def _psi_onnx(self) -> bytes:
        from mde.onnx_graphs import softmax_head_psi_graph

        return softmax_head_psi_graph(self.P_, self.c_, self.theta_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"P_": self.P_, "c_": self.c_, **self._head_state()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.P_, self.c_ = arrays["P_"], arrays["c_"]
        self._set_head_state(arrays)
