"""Shapley values of data (Jia et al. 2019, seed 002): exact and approximate estimators over
a utility ``U(subset) -> float``, where a subset is a sorted tuple of player indices.

=============================  ==========================================  =================
function                       method                                      utility calls
=============================  ==========================================  =================
:func:`exact_shapley`          enumeration of all 2^N subsets              2^N
:func:`permutation_shapley`    permutation sampling (4.1), optionally      N * permutations
                               truncated (TMC, Ghorbani & Zou 2019)        (fewer if truncated)
:func:`group_testing_shapley`  group testing + feasibility LP (Alg. 1)     tests
:func:`compressive_shapley`    compressive permutation sampling (Alg. 2)   N * permutations
                               (both in :mod:`mde.valuation.group_testing`)
:func:`uniform_shapley`        uniform division for stable learners (4.4)  1
:func:`largest_subset_shapley` leave-one-out scaled to U(I) (4.5)          N + 1
:func:`knn_shapley`            exact KNN-Shapley recursion, O(N log N)     none
=============================  ==========================================  =================

Every function returns a :class:`ShapleyResult`; sampled ones are reproducible with
``random_state``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from mde.errors import InputError

__all__ = [
    "ShapleyResult",
    "CachedUtility",
    "check_n",
    "marginals",
    "exact_shapley",
    "permutation_shapley",
    "permutation_count",
    "PrefixUtility",
    "SubsetPrefixUtility",
    "uniform_shapley",
    "largest_subset_shapley",
    "knn_shapley",
]

Utility = Callable[[tuple[int, ...]], float]


class ShapleyResult(BaseModel):
    """Values of N players, with standard errors where sampled."""

    model_config = ConfigDict(frozen=True)

    values: list[float]
    stderr: list[float] | None = None
    method: str
    n_evaluations: int
    seconds: float
    params: dict[str, Any] = {}

    def as_array(self) -> np.ndarray:
        return np.asarray(self.values)


class CachedUtility:
    """Wrap a utility so that repeated subsets are evaluated once; counts evaluations."""

    def __init__(self, utility: Utility) -> None:
        if not callable(utility):
            raise InputError("utility must be a callable U(subset) -> float.")
        self.utility = utility
        self.cache: dict[tuple[int, ...], float] = {}
        self.calls = 0

    def __call__(self, subset: Sequence[int] | np.ndarray) -> float:
        key = tuple(sorted(int(i) for i in subset))
        if key not in self.cache:
            value = float(self.utility(key))
            if not math.isfinite(value):
                raise InputError(f"utility returned {value} for subset {key}; it must be finite.")
            self.cache[key] = value
            self.calls += 1
        return self.cache[key]


def check_n(n: int, limit: int | None = None) -> int:
    """Validate a number of players (at most ``limit`` for exact enumeration)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n_players must be a positive integer; got {n!r}.")
    if limit is not None and n > limit:
        raise InputError(
            f"exact enumeration over {n} players needs 2^{n} utility calls; use <= {limit} players "
            "or an approximate method."
        )
    return int(n)


def exact_shapley(utility: Utility, n_players: int) -> ShapleyResult:
    """Exact Shapley values by enumerating every subset (N <= 20)."""
    n = check_n(n_players, 20)
    start = time.perf_counter()
    U = CachedUtility(utility)
    values = np.zeros(n)
    weights = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    for k in range(n):
        for S in combinations(range(n), k):
            base = U(S)
            members = set(S)
            for i in range(n):
                if i not in members:
                    values[i] += weights[k] * (U(tuple(sorted((*S, i)))) - base)
    return ShapleyResult(
        values=values.tolist(),
        method="exact",
        n_evaluations=U.calls,
        seconds=time.perf_counter() - start,
    )


def permutation_count(n_players: int, epsilon: float, delta: float, utility_range: float) -> int:
    """Permutations for an (epsilon, delta) l2-approximation (Hoeffding; seed 002 section 4.1):
    ``2 r^2 N / epsilon^2 * log(2 N / delta)``."""
    return int(
        math.ceil(2 * utility_range**2 * n_players / epsilon**2 * math.log(2 * n_players / delta))
    )


