"""Cheap utilities of record subsets for Shapley valuation (``pricing.shapley``): refit the
proxy, not the black box.

- tree proxy: exact refit of the leaves' class counts; ``U(S)`` is the reduction of the
  mean test log-loss when the records of S join the owner's training counts;
- influence and student proxies: one Newton step of the head's training objective on
  D_tr plus S from its fitted parameters, and the exact test log-loss there
  (:class:`HeadNewtonStep`). Unlike the proxy's first-order efficacy, this utility is not
  additive over records, and a large S moves the head less per record than a small one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mde.errors import InputError
from mde.proxy import Proxy
from mde.validation import check_matrix

__all__ = ["proxy_utility", "influence_shapley", "HeadNewtonStep"]


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

    def __init__(self, proxy: Any, X_train: np.ndarray) -> None:
        from mde.influence import head_hessian

        lam, self.Q = np.linalg.eigh(head_hessian(proxy._phi(X_train), proxy.theta_, 0.0))
        self.lam = np.maximum(lam, 0.0)
        self.l2 = float(proxy.l2)
        self.n_train = X_train.shape[0]

    def __call__(self, psi_sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Steps (j, m) for summed psi (j, m) of sets of ``sizes`` (j,) records."""
        c = (np.atleast_2d(psi_sums) @ self.Q) / self.n_train
        c /= self.lam[None, :] * (1.0 + np.asarray(sizes, dtype=float)[:, None] / self.n_train) + self.l2
        return c @ self.Q.T


def proxy_utility(
    proxy: Proxy, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any | None = None
) -> Callable[[tuple[int, ...]], float]:
    """``U(S)`` for subsets S of the records (X, y), in nats of test log-loss reduction.

    ``X_train`` (the owner's training inputs) is needed for head proxies (their Hessian).
    """
    from mde.influence import HeadProxy, _head_psi, head_test_loss
    from mde.tree import TreeProxy

    Xa, yi = proxy._validate(X, y)
    Xt, yt = proxy._validate(X_test, y_test)
    if isinstance(proxy, TreeProxy):
        k = len(proxy.classes_)
        test_counts = np.zeros((proxy.n_leaves_, k))
        np.add.at(test_counts, (proxy._leaf(Xt), yt), 1.0)
        cells = proxy._leaf(Xa) * k + yi
        base_counts = proxy.leaf_counts_ + proxy.alpha

        def loss(counts: np.ndarray) -> float:
            p = counts / counts.sum(axis=1, keepdims=True)
            return float(-(test_counts * np.log(p)).sum() / test_counts.sum())

        base = loss(base_counts)

        def tree_utility(S: tuple[int, ...]) -> float:
            counts = base_counts.ravel().copy()
            np.add.at(counts, cells[list(S)], 1.0)
            return base - loss(counts.reshape(base_counts.shape))

        return tree_utility
    if isinstance(proxy, HeadProxy):
        if X_train is None:
            raise InputError("a head proxy's utility needs the owner's X_train (for its Hessian).")
        Xtr = check_matrix(X_train, proxy.n_features_in_, name="X_train")
        theta = proxy.theta_
        newton = HeadNewtonStep(proxy, Xtr)
        psi = _head_psi(proxy._phi(Xa), theta, yi)
        phi_t = proxy._phi(Xt)
        base = head_test_loss(phi_t, theta, yt)

        def head_utility(S: tuple[int, ...]) -> float:
            if not S:
                return 0.0
            step = newton(psi[list(S)].sum(axis=0), np.array([len(S)]))[0]
            return base - head_test_loss(phi_t, theta - step.reshape(theta.shape), yt)

        return head_utility
    raise InputError(f"no subset utility for {type(proxy).__name__}; pass your own callable.")


def influence_shapley(
    proxy: Proxy,
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    X_train: Any | None = None,
    method: str = "all_subsets",
    n_permutations: int = 100,
    random_state: int | None = None,
) -> Any:
    """Seed 002's influence heuristics (section 4.5) on the proxy's refit utility.

    ``"all_subsets"``: permutation sampling where every marginal contribution comes from
    the proxy refit (a Newton step of the head, or exact leaf counts) instead of retraining.
    ``"largest_subset"``: leave-one-out contributions from the full set, scaled to U(I).
    """
    from pricing.shapley import largest_subset_shapley, permutation_shapley

    U = proxy_utility(proxy, X, y, X_test, y_test, X_train)
    n = len(np.asarray(y))
    if method == "all_subsets":
        return permutation_shapley(U, n, n_permutations, random_state=random_state)
    if method == "largest_subset":
        return largest_subset_shapley(U, n)
    raise InputError(f"method must be 'all_subsets' or 'largest_subset'; got {method!r}.")
