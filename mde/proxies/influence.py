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

from mde.proxies.features import fit_compression
from mde.proxies.heads import HeadProxy
from mde.proxies.onnx_graphs import softmax_head_psi_graph
from mde.proxies.registry import register_proxy
from mde.validation import check_number

__all__ = ["InfluenceProxy"]


@register_proxy
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

    def _fit(
        self, bb: Any, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray
    ) -> None:
        l2 = check_number(
            "l2 (the head's Hessian is singular without it)", self.l2, low=0.0, low_open=True
        )
        r = check_number("n_components", self.n_components, integer=True, low=1)
        rng = np.random.default_rng(self.random_state)
        self.P_, self.c_ = fit_compression(Xtr, self.compression, r, rng)
        self._fit_head(bb, Xtr, Xte, yte, l2, None, rng)

    def _phi(self, X: np.ndarray) -> np.ndarray:
        return X @ self.P_ + self.c_

    def _psi_onnx(self) -> bytes:
        return softmax_head_psi_graph(self.P_, self.c_, self.theta_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"P_": self.P_, "c_": self.c_, **self._head_state()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.P_, self.c_ = arrays["P_"], arrays["c_"]
        self._set_head_state(arrays)