def marginals(U: CachedUtility, perm: np.ndarray) -> np.ndarray:
    """Marginal contribution of each player along one permutation (untruncated)."""
    out = np.zeros(len(perm))
    prefix: list[int] = []
    prev = U(())
    for i in perm:
        prefix.append(int(i))
        cur = U(prefix)
        out[i] = cur - prev
        prev = cur
    return out


@runtime_checkable
class PrefixUtility(Protocol):
    """Utilities of the prefixes of a permutation, evaluated a chunk at a time.

    ``prefix(perm, start, stop)`` returns ``U(perm[:j])`` for ``j = start + 1 .. stop``
    (``start = -1`` includes the empty set).
    Proxies may supply a vectorised one (:meth:`mde.proxies.heads.HeadProxy.prefix_utility`);
    :class:`SubsetPrefixUtility` makes one from any subset utility.
    """

    n_players: int

    def __call__(self, perm: np.ndarray, start: int, stop: int) -> np.ndarray: ...


class SubsetPrefixUtility:
    """Prefix utilities from a subset utility ``U(tuple)``, each subset evaluated once."""

    def __init__(self, utility: Utility, n_players: int) -> None:
        self.n_players = check_n(n_players)
        self.cached = CachedUtility(utility)

    def __call__(self, perm: np.ndarray, start: int, stop: int) -> np.ndarray:
        return np.array([self.cached(perm[:j]) for j in range(start + 1, stop + 1)])


def _run_permutations(
    prefix: PrefixUtility, perms: np.ndarray, truncation: float, chunk: int, progress: bool
) -> tuple[np.ndarray, int, list[float]]:
    n = prefix.n_players
    full = float(prefix(np.arange(n), n - 1, n)[-1]) if truncation > 0 else 0.0
    empty = float(prefix(np.arange(n), -1, 0)[0])
    samples = np.zeros((len(perms), n))
    evaluations, depth = 0, []
    rows: Any = perms
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(perms, desc="permutations")
    for t, perm in enumerate(rows):
        prev, pos = empty, 0
        while pos < n:
            stop = min(n, pos + chunk)
            u = prefix(perm, pos, stop)
            evaluations += stop - pos
            close = (
                np.flatnonzero(np.abs(full - u) <= truncation * abs(full))
                if truncation > 0
                else np.empty(0, dtype=int)
            )
            end = int(close[0]) + 1 if len(close) else stop - pos
            samples[t, perm[pos : pos + end]] = np.diff(np.r_[prev, u[:end]])
            pos += end
            if len(close):  # the rest of this permutation adds (almost) nothing: zero marginals
                break
            prev = float(u[-1])
        depth.append(pos / n)
    if isinstance(prefix, SubsetPrefixUtility):
        evaluations = prefix.cached.calls
    return samples, evaluations, depth


def permutation_shapley(
    utility: Utility | PrefixUtility,
    n_players: int | None = None,
    n_permutations: int | None = None,
    *,
    truncation: float = 0.0,
    chunk: int = 128,
    epsilon: float = 0.1,
    delta: float = 0.05,
    utility_range: float = 1.0,
    random_state: int | None = None,
    progress: bool = False,
    n_jobs: int = 1,
) -> ShapleyResult:
    """Monte Carlo permutation sampling, optionally truncated (TMC, Ghorbani & Zou 2019).

    Parameters
    ----------
    utility : callable or PrefixUtility
        A subset utility ``U(tuple) -> float`` (with ``n_players``), or a prefix utility
        (vectorised over prefixes; its ``n_players`` is used).
    n_permutations : int, optional
        Defaults to :func:`permutation_count` for ``(epsilon, delta, utility_range)``.
    truncation : float
        Stop a permutation at the first prefix whose utility is within ``truncation *
        |U(all)|`` of ``U(all)``; later records get a zero marginal there. 0: no truncation.
    chunk : int
        Prefixes evaluated per call of a prefix utility.
    n_jobs : int
        joblib workers. The permutations are drawn up front from ``random_state``, so the
        result does not depend on ``n_jobs``.
    """
    prefix: PrefixUtility
    if isinstance(utility, PrefixUtility):
        prefix = utility
    else:
        if n_players is None:
            raise InputError("a subset utility needs n_players.")
        prefix = SubsetPrefixUtility(utility, n_players)
    n = check_n(prefix.n_players)
    if not (math.isfinite(truncation) and truncation >= 0) or chunk < 1:
        raise InputError(f"need truncation >= 0 and chunk >= 1; got {truncation!r}, {chunk!r}.")
    m = n_permutations or permutation_count(n, epsilon, delta, utility_range)
    start = time.perf_counter()
    rng = np.random.default_rng(random_state)
    perms = np.array([rng.permutation(n) for _ in range(m)])
    if n_jobs == 1:
        samples, calls, depth = _run_permutations(prefix, perms, truncation, chunk, progress)
    else:
        from joblib import Parallel, delayed, effective_n_jobs

        parts = np.array_split(perms, effective_n_jobs(n_jobs))
        out = Parallel(n_jobs=n_jobs)(
            delayed(_run_permutations)(prefix, p, truncation, chunk, False) for p in parts if len(p)
        )
        samples = np.concatenate([o[0] for o in out])
        calls = sum(o[1] for o in out)
        depth = [d for o in out for d in o[2]]
    stderr = samples.std(axis=0, ddof=1) / math.sqrt(m) if m > 1 else np.full(n, np.nan)
    method = "truncated-permutation" if truncation > 0 else "permutation"
    return ShapleyResult(
        values=samples.mean(axis=0).tolist(),
        stderr=stderr.tolist(),
        method=method,
        n_evaluations=calls,
        seconds=time.perf_counter() - start,
        params={
            "n_permutations": m,
            "n_jobs": n_jobs,
            "truncation": truncation,
            "evaluated_fraction": float(np.mean(depth)),
        },
    )


