"""Shapley values of data (Jia et al. 2019, seed 002): exact and approximate estimators over
a utility ``U(subset) -> float``, where a subset is a sorted tuple of player indices.

=============================  ==========================================  =================
function                       method                                      utility calls
=============================  ==========================================  =================
:func:`exact_shapley`          enumeration of all 2^N subsets              2^N
:func:`permutation_shapley`    permutation sampling (section 4.1)          N * permutations
:func:`group_testing_shapley`  group testing + feasibility LP (Alg. 1)     tests
:func:`compressive_shapley`    compressive permutation sampling (Alg. 2)   N * permutations
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
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mde.errors import InputError

__all__ = [
    "ShapleyResult",
    "CachedUtility",
    "exact_shapley",
    "permutation_shapley",
    "permutation_count",
    "group_testing_shapley",
    "group_testing_count",
    "compressive_shapley",
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

    def __call__(self, subset: Sequence[int]) -> float:
        key = tuple(sorted(int(i) for i in subset))
        if key not in self.cache:
            value = float(self.utility(key))
            if not math.isfinite(value):
                raise InputError(f"utility returned {value} for subset {key}; it must be finite.")
            self.cache[key] = value
            self.calls += 1
        return self.cache[key]


def _check_n(n: int, limit: int | None = None) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n_players must be a positive integer; got {n!r}.")
    if limit is not None and n > limit:
        raise InputError(f"exact enumeration over {n} players needs 2^{n} utility calls; use <= {limit} players "
                         "or an approximate method.")
    return int(n)


def exact_shapley(utility: Utility, n_players: int) -> ShapleyResult:
    """Exact Shapley values by enumerating every subset (N <= 20)."""
    n = _check_n(n_players, 20)
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
    return ShapleyResult(values=values.tolist(), method="exact", n_evaluations=U.calls,
                         seconds=time.perf_counter() - start)


def permutation_count(n_players: int, epsilon: float, delta: float, utility_range: float) -> int:
    """Permutations for an (epsilon, delta) l2-approximation (Hoeffding; seed 002 section 4.1):
    ``2 r^2 N / epsilon^2 * log(2 N / delta)``."""
    return int(math.ceil(2 * utility_range**2 * n_players / epsilon**2 * math.log(2 * n_players / delta)))


def _marginals(U: CachedUtility, perm: np.ndarray) -> np.ndarray:
    out = np.zeros(len(perm))
    prefix: list[int] = []
    prev = U(())
    for i in perm:
        prefix.append(int(i))
        cur = U(prefix)
        out[i] = cur - prev
        prev = cur
    return out


def _permutation_batch(utility: Utility, n: int, perms: np.ndarray, progress: bool) -> tuple[np.ndarray, int]:
    U = CachedUtility(utility)
    rows: Any = perms
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(perms, desc="permutations")
    return np.array([_marginals(U, p) for p in rows]), U.calls


def permutation_shapley(
    utility: Utility,
    n_players: int,
    n_permutations: int | None = None,
    *,
    epsilon: float = 0.1,
    delta: float = 0.05,
    utility_range: float = 1.0,
    random_state: int | None = None,
    progress: bool = False,
    n_jobs: int = 1,
) -> ShapleyResult:
    """Monte Carlo permutation sampling; ``n_permutations`` defaults to :func:`permutation_count`.

    The permutations are drawn up front from ``random_state``, so results do not depend on
    ``n_jobs`` (joblib workers; worth it when one utility call costs milliseconds or more).
    """
    n = _check_n(n_players)
    m = n_permutations or permutation_count(n, epsilon, delta, utility_range)
    start = time.perf_counter()
    rng = np.random.default_rng(random_state)
    perms = np.array([rng.permutation(n) for _ in range(m)])
    if n_jobs == 1:
        samples, calls = _permutation_batch(utility, n, perms, progress)
    else:
        from joblib import Parallel, delayed, effective_n_jobs

        parts = np.array_split(perms, effective_n_jobs(n_jobs))
        out = Parallel(n_jobs=n_jobs)(delayed(_permutation_batch)(utility, n, p, False) for p in parts if len(p))
        samples = np.concatenate([o[0] for o in out])
        calls = sum(o[1] for o in out)
    stderr = samples.std(axis=0, ddof=1) / math.sqrt(m) if m > 1 else np.full(n, np.nan)
    return ShapleyResult(values=samples.mean(axis=0).tolist(), stderr=stderr.tolist(), method="permutation",
                         n_evaluations=calls, seconds=time.perf_counter() - start,
                         params={"n_permutations": m, "n_jobs": n_jobs})


def _group_q(n: int) -> tuple[float, np.ndarray]:
    k = np.arange(1, n)
    Z = 2 * np.sum(1.0 / k)
    return Z, (1.0 / k + 1.0 / (n - k)) / Z


def group_testing_count(n_players: int, epsilon: float, delta: float, utility_range: float) -> int:
    """Tests for an (epsilon, delta) approximation (seed 002, Theorem 3)."""
    n = n_players
    Z, q = _group_q(n)
    k = np.arange(1, n)
    q_tot = (n - 2) / n * q[0] + np.sum(q[1:] * (1 + 2 * k[1:] * (k[1:] - n) / (n * (n - 1))))
    u = epsilon / (Z * utility_range * math.sqrt(n) * (1 - q_tot**2))
    h = (1 + u) * math.log(1 + u) - u
    return int(math.ceil(8 * math.log(n * (n - 1) / (2 * delta)) / ((1 - q_tot**2) * h)))


def _feasibility(diff: np.ndarray, total: float, tol: float) -> tuple[np.ndarray, float]:
    """Find s with sum(s) = total and |s_i - s_j - diff_ij| <= tol, or, when infeasible, the
    s minimising the largest violation (a linear program in either case)."""
    from scipy.optimize import linprog

    n = len(diff)
    iu, ju = np.triu_indices(n, 1)
    rows = len(iu)
    # variables: s (n), t (1); minimise t; s_i - s_j - t <= d_ij ; -(s_i - s_j) - t <= -d_ij
    A = np.zeros((2 * rows, n + 1))
    A[np.arange(rows), iu] = 1
    A[np.arange(rows), ju] = -1
    A[rows + np.arange(rows), iu] = -1
    A[rows + np.arange(rows), ju] = 1
    A[:, n] = -1
    b = np.concatenate([diff[iu, ju], -diff[iu, ju]])
    A_eq = np.zeros((1, n + 1))
    A_eq[0, :n] = 1
    c = np.zeros(n + 1)
    c[n] = 1
    res = linprog(c, A_ub=A, b_ub=b, A_eq=A_eq, b_eq=[total], bounds=[(None, None)] * n + [(0, None)],
                  method="highs")
    if not res.success:  # pragma: no cover - the LP is always feasible (t unbounded above)
        raise InputError(f"feasibility problem failed: {res.message}")
    return res.x[:n], float(res.x[n])


def group_testing_shapley(
    utility: Utility,
    n_players: int,
    n_tests: int | None = None,
    *,
    epsilon: float = 0.1,
    delta: float = 0.05,
    utility_range: float = 1.0,
    random_state: int | None = None,
) -> ShapleyResult:
    """Group testing (seed 002, Algorithm 1): random subsets of size k ~ q(k), Shapley
    differences from the test results, values from the feasibility problem (solved as an LP
    minimising the largest violation, so it always returns)."""
    n = _check_n(n_players)
    if n < 3:
        return exact_shapley(utility, n)
    T = n_tests or group_testing_count(n, epsilon, delta, utility_range)
    start = time.perf_counter()
    U = CachedUtility(utility)
    rng = np.random.default_rng(random_state)
    Z, q = _group_q(n)
    beta = np.zeros((T, n))
    u = np.zeros(T)
    sizes = rng.choice(np.arange(1, n), size=T, p=q)
    for t, k in enumerate(sizes):
        members = rng.choice(n, size=k, replace=False)
        beta[t, members] = 1
        u[t] = U(tuple(sorted(members.tolist())))
    weighted = (u[:, None] * beta).sum(axis=0)  # sum_t u_t beta_ti
    diff = Z / T * (weighted[:, None] - weighted[None, :])
    tol = epsilon / (2 * math.sqrt(n))
    values, violation = _feasibility(diff, U(tuple(range(n))), tol)
    return ShapleyResult(values=values.tolist(), method="group_testing", n_evaluations=U.calls,
                         seconds=time.perf_counter() - start,
                         params={"n_tests": T, "max_violation": violation, "feasible": violation <= tol})


def _l1_recover(A: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    """min ||x||_1 s.t. ||A x - y||_inf <= epsilon / sqrt(M) (which implies the l2 bound
    ||A x - y||_2 <= epsilon of Algorithm 2), as a linear program in x = u - v, u, v >= 0."""
    from scipy.optimize import linprog

    M, n = A.shape
    tol = epsilon / math.sqrt(M)
    A_ub = np.vstack([np.hstack([A, -A]), np.hstack([-A, A])])
    b_ub = np.concatenate([y + tol, -(y - tol)])
    res = linprog(np.ones(2 * n), A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * (2 * n), method="highs")
    if not res.success:
        raise InputError(f"compressive recovery failed ({res.message}); raise epsilon or n_measurements.")
    return res.x[:n] - res.x[n:]


def compressive_shapley(
    utility: Utility,
    n_players: int,
    n_measurements: int | None = None,
    n_permutations: int = 100,
    *,
    epsilon: float = 0.01,
    random_state: int | None = None,
) -> ShapleyResult:
    """Compressive permutation sampling (seed 002, Algorithm 2): M random Bernoulli
    measurements of the permutation marginals, then an L1 recovery of the deviation from
    the uniform split U(I) / N.

    Its error bound grows with how far the values are from "mean + K spikes" (sigma_K):
    it recovers sparse deviations from M < N measurements, but on values that are not
    sparse (the airport game, KNN values with label noise) it is worse than permutation
    sampling with the same permutations (see benchmarks/shapley.py)."""
    n = _check_n(n_players)
    M = n_measurements or max(2, min(n, int(math.ceil(2 * math.log(n + 1) * math.sqrt(n)))))
    start = time.perf_counter()
    U = CachedUtility(utility)
    rng = np.random.default_rng(random_state)
    A = rng.choice([-1.0, 1.0], size=(M, n)) / math.sqrt(M)
    phis = np.array([_marginals(U, rng.permutation(n)) for _ in range(n_permutations)])
    y_bar = (phis @ A.T).mean(axis=0)
    s_bar = np.full(n, U(tuple(range(n))) / n)
    delta_s = _l1_recover(A, y_bar - A @ s_bar, epsilon)
    return ShapleyResult(values=(s_bar + delta_s).tolist(), method="compressive", n_evaluations=U.calls,
                         seconds=time.perf_counter() - start,
                         params={"n_measurements": M, "n_permutations": n_permutations})


def uniform_shapley(utility: Utility, n_players: int) -> ShapleyResult:
    """U(I) / N for each player: the Shapley value of a uniformly stable learner up to
    ``2 C (1 + log(N - 1)) / (N - 1)`` (seed 002, Theorem 5)."""
    n = _check_n(n_players)
    start = time.perf_counter()
    total = CachedUtility(utility)(tuple(range(n)))
    return ShapleyResult(values=[total / n] * n, method="uniform", n_evaluations=1,
                         seconds=time.perf_counter() - start)


def largest_subset_shapley(utility: Utility, n_players: int) -> ShapleyResult:
    """Largest-subset heuristic (seed 002, section 4.5): leave-one-out contributions
    ``U(I) - U(I \\ {i})`` scaled to sum to U(I). Not additive over utilities (Theorem 6).
    With an influence-proxy utility the leave-one-out terms are its record scores."""
    n = _check_n(n_players)
    start = time.perf_counter()
    U = CachedUtility(utility)
    everyone = tuple(range(n))
    total = U(everyone)
    loo = np.array([total - U(tuple(j for j in everyone if j != i)) for i in range(n)])
    scale = total / loo.sum() if abs(loo.sum()) > 1e-300 else 0.0
    return ShapleyResult(values=(loo * scale).tolist(), method="largest_subset", n_evaluations=U.calls,
                         seconds=time.perf_counter() - start)


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
        raise InputError("knn_shapley needs non-empty training and test sets with matching X and y lengths.")
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
    return ShapleyResult(values=values.tolist(), method="knn_exact", n_evaluations=0,
                         seconds=time.perf_counter() - start, params={"k": k})
