"""Fidelity suite: every appraisal method against retraining, on every scenario, in one run.

    python -m benchmarks.suite            # full run (seed-000 scenarios, 4 black boxes, 3 seeds)
    python -m benchmarks.suite --quick    # smoke test, ~2-3 minutes, run by CI

Methods: the three proxies (plaintext; the influence proxy also sealed), gradient norm (seed
000 eq. 3), fine-tuning of the influence head (seed 000 eq. 4: 16 full-batch gradient steps
on D_tr + D at learning rates 0.001, 0.1, 10), exact KNN-Shapley summed over the set, the
proxy refit utility (one Newton step of the head, not additive) and random. Ground truth:
retraining the black box (mean over seeds), reduction of test log-loss.

Prints a markdown table (scenario x black box x method: Spearman rho, seconds) and writes
plots to benchmarks/results/: suite_appraisal.png (appraisal against utility, seed 000
Figure 2), suite_ranks.png (ranks, Figure 5) and suite_cost.png (seconds, log scale, Figure 3).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, Scenario, black_boxes, cached_utility
from mde import scenarios
from mde.evaluation import rank_correlation


def _fine_tune(proxy: Any, bb: Any, sc: Scenario, lr: float, steps: int = 16) -> Callable[[np.ndarray, np.ndarray], float]:
    from adapters.base import softmax
    from mde.influence import head_test_loss
    from mde.validation import encode_labels

    phi_tr = proxy._phi(sc.X_train)
    soft = bb.predict_proba(sc.X_train)
    phi_te = proxy._phi(sc.X_test)
    yte = encode_labels(sc.y_test, list(proxy.classes_))
    l2 = proxy.l2

    base = head_test_loss(phi_te, proxy.theta_, yte)

    def appraise(X: np.ndarray, y: np.ndarray) -> float:
        phi_d = proxy._phi(X)
        target = np.vstack([soft, np.eye(soft.shape[1])[encode_labels(y, list(proxy.classes_))]])
        phi = np.vstack([phi_tr, phi_d])
        th = proxy.theta_.copy()
        for _ in range(steps):
            grad = (softmax(phi @ th.T) - target).T @ phi / len(phi) + l2 * th
            th = th - lr * grad
        return base - head_test_loss(phi_te, th, yte)

    return appraise


def _knn_value(sc: Scenario, k: int = 5) -> Callable[[np.ndarray, np.ndarray], float]:
    from pricing.shapley import knn_shapley

    def appraise(X: np.ndarray, y: np.ndarray) -> float:
        Xall, yall = np.vstack([sc.X_train, X]), np.r_[sc.y_train, y]
        values = knn_shapley(Xall, yall, sc.X_test[:300], sc.y_test[:300], k=k).as_array()
        return float(values[len(sc.y_train):].sum())

    return appraise


def _methods(bb_model: Any, sc: Scenario, kinds: list[str], quick: bool) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    import mde
    from mde.utility import proxy_utility

    out: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {}
    bb = mde.wrap(bb_model)
    influence = mde.build_proxy(bb, sc.X_train, sc.y_train, sc.X_test, sc.y_test, random_state=0)
    out["influence"] = influence.efficacy
    tmp = tempfile.mkdtemp()

    def sealed(X: np.ndarray, y: np.ndarray) -> float:
        path = os.path.join(tmp, "a.mde")
        influence.export(path)
        return influence.open(mde.load_artifact(path).score(X, y)).efficacy

    out["influence sealed"] = sealed
    for kind in kinds:
        opts = {"n_samples": 5000} if kind == "tree" and quick else {}
        p = mde.build_proxy(bb, sc.X_train, sc.y_train, sc.X_test, sc.y_test, kind=kind, random_state=0, **opts)
        out[kind] = p.efficacy
    out["gradient norm"] = influence.gradient_norm
    for lr in (0.001, 0.1, 10.0):
        out[f"fine-tune lr={lr:g}"] = _fine_tune(influence, bb, sc, lr)
    out["KNN-Shapley (sum)"] = _knn_value(sc)

    def refit(X: np.ndarray, y: np.ndarray) -> float:
        U = proxy_utility(influence, X, y, sc.X_test, sc.y_test, X_train=sc.X_train)
        return U(tuple(range(len(y))))

    out["proxy refit (Newton)"] = refit
    rng = np.random.default_rng(0)
    out["random"] = lambda X, y: float(rng.random())
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small smoke run (CI)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    quick = args.quick
    factories = black_boxes()
    if quick:
        scens = [scenarios.label_noise(n_sets=6), scenarios.size(sizes=(50, 100, 200)),
                 scenarios.redundancy(set_size=150)]
        bbs, seeds, kinds = ["logreg", "rf"], 1, ["tree"]
    else:
        scens = [scenarios.label_noise(), scenarios.class_prior(n_sets=20, repetitions=2, set_size=200),
                 scenarios.redundancy(), scenarios.irrelevance(), scenarios.size()]
        bbs, seeds, kinds = ["logreg", "mlp", "rf", "hgb"], 3, ["tree", "student"]
    rows: list[dict[str, Any]] = []
    plots: dict[str, dict[str, np.ndarray]] = {}
    for sc in scens:
        for bb_name in bbs:
            t0 = time.perf_counter()
            gt, _ = cached_utility(sc, bb_name, factories[bb_name], seeds=seeds)
            retrain_s = time.perf_counter() - t0
            model = factories[bb_name](0).fit(sc.X_train, sc.y_train)
            rows.append({"scenario": sc.name, "black box": bb_name, "method": "retrain (ground truth)",
                         "rho": 1.0, "seconds": retrain_s})
            key = f"{sc.name} / {bb_name}"
            plots[key] = {"retrain": gt}
            for name, appraise in _methods(model, sc, kinds, quick).items():
                t0 = time.perf_counter()
                vals = np.array([appraise(X, y) for X, y in sc.candidates])
                secs = time.perf_counter() - t0
                rho = rank_correlation(vals, gt)["spearman"] if np.ptp(vals) > 0 else float("nan")
                rows.append({"scenario": sc.name, "black box": bb_name, "method": name, "rho": rho, "seconds": secs})
                plots[key][name] = vals
    print("| scenario | black box | method | rho | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['black box']} | {r['method']} | {r['rho']:.3f} | {r['seconds']:.3f} |")
    if not args.no_plot:
        _plot(plots, rows)
    return rows


def _plot(plots: dict[str, dict[str, np.ndarray]], rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    os.makedirs(RESULTS, exist_ok=True)
    key = next(iter(plots))
    curves = plots[key]
    methods = [m for m in curves if m != "retrain"]
    cols = 4
    fig, axes = plt.subplots(-(-len(methods) // cols), cols, figsize=(4 * cols, 3 * -(-len(methods) // cols)),
                             squeeze=False)
    for ax, m in zip(axes.ravel(), methods):
        ax.scatter(curves["retrain"], curves[m], s=14)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("retrain utility", fontsize=8)
    for ax in axes.ravel()[len(methods):]:
        ax.axis("off")
    fig.suptitle(f"appraisal against retraining: {key}")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "suite_appraisal.png"), dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name in ("influence", "tree", "gradient norm"):
        if name in curves:
            ax.scatter(rankdata(curves["retrain"]), rankdata(curves[name]), s=14, label=name)
    ax.set_xlabel("rank of retrain utility")
    ax.set_ylabel("rank of appraisal")
    ax.legend(fontsize=8)
    ax.set_title(key, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "suite_ranks.png"), dpi=90)
    plt.close(fig)

    cost: dict[str, float] = {}
    for r in rows:
        cost[r["method"]] = cost.get(r["method"], 0.0) + r["seconds"]
    fig, ax = plt.subplots(figsize=(6, 4))
    names = sorted(cost, key=cost.get)
    ax.barh(names, [max(cost[n], 1e-4) for n in names])
    ax.set_xscale("log")
    ax.set_xlabel("seconds (all scenarios, log scale)")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "suite_cost.png"), dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