def uniform_shapley(utility: Utility, n_players: int) -> ShapleyResult:
    """U(I) / N for each player: the Shapley value of a uniformly stable learner up to
    ``2 C (1 + log(N - 1)) / (N - 1)`` (seed 002, Theorem 5)."""
    n = check_n(n_players)
    start = time.perf_counter()
    total = CachedUtility(utility)(tuple(range(n)))
    return ShapleyResult(
        values=[total / n] * n,
        method="uniform",
        n_evaluations=1,
        seconds=time.perf_counter() - start,
    )


def largest_subset_shapley(utility: Utility, n_players: int) -> ShapleyResult:
    """Largest-subset heuristic (seed 002, section 4.5): leave-one-out contributions
    ``U(I) - U(I \\ {i})`` scaled to sum to U(I). Not additive over utilities (Theorem 6).
    With an influence-proxy utility the leave-one-out terms are its record scores."""
    n = check_n(n_players)
    start = time.perf_counter()
    U = CachedUtility(utility)
    everyone = tuple(range(n))
    total = U(everyone)
    loo = np.array([total - U(tuple(j for j in everyone if j != i)) for i in range(n)])
    scale = total / loo.sum() if abs(loo.sum()) > 1e-300 else 0.0
    return ShapleyResult(
        values=(loo * scale).tolist(),
        method="largest_subset",
        n_evaluations=U.calls,
        seconds=time.perf_counter() - start,
    )


def knn_shapley(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, k: int = 5
) -> ShapleyResult:
    """Exact Shapley values of training points for the K-nearest-neighbour utility
    ``U(S) = mean over test points of (1/K) * #{correct labels among the min(K, |S|)
    nearest points of S}`` (Jia et al. 2019), by the O(N log N) recursion per test point."""
    start = time.perf_counter()
    X_train, X_test = np.asarray(X_train, float), np.asarray(X_test, float)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    n = len(y_train)
    if n == 0 or len(y_test) == 0 or len(X_train) != n or len(X_test) != len(y_test):
        raise InputError(
            "knn_shapley needs non-empty training and test sets with matching X and y lengths."
        )
    k = int(k)
    values = np.zeros(n)
    for x, yt in zip(X_test, y_test):
        order = np.argsort(((X_train - x) ** 2).sum(axis=1), kind="stable")
        match = (y_train[order] == yt).astype(float)
        s = np.zeros(n)
        s[n - 1] = match[n - 1] / n
        for i in range(n - 2, -1, -1):  # i is 0-based; the paper's position is i + 1
            s[i] = s[i + 1] + (match[i] - match[i + 1]) / k * min(k, i + 1) / (i + 1)
        values[order] += s
    values /= len(y_test)
    return ShapleyResult(
        values=values.tolist(),
        method="knn_exact",
        n_evaluations=0,
        seconds=time.perf_counter() - start,
        params={"k": k},
    )
