"""Seed 002's comparisons of Shapley estimators, on a KNN utility whose exact Shapley values
are known (Jia et al.'s recursion), over records of scikit-learn's digits.

1. Approximation error (l2, relative to the exact values) against the number of
   permutations, for permutation sampling and compressive permutation sampling (Figure 4).
2. Runtime and utility evaluations against N for every estimator (Figure 3b).

    python -m benchmarks.shapley [--quick]

Prints two markdown tables; writes benchmarks/results/shapley_error.png and shapley_runtime.png.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.common import RESULTS
from mde.valuation import (
    compressive_shapley,
    exact_shapley,
    group_testing_shapley,
    knn_shapley,
    largest_subset_shapley,
    permutation_shapley,
    uniform_shapley,
)


def knn_game(n: int, n_test: int = 40, k: int = 5, seed: int = 0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[:n], idx[n : n + n_test]
    Xtr, ytr, Xte, yte = X[tr], y[tr], X[te], y[te]
    # label noise on a fifth of the players, so that values differ
    ytr = ytr.copy()
    flip = np.random.default_rng(seed + 1).random(n) < 0.2
    ytr[flip] = (ytr[flip] + 1) % 10
    d = ((Xte[:, None, :] - Xtr[None, :, :]) ** 2).sum(axis=2)  # (test, train)
    rank = np.argsort(np.argsort(d, axis=1, kind="stable"), axis=1)
    correct = (ytr[None, :] == yte[:, None]).astype(float)

    def utility(S: tuple[int, ...]) -> float:
        if not S:
            return 0.0
        S = np.asarray(S)
        r = rank[:, S]
        nearest = np.argsort(r, axis=1)[:, :k]
        return float(np.take_along_axis(correct[:, S], nearest, axis=1).sum(axis=1).mean() / k)

    exact = knn_shapley(Xtr, ytr, Xte, yte, k=k).as_array()
    return utility, exact


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(RESULTS, exist_ok=True)
    # 1. error against permutations
    n = 40 if args.quick else 100
    utility, exact = knn_game(n)
    perms = [10, 25, 50, 100] if args.quick else [10, 25, 50, 100, 200, 400]
    rows = []
    for T in perms:
        errs = {"permutation": [], "compressive": []}
        for seed in range(3):
            p = permutation_shapley(utility, n, n_permutations=T, random_state=seed).as_array()
            c = compressive_shapley(
                utility, n, n_measurements=n // 2, n_permutations=T, epsilon=1e-3, random_state=seed
            ).as_array()
            errs["permutation"].append(np.linalg.norm(p - exact) / np.linalg.norm(exact))
            errs["compressive"].append(np.linalg.norm(c - exact) / np.linalg.norm(exact))
        rows.append(
            (T, float(np.median(errs["permutation"])), float(np.median(errs["compressive"])))
        )
    print(f"Relative l2 error against exact KNN-Shapley, N = {n} (median of 3 seeds)\n")
    print("| permutations | permutation sampling | compressive sampling (M = N/2) |\n|---|---|---|")
    for T, ep, ec in rows:
        print(f"| {T} | {ep:.3f} | {ec:.3f} |")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", label="permutation sampling")
    ax.plot([r[0] for r in rows], [r[2] for r in rows], "s-", label="compressive (M = N/2)")
    ax.set_xscale("log")
    ax.set_xlabel("permutations")
    ax.set_ylabel("relative l2 error")
    ax.set_title(f"KNN utility, digits, N = {n}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "shapley_error.png"), dpi=110)

    # 2. runtime against N
    sizes = [10, 20, 40] if args.quick else [10, 20, 50, 100, 200]
    methods = {
        "exact": lambda U, n: exact_shapley(U, n) if n <= 14 else None,
        "permutation (100)": lambda U, n: permutation_shapley(
            U, n, n_permutations=100, random_state=0
        ),
        "group testing (2000 tests)": lambda U, n: group_testing_shapley(
            U, n, n_tests=2000, random_state=0
        ),
        "compressive (100)": lambda U, n: compressive_shapley(
            U, n, n_permutations=100, random_state=0
        ),
        "uniform": uniform_shapley,
        "largest subset": largest_subset_shapley,
    }
    table: dict[str, list[tuple[int, float, int, float]]] = {
        m: [] for m in [*methods, "KNN exact recursion"]
    }
    for n in sizes:
        utility, exact = knn_game(n)
        for name, fn in methods.items():
            t0 = time.perf_counter()
            res = fn(utility, n)
            if res is None:
                continue
            err = np.linalg.norm(res.as_array() - exact) / np.linalg.norm(exact)
            table[name].append((n, time.perf_counter() - t0, res.n_evaluations, err))
        from sklearn.datasets import load_digits

        t0 = time.perf_counter()
        X, y = load_digits(return_X_y=True)
        knn_shapley(X[:n], y[:n], X[n : n + 40], y[n : n + 40], k=5)
        table["KNN exact recursion"].append((n, time.perf_counter() - t0, 0, 0.0))
    print("\nRuntime (s), utility evaluations and relative error against N\n")
    print("| method | " + " | ".join(f"N = {n}" for n in sizes) + " |\n|---|" + "---|" * len(sizes))
    for name, vals in table.items():
        cells = {n: f"{t:.3f} s, {e} evals, err {er:.2f}" for n, t, e, er in vals}
        print(f"| {name} | " + " | ".join(cells.get(n, "-") for n in sizes) + " |")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, vals in table.items():
        if vals:
            ax.plot([v[0] for v in vals], [max(v[1], 1e-5) for v in vals], "o-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (players)")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "shapley_runtime.png"), dpi=110)


if __name__ == "__main__":
    main()
