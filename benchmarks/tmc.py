"""Truncated Monte Carlo Data Shapley (Ghorbani & Zou 2019) on the influence proxy's refit
utility, for thousands of records.

``pricing.shapley.permutation_shapley`` calls ``U(subset)`` once per prefix and caches every
subset, which costs O(N^2) time and memory per permutation for N in the thousands. Here the
utility of :func:`mde.utility.proxy_utility` for head proxies (one Newton step of the head
on D_tr plus the prefix, :class:`mde.utility.HeadNewtonStep`, exact test log-loss there) is evaluated for
a chunk of consecutive prefixes at once from a running sum of psi, and a permutation stops
at the first prefix whose utility is within ``tolerance * |U(all)|`` of ``U(all)`` (later
records get a zero marginal in that permutation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mde.errors import InputError

__all__ = ["HeadPrefixUtility", "tmc_shapley", "pooled_set_values"]

PrefixUtility = Callable[[np.ndarray, np.ndarray], np.ndarray]


class HeadPrefixUtility:
    """``mde.utility.proxy_utility`` of a head proxy, evaluated on prefixes of a permutation.

    ``self(start_sum, order, start_size)`` returns ``U(S_0 + order[:1]), ..., U(S_0 + order)``
    where the ``start_size`` records of ``S_0`` have summed psi ``start_sum``.
    """

    def __init__(self, proxy: Any, X: Any, y: Any, X_test: Any, y_test: Any, X_train: Any) -> None:
        from mde.influence import _head_psi, head_test_loss
        from mde.utility import HeadNewtonStep

        Xa, yi = proxy._validate(X, y)
        Xt, self.y_test = proxy._validate(X_test, y_test)
        Xtr = np.asarray(X_train, dtype=float)
        theta = proxy.theta_
        self.theta = theta
        self.newton = HeadNewtonStep(proxy, Xtr)
        self.psi = _head_psi(proxy._phi(Xa), theta, yi)
        self.phi_test = proxy._phi(Xt)
        self.n_train = Xtr.shape[0]
        self.base = head_test_loss(self.phi_test, theta, self.y_test)

    @property
    def n_players(self) -> int:
        return self.psi.shape[0]

    def __call__(self, start_sum: np.ndarray, order: np.ndarray, start_size: int = 0) -> np.ndarray:
        sums = start_sum + np.cumsum(self.psi[order], axis=0)
        steps = self.newton(sums, start_size + np.arange(1, len(order) + 1))
        thetas = self.theta[None] - steps.reshape(len(order), *self.theta.shape)
        k = self.theta.shape[0]
        logits = (self.phi_test @ thetas.reshape(-1, thetas.shape[2]).T).reshape(len(self.y_test), len(order), k)
        top = logits.max(axis=2, keepdims=True)
        log_z = np.log(np.exp(logits - top).sum(axis=2)) + top[:, :, 0]
        true = logits[np.arange(len(self.y_test)), :, self.y_test]
        return self.base - (log_z - true).mean(axis=0)

    def utility(self, S: Sequence[int]) -> float:
        """``U(S)`` for one subset (0 for the empty set)."""
        S = np.asarray(S, dtype=int)
        if S.size == 0:
            return 0.0
        return float(self(np.zeros(self.psi.shape[1]), S)[-1])


def tmc_shapley(
    prefix_utility: HeadPrefixUtility,
    n_permutations: int = 20,
    tolerance: float = 0.01,
    chunk: int = 128,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Truncated Monte Carlo Shapley values of every record of ``prefix_utility``.

    Parameters
    ----------
    prefix_utility : HeadPrefixUtility
    n_permutations : int
        Fixed budget of random permutations.
    tolerance : float
        Truncate a permutation once ``|U(all) - U(prefix)| <= tolerance * |U(all)|``
        (0 = plain permutation sampling).
    chunk : int
        Prefixes evaluated per vectorised call (memory ~ chunk x n_test x n_classes).
    random_state : int, optional

    Returns
    -------
    dict
        ``values`` (n_players,), ``stderr``, ``evaluations`` (utility evaluations),
        ``truncated_at`` (mean fraction of each permutation evaluated), ``seconds``.
    """
    if n_permutations < 1 or tolerance < 0:
        raise InputError("need n_permutations >= 1 and tolerance >= 0.")
    start = time.perf_counter()
    n = prefix_utility.n_players
    m = prefix_utility.psi.shape[1]
    full = prefix_utility.utility(np.arange(n))
    rng = np.random.default_rng(random_state)
    samples = np.zeros((n_permutations, n))
    evaluations, depth = 0, []
    for t in range(n_permutations):
        perm = rng.permutation(n)
        running, prev, pos = np.zeros(m), 0.0, 0
        while pos < n:
            order = perm[pos : pos + chunk]
            u = prefix_utility(running, order, pos)
            evaluations += len(order)
            close = np.flatnonzero(np.abs(full - u) <= tolerance * abs(full))
            stop = close[0] + 1 if close.size else len(order)
            samples[t, order[:stop]] = np.diff(np.r_[prev, u[:stop]])
            pos += stop
            if close.size:
                break
            running = running + prefix_utility.psi[order].sum(axis=0)
            prev = u[-1]
        depth.append(pos / n)
    stderr = samples.std(axis=0, ddof=1) / np.sqrt(n_permutations) if n_permutations > 1 else np.full(n, np.nan)
    return {"values": samples.mean(axis=0), "stderr": stderr, "evaluations": evaluations,
            "truncated_at": float(np.mean(depth)), "seconds": time.perf_counter() - start}


def pooled_set_values(
    candidates: Sequence[tuple[np.ndarray, np.ndarray]], record_values: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Value every candidate set by the sum of its records' values, computed once over the
    pool of distinct records of all sets (a record offered in several sets is one player).

    ``record_values(X_pool, y_pool)`` returns one value per pooled record.
    """
    index: dict[bytes, int] = {}
    members: list[np.ndarray] = []
    rows_X, rows_y = [], []
    for X, y in candidates:
        ids = []
        for x_row, y_i in zip(np.asarray(X, dtype=float), np.asarray(y)):
            key = x_row.tobytes() + np.asarray(y_i).tobytes()
            if key not in index:
                index[key] = len(rows_y)
                rows_X.append(x_row)
                rows_y.append(y_i)
            ids.append(index[key])
        members.append(np.asarray(ids, dtype=int))
    values = np.asarray(record_values(np.vstack(rows_X), np.asarray(rows_y)))
    return np.array([values[ids].sum() for ids in members])
