"""Softmax heads on features phi(x): the shared core of the influence and student proxies.

The head ``p(x) = softmax(Theta phi(x))`` is fitted with L2 strength ``l2`` to the black
box's probabilities on ``X_train``. With ``H`` the Hessian of the regularised mean training
loss and ``g_test`` the mean gradient of the test log-loss (true test labels),

    psi(x, y) = vec((p(x) - e_y) phi(x)^T)        (the record's loss gradient)
    w        = H^-1 g_test / n_train

so ``<w, psi(z)>`` is the first-order reduction of the head's mean test log-loss (nats)
when ``z`` is added to the ``n_train`` training records (Koh & Liang; seed 000 eq. 7 with
the sign turned so that useful is positive). See :mod:`mde.proxies.influence` for the
second-order term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import minimize

from mde.errors import InputError
from mde.numerics import softmax
from mde.proxies.base import Proxy
from mde.validation import check_matrix

__all__ = [
    "HeadProxy",
    "HeadNewtonStep",
    "fit_softmax_head",
    "head_hessian",
    "head_test_loss",
    "head_psi",
]


def _residual(phi: np.ndarray, theta: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """p(x) - e_y: the head's loss gradient with respect to its logits."""
    diff = softmax(phi @ theta.T)
    diff[np.arange(len(y_idx)), y_idx] -= 1.0
    return diff


