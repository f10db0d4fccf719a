"""Cheap subset utilities for Shapley valuation: refit the proxy, not the black box.

Each proxy kind that can value subsets supplies ``subset_utility`` (the
:class:`SupportsSubsetUtility` protocol): the tree proxy refits its
leaves' class counts exactly; head proxies (influence, student) take one Newton step of
the head on D_tr plus S (:class:`mde.proxies.heads.HeadNewtonStep`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mde.errors import InputError
from mde.valuation.shapley import ShapleyResult, largest_subset_shapley, permutation_shapley

__all__ = ["proxy_utility", "influence_shapley", "SupportsSubsetUtility"]


@runtime_checkable
class SupportsSubsetUtility(Protocol):
    """A proxy that can value subsets of records by refitting itself (for Shapley values)."""

    def subset_utility(
        self, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any | None = None
    ) -> Any:
        """``U(S)`` for index tuples ``S`` of the records ``(X, y)``."""
        ...


def proxy_utility(
    proxy: Any, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any | None = None
) -> Callable[[tuple[int, ...]], float]:
    """``U(S)`` for subsets S of the records (X, y), in nats of test log-loss reduction.

    Raises
    ------
    InputError
        If the proxy kind supplies no subset utility (pass your own callable instead).
    """
    if not isinstance(proxy, SupportsSubsetUtility):
        raise InputError(f"no subset utility for {type(proxy).__name__}; pass your own callable.")
    utility: Callable[[tuple[int, ...]], float] = proxy.subset_utility(
        X, y, X_test, y_test, X_train
    )
    return utility


def influence_shapley(
    proxy: Any,
    X: Any,
    y: Any,
    X_test: Any,
    y_test: Any,
    X_train: Any | None = None,
    method: str = "all_subsets",
    n_permutations: int = 100,
    random_state: int | None = None,
) -> ShapleyResult:
    """Seed 002's influence heuristics (section 4.5) on the proxy's refit utility.

    ``"all_subsets"``: permutation sampling where every marginal contribution comes from
    the proxy refit (a Newton step of the head, or exact leaf counts) instead of retraining.
    ``"largest_subset"``: leave-one-out contributions from the full set, scaled to U(I).
    """
    U = proxy_utility(proxy, X, y, X_test, y_test, X_train)
    n = len(np.asarray(y))
    if method == "all_subsets":
        return permutation_shapley(U, n, n_permutations, random_state=random_state)
    if method == "largest_subset":
        return largest_subset_shapley(U, n)
    raise InputError(f"method must be 'all_subsets' or 'largest_subset'; got {method!r}.")
