"""Group-testing and compressive-permutation Shapley estimators (Jia et al. 2019, Alg. 1, 2)."""

from __future__ import annotations

import math
import time

import numpy as np

from mde.errors import InputError
from mde.valuation.shapley import (
    CachedUtility,
    ShapleyResult,
    Utility,
    check_n,
    exact_shapley,
    marginals,
)

__all__ = ["group_testing_shapley", "group_testing_count", "compressive_shapley"]


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
    res = linprog(
        c,
        A_ub=A,
        b_ub=b,
        A_eq=A_eq,
        b_eq=[total],
        bounds=[(None, None)] * n + [(0, None)],
        method="highs",
    )
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
    n = check_n(n_players)
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
    return ShapleyResult(
        values=values.tolist(),
        method="group_testing",
        n_evaluations=U.calls,
        seconds=time.perf_counter() - start,
        params={"n_tests": T, "max_violation": violation, "feasible": violation <= tol},
    )


def _l1_recover(A: np.ndarray, y: np.ndarray, epsilon: float) -> np.ndarray:
    """min ||x||_1 s.t. ||A x - y||_inf <= epsilon / sqrt(M) (which implies the l2 bound
    ||A x - y||_2 <= epsilon of Algorithm 2), as a linear program in x = u - v, u, v >= 0."""
    from scipy.optimize import linprog

    M, n = A.shape
    tol = epsilon / math.sqrt(M)
    A_ub = np.vstack([np.hstack([A, -A]), np.hstack([-A, A])])
    b_ub = np.concatenate([y + tol, -(y - tol)])
    res = linprog(
        np.ones(2 * n), A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * (2 * n), method="highs"
    )
    if not res.success:
        raise InputError(
            f"compressive recovery failed ({res.message}); raise epsilon or n_measurements."
        )
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
    n = check_n(n_players)
    M = n_measurements or max(2, min(n, int(math.ceil(2 * math.log(n + 1) * math.sqrt(n)))))
    start = time.perf_counter()
    U = CachedUtility(utility)
    rng = np.random.default_rng(random_state)
    A = rng.choice([-1.0, 1.0], size=(M, n)) / math.sqrt(M)
    phis = np.array([marginals(U, rng.permutation(n)) for _ in range(n_permutations)])
    y_bar = (phis @ A.T).mean(axis=0)
    s_bar = np.full(n, U(tuple(range(n))) / n)
    delta_s = _l1_recover(A, y_bar - A @ s_bar, epsilon)
    return ShapleyResult(
        values=(s_bar + delta_s).tolist(),
        method="compressive",
        n_evaluations=U.calls,
        seconds=time.perf_counter() - start,
        params={"n_measurements": M, "n_permutations": n_permutations},
    )