def head_psi(phi: np.ndarray, theta: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """Per-record loss gradients ``vec((p - e_y) phi^T)`` of a softmax head, shape (n, k q)."""
    diff = _residual(phi, theta, y_idx)
    return (diff[:, :, None] * phi[:, None, :]).reshape(len(y_idx), -1)


def head_test_loss(phi: np.ndarray, theta: np.ndarray, y_idx: np.ndarray) -> float:
    """Mean log-loss of the head ``softmax(phi theta^T)`` on labelled records."""
    p = softmax(phi @ theta.T)
    return float(-np.log(np.clip(p[np.arange(len(y_idx)), y_idx], 1e-300, None)).mean())


def fit_softmax_head(
    phi: np.ndarray,
    targets: np.ndarray,
    l2: float,
    sample_weight: np.ndarray | None = None,
    n: int | None = None,
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

    res = minimize(
        fun,
        np.zeros(k * q),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15},
    )
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

    order: int = 1
    l2: float = 0.1
    theta_: np.ndarray
    R_: np.ndarray | None = None

    def _phi(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fit_head(
        self,
        bb: Any,
        Xtr: np.ndarray,
        Xte: np.ndarray,
        yte: np.ndarray,
        l2: float,
        projection_dim: int | None,
        rng: np.random.Generator,
    ) -> None:
        order = self.order
        if order not in (1, 2) or isinstance(order, bool):
            raise InputError(
                "order must be 1 (additive, first-order influence) or 2 (with the pairwise term); "
                f"got {order!r}."
            )
        phi = self._phi(Xtr)
        n = Xtr.shape[0]
        self.theta_ = fit_softmax_head(phi, bb.predict_proba(Xtr), l2)
        H = head_hessian(phi, self.theta_, l2)
        phi_te = self._phi(Xte)
        g_test = head_psi(phi_te, self.theta_, yte).mean(axis=0)
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

    def _psi_sum(
        self, X: np.ndarray, y_idx: np.ndarray, weight: np.ndarray | None = None
    ) -> np.ndarray:
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
        if self.Q_ is not None:
            out["Q_"] = self.Q_
            out["data_curvature_"] = np.array(self.data_curvature_, dtype=float)
        return out

    def _set_head_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.theta_, self.w_ = arrays["theta_"], arrays["w_"]
        self.R_ = arrays.get("R_")
        self.Q_ = arrays.get("Q_")
        self.data_curvature_ = (
            float(arrays["data_curvature_"]) if "data_curvature_" in arrays else None
        )

    def subset_utility(
        self, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any | None = None
    ) -> Callable[[tuple[int, ...]], float]:
        """``U(S)`` for subsets S of the records ``(X, y)``, in nats of test log-loss reduction:
        one Newton step of the head's objective on D_tr plus S (:class:`HeadNewtonStep`) and
        the exact test log-loss there. Needs the owner's ``X_train`` (for the Hessian)."""
        if X_train is None:
            raise InputError("a head proxy's utility needs the owner's X_train (for its Hessian).")
        Xa, yi = self.validate(X, y)
        Xt, yt = self.validate(X_test, y_test)
        newton = HeadNewtonStep(self, check_matrix(X_train, self.n_features_in_, name="X_train"))
        theta = self.theta_
        psi = head_psi(self._phi(Xa), theta, yi)
        phi_t = self._phi(Xt)
        base = head_test_loss(phi_t, theta, yt)

        def utility(S: tuple[int, ...]) -> float:
            if not S:
                return 0.0
            step = newton(psi[list(S)].sum(axis=0), np.array([len(S)]))[0]
            return base - head_test_loss(phi_t, theta - step.reshape(theta.shape), yt)

        return utility

    def prefix_utility(
        self, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any
    ) -> HeadPrefixUtility:
        """:meth:`subset_utility` vectorised over the prefixes of a permutation (for
        :func:`mde.valuation.permutation_shapley` on thousands of records)."""
        return HeadPrefixUtility(self, X, y, X_test, y_test, X_train)

    def features(self, X: Any) -> np.ndarray:
        """The head's input features ``phi(x)`` (with the trailing constant 1)."""
        self._check_fitted()
        return self._phi(check_matrix(X, self.n_features_in_, feature_names=self.feature_names_in_))


class HeadNewtonStep:
    """One Newton step of a head proxy's objective on D_tr plus S, from its fitted ``theta``.

    The records of S get the training records' weight ``1 / n_train`` and, for the Hessian
    only, the mean Hessian of D_tr (per-record Hessians of a softmax head do not depend on
    labels, so this is exact for S drawn like D_tr):

        theta_S = theta - (H_data (1 + |S| / n_train) + l2 I)^-1 sum_S psi / n_train

    ``H_data`` is D_tr's mean cross-entropy Hessian. Without the ``|S| / n_train`` term a set
    several times larger than D_tr overshoots (its step is as if each record were alone).

    Parameters
    ----------
    proxy : HeadProxy
        A built influence or student proxy.
    X_train : array (n_train, n_features)
        The owner's training inputs, validated.
    """

    def __init__(self, proxy: HeadProxy, X_train: np.ndarray) -> None:
        lam, self.Q = np.linalg.eigh(head_hessian(proxy.features(X_train), proxy.theta_, 0.0))
        self.lam = np.maximum(lam, 0.0)
        self.l2 = float(proxy.l2)
        self.n_train = X_train.shape[0]

    def __call__(self, psi_sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Steps (j, m) for summed psi (j, m) of sets of ``sizes`` (j,) records."""
        c = (np.atleast_2d(psi_sums) @ self.Q) / self.n_train
        c /= (
            self.lam[None, :] * (1.0 + np.asarray(sizes, dtype=float)[:, None] / self.n_train)
            + self.l2
        )
        return np.asarray(c @ self.Q.T)


class HeadPrefixUtility:
    """A head proxy's subset utility on the prefixes of a permutation, a chunk at a time:
    ``self(perm, start, stop)`` is ``U(perm[:j])`` for ``j = start + 1 .. stop``."""

    def __init__(
        self, proxy: HeadProxy, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any
    ) -> None:
        Xa, yi = proxy.validate(X, y)
        Xt, self.y_test = proxy.validate(X_test, y_test)
        Xtr = check_matrix(X_train, proxy.n_features_in_, name="X_train")
        self.theta = proxy.theta_
        self.newton = HeadNewtonStep(proxy, Xtr)
        self.psi = head_psi(proxy.features(Xa), self.theta, yi)
        self.phi_test = proxy.features(Xt)
        self.base = head_test_loss(self.phi_test, self.theta, self.y_test)
        self.n_players = self.psi.shape[0]

    def __call__(self, perm: np.ndarray, start: int, stop: int) -> np.ndarray:
        lo = max(start, 0)
        sizes = np.arange(lo + 1, stop + 1)
        sums = self.psi[perm[:lo]].sum(axis=0) + np.cumsum(self.psi[perm[lo:stop]], axis=0)
        thetas = self.theta[None] - self.newton(sums, sizes).reshape(len(sizes), *self.theta.shape)
        k = self.theta.shape[0]
        logits = (self.phi_test @ thetas.reshape(-1, thetas.shape[2]).T).reshape(
            len(self.y_test), len(sizes), k
        )
        top = logits.max(axis=2, keepdims=True)
        log_z = np.log(np.exp(logits - top).sum(axis=2)) + top[:, :, 0]
        true = logits[np.arange(len(self.y_test)), :, self.y_test]
        u = self.base - (log_z - true).mean(axis=0)
        return np.r_[0.0, u] if start < 0 else u
