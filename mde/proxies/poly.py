"""Polynomial proxies: every step from a record to its score is a low-degree polynomial,
so the score can be evaluated under CKKS on encrypted records (hidden-proxy mode).

:class:`PolyInfluenceProxy` replaces the influence proxy's softmax head with a squared-loss
(linear) head on the same compressed features ``phi(x) = x P + c``. With ``Theta`` the
ridge fit of the black box's probabilities, ``G = Phi^T Phi / n + l2 I`` and ``W`` the
reshaped value vector,

    psi(x, y)  = vec((Theta phi - e_y) phi^T)          (squared-loss gradient)
    W          = (G^-1 g_test)^T / n                    (H = I_K kron G, block diagonal)
    score(x, y) = sum_k (u_k - y_k) v_k,  u = x A + a,  v = x B + b

with ``A = P Theta^T, a = c Theta^T, B = P W^T, b = c W^T``: two affine maps of the
record, one product with the label, one sum (multiplicative depth 2). ``g_test`` is the
mean gradient of the head's squared test loss (Brier score / 2) on the true test labels, so
the efficacy is its predicted reduction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.errors import InputError
from mde.proxies.features import fit_compression
from mde.proxies.influence import InfluenceProxy
from mde.proxies.onnx_graphs import score_graph, softmax_head_psi_graph
from mde.proxies.registry import register_proxy
from mde.validation import check_number

__all__ = ["PolyInfluenceProxy", "POLY_UNITS"]

POLY_UNITS = (
    "predicted reduction of the proxy's mean squared test loss (half the Brier score) if the "
    "records were added to its training set; positive = useful"
)


@register_proxy
class PolyInfluenceProxy(InfluenceProxy):
    """Influence on a squared-loss head of compressed inputs (CKKS-evaluable).

    Parameters are those of :class:`mde.proxies.influence.InfluenceProxy`.
    """

    kind = "influence-poly"
    units = POLY_UNITS
    score_bound_: float

    def _fit(
        self, bb: Any, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray
    ) -> None:
        if self.order != 1:
            raise InputError(
                "kind='influence-poly' supports order=1 only (its score must stay a depth-2 "
                "polynomial); "
                f"got order={self.order!r}."
            )
        l2 = check_number(
            "l2 (the head's Hessian is singular without it)", self.l2, low=0.0, low_open=True
        )
        r = check_number("n_components", self.n_components, integer=True, low=1)
        self.P_, self.c_ = fit_compression(
            Xtr, self.compression, r, np.random.default_rng(self.random_state)
        )
        phi = self._phi(Xtr)
        n = phi.shape[0]
        G = phi.T @ phi / n + l2 * np.eye(phi.shape[1])
        self.theta_ = np.linalg.solve(G, phi.T @ bb.predict_proba(Xtr) / n).T
        phi_te = self._phi(Xte)
        g_test = self._head_residual(phi_te, yte).T @ phi_te / len(yte)
        self.w_ = (np.linalg.solve(G, g_test.T).T / n).ravel()
        self.R_ = None
        self.Q_ = None
        self.data_curvature_ = None
        self.score_bound_ = float(np.abs(self._scores_batch(Xte, yte)).max()) or 1.0

    def _head_residual(self, phi: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
        """Squared-loss residual of the linear head: Theta phi(x) - e_y."""
        diff = phi @ self.theta_.T
        diff[np.arange(len(y_idx)), y_idx] -= 1.0
        return diff

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "score_bound_": np.array(self.score_bound_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.score_bound_ = float(arrays["score_bound_"])

    def _psi_onnx(self) -> bytes:
        return softmax_head_psi_graph(self.P_, self.c_, self.theta_, softmax=False)

    def score_graph(self, scale: float = 1.0) -> bytes:
        """Encryptable ONNX graph of ``scale * score(x, y)``: inputs ``X`` float32 [n, d] and
        ``Y`` float32 [n, k] (one-hot labels), output ``score`` [n, 1]. Holds the weights:
        it never leaves the model owner."""
        W = self.w_.reshape(self.theta_.shape) * scale
        return score_graph(
            self.P_ @ self.theta_.T, self.c_ @ self.theta_.T, self.P_ @ W.T, self.c_ @ W.T
        )
