"""Fidelity suite: every appraisal method against retraining, on every scenario, in one run.

    python -m benchmarks.suite          # 5 scenarios x 5 black boxes: ~25 min, ~12 min cached
    python -m benchmarks.suite --quick  # smoke test, ~1 minute, run by CI
                                        # (caches its ground truth only)

Methods: the three proxies (plaintext; the influence proxy also sealed, one exported artifact
per set as the protocol requires, with the pairwise term (``order=2``, plaintext and sealed),
and self-calibrated: ``calibrate_with`` the black box's
factory, 12 simulated purchases x 2 seeds on a 60/40 split of D_tr, grid n_components
8/16/32 x l2 0.01/0.1/1), gradient norm (seed 000 eq. 3), fine-tuning of the
influence head (seed 000 eq. 4: 16 full-batch gradient steps on D_tr + D at learning rates
0.001, 0.1, 10), exact KNN-Shapley summed over the set, the proxy refit utility (one Newton
step of the head, not additive), truncated Monte Carlo Data Shapley (Ghorbani & Zou 2019;
``mde.valuation.permutation_shapley`` with ``truncation=0.01`` on the proxy's prefix
utility) on that refit utility over the pooled records of all candidate sets (20
permutations), summed per set, and random. Ground truth: retraining the black box,
reduction of test log-loss (mean over seeds; one seed for deterministic black boxes and for
the 100 class-prior sets).

The full run writes benchmarks/results/suite_table.md (rank correlations, redundant and
irrelevant value relative to fresh data, cost against one retrain, every row) and plots:
suite_appraisal.png (appraisal against utility, seed 000 Figure 2), suite_ranks.png (ranks
on the class-prior scenario, Figure 5) and suite_cost.png (seconds per set, Figure 3).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import scenarios
from benchmarks.candidates import gradient_norm
from benchmarks.common import RESULTS, Scenario, black_boxes, cached_utility
from benchmarks.tmc import pooled_set_values
from mde.data_owner.policy import GuardPolicy
from mde.valuation import permutation_shapley, rank_correlation

Appraiser = Callable[[np.ndarray, np.ndarray], float]
ORDER2 = "influence (order 2)"
PROXIES = ("influence", "influence sealed", ORDER2, f"{ORDER2} sealed", "tree", "student")
TMC = "TMC Data Shapley (pooled)"
CALIBRATED = "influence (self-calibrated)"
DETERMINISTIC = {"logreg", "hgb"}  # refits with another seed are identical: one seed suffices
# (scenario, numerator label, denominator labels): value of a pure bad set / pure fresh set
_FRESH_REDUNDANT = ("100% fresh, rest copies", "100% fresh, rest near-copies")
_FRESH_IRRELEVANT = ("100% fresh, rest upsampled 8x8 digits", "100% fresh, rest noise images")
RATIOS = {
    "copies / fresh": ("redundancy", "0% fresh, rest copies", _FRESH_REDUNDANT),
    "near-copies / fresh": ("redundancy", "0% fresh, rest near-copies", _FRESH_REDUNDANT),
    "8x8 digits / fresh": ("irrelevance", "0% fresh, rest upsampled 8x8 digits", _FRESH_IRRELEVANT),
    "noise images / fresh": ("irrelevance", "0% fresh, rest noise images", _FRESH_IRRELEVANT),
}

# the benchmark is one data owner answering every artifact: budgets out of the way
_WIDE = GuardPolicy(max_artifacts=10**9, max_numbers=10**12, max_requests=10**9, max_buyers=10**9)


@dataclass
class Config:
    """What one run covers."""

    scenarios: list[tuple[Scenario, int]]  # (scenario, retraining seeds)
    black_boxes: list[str]
    kinds: list[str]  # proxies besides influence
    tmc_permutations: int
    tree_samples: int | None = None
    # also build the influence proxy with calibrate_with=<black box factory>
    calibrated: bool = False


def _config(quick: bool) -> Config:
    if quick:
        return Config(
            [
                (scenarios.label_noise(n_sets=6), 1),
                (scenarios.size(sizes=(50, 100, 200)), 1),
                (scenarios.redundancy(set_size=150), 1),
            ],
            ["logreg", "rf"],
            ["tree"],
            tmc_permutations=4,
            tree_samples=5000,
        )
    return Config(
        [
            (scenarios.label_noise(), 3),
            (scenarios.class_prior(n_sets=20, repetitions=5, set_size=200), 1),
            (scenarios.redundancy(), 3),
            (scenarios.irrelevance(), 3),
            (scenarios.size(), 3),
        ],
        ["logreg", "mlp", "rf", "hgb", "cnn"],
        ["tree", "student"],
        tmc_permutations=20,
        calibrated=True,
    )


def _fine_tune(proxy: Any, bb: Any, sc: Scenario, lr: float, steps: int = 16) -> Appraiser:
    from mde.numerics import softmax
    from mde.proxies.heads import head_test_loss
    from mde.validation import encode_labels

    phi_tr = proxy.features(sc.X_train)
    soft = bb.predict_proba(sc.X_train)
    phi_te = proxy.features(sc.X_test)
    yte = encode_labels(sc.y_test, list(proxy.classes_))
    l2 = proxy.l2

    base = head_test_loss(phi_te, proxy.theta_, yte)

    def appraise(X: np.ndarray, y: np.ndarray) -> float:
        phi_d = proxy.features(X)
        target = np.vstack([soft, np.eye(soft.shape[1])[encode_labels(y, list(proxy.classes_))]])
        phi = np.vstack([phi_tr, phi_d])
        th = proxy.theta_.copy()
        for _ in range(steps):
            grad = (softmax(phi @ th.T) - target).T @ phi / len(phi) + l2 * th
            th = th - lr * grad
        return base - head_test_loss(phi_te, th, yte)

    return appraise


def _knn_value(sc: Scenario, k: int = 5, n_test: int = 300) -> Appraiser:
    """Exact KNN-Shapley on raw pixels (no black box), summed over the set; a random
    ``n_test`` of the test records (some scenarios store D_te sorted by class)."""
    from mde.valuation import knn_shapley

    te = np.random.default_rng(0).permutation(len(sc.y_test))[:n_test]

    def appraise(X: np.ndarray, y: np.ndarray) -> float:
        Xall, yall = np.vstack([sc.X_train, X]), np.r_[sc.y_train, y]
        values = knn_shapley(Xall, yall, sc.X_test[te], sc.y_test[te], k=k).as_array()
        return float(values[len(sc.y_train) :].sum())

    return appraise


def _per_set(appraise: Appraiser, sc: Scenario) -> tuple[np.ndarray, list[float]]:
    times, vals = [], []
    for X, y in sc.candidates:
        t0 = time.perf_counter()
        vals.append(appraise(X, y))
        times.append(time.perf_counter() - t0)
    return np.array(vals), times


_BUILT: dict[tuple[str, str], dict[str, Any]] = {}


def _owner(sc: Scenario, bb_name: str, cfg: Config) -> dict[str, Any]:
    """The black box fitted on D_tr and its proxies, shared by scenarios with the same D_tr and
    D_te."""
    import mde

    h = hashlib.sha256()
    for a in (sc.X_train, sc.y_train, sc.X_test, sc.y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    key = (bb_name, h.hexdigest())
    if key not in _BUILT:
        model = black_boxes()[bb_name](0).fit(sc.X_train, sc.y_train)
        bb = mde.wrap(model)
        out: dict[str, Any] = {"bb": bb, "build": {}}
        for kind in ["influence", *cfg.kinds]:
            opts = {"n_samples": cfg.tree_samples} if kind == "tree" and cfg.tree_samples else {}
            t0 = time.perf_counter()
            out[kind] = mde.build_proxy(
                bb, sc.X_train, sc.y_train, sc.X_test, sc.y_test, kind=kind, random_state=0, **opts
            )
            out["build"][kind] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out[ORDER2] = mde.build_proxy(
            bb,
            sc.X_train,
            sc.y_train,
            sc.X_test,
            sc.y_test,
            kind="influence",
            order=2,
            random_state=0,
        )
        out["build"][ORDER2] = time.perf_counter() - t0
        if cfg.calibrated:
            t0 = time.perf_counter()
            p = mde.build_proxy(
                bb,
                sc.X_train,
                sc.y_train,
                sc.X_test,
                sc.y_test,
                kind="influence",
                random_state=0,
                calibrate_with=black_boxes()[bb_name],
            )
            out["build"][CALIBRATED] = time.perf_counter() - t0
            out[CALIBRATED] = p
            out["info"] = {
                CALIBRATED: {
                    "chosen": p.calibration_["chosen"],
                    "calibration rho": p.calibration_["rho"],
                }
            }
        _BUILT[key] = out
    return _BUILT[key]


def _methods(owner: dict[str, Any], sc: Scenario, kinds: list[str]) -> dict[str, Appraiser]:
    import mde
    from mde.valuation import proxy_utility

    influence = owner["influence"]
    tmp = tempfile.mkdtemp()

    def sealed(proxy: Any) -> Appraiser:
        def appraise(X: np.ndarray, y: np.ndarray) -> float:
            path = os.path.join(tmp, "a.mde")
            proxy.export(path)  # one artifact per set, as the protocol requires
            return proxy.open(mde.load_artifact(path, policy=_WIDE).score(X, y)).efficacy

        return appraise

    out: dict[str, Appraiser] = {
        "influence": influence.efficacy,
        "influence sealed": sealed(influence),
        ORDER2: owner[ORDER2].efficacy,
        f"{ORDER2} sealed": sealed(owner[ORDER2]),
    }
    if CALIBRATED in owner:
        out[CALIBRATED] = owner[CALIBRATED].efficacy
    for kind in kinds:
        out[kind] = owner[kind].efficacy
    out["gradient norm"] = lambda X, y: gradient_norm(influence, X, y)
    for lr in (0.001, 0.1, 10.0):
        out[f"fine-tune lr={lr:g}"] = _fine_tune(influence, owner["bb"], sc, lr)

    def refit(X: np.ndarray, y: np.ndarray) -> float:
        U = proxy_utility(influence.proxy, X, y, sc.X_test, sc.y_test, X_train=sc.X_train)
        return U(tuple(range(len(y))))

    out["proxy refit (Newton)"] = refit
    return out


def _tmc(influence: Any, sc: Scenario, n_permutations: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Set values from TMC Data Shapley over the pooled distinct records of all candidates."""
    info: dict[str, Any] = {}

    def record_values(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        U = influence.proxy.prefix_utility(X, y, sc.X_test, sc.y_test, sc.X_train)
        res = permutation_shapley(
            U, n_permutations=n_permutations, truncation=0.01, chunk=64, random_state=0
        )
        info.update(
            n_records=len(y), depth=res.params["evaluated_fraction"], evaluations=res.n_evaluations
        )
        return res.as_array()

    return pooled_set_values(sc.candidates, record_values), info


def _retrain_seconds(sc: Scenario, bb_name: str) -> float:
    """Wall time of one retrain of the black box on D_tr plus the middle candidate set."""
    X, y = sc.candidates[len(sc.candidates) // 2]
    model = black_boxes()[bb_name](0)
    t0 = time.perf_counter()
    model.fit(np.vstack([sc.X_train, X]), np.r_[sc.y_train, y])
    return time.perf_counter() - t0


def _ratios(sc: Scenario, values: np.ndarray) -> dict[str, float]:
    out = {}
    for name, (scen, num, dens) in RATIOS.items():
        if scen == sc.name:
            fresh = np.mean([values[sc.labels.index(d)] for d in dens])
            out[name] = float(values[sc.labels.index(num)] / fresh)
    return out


def run(cfg: Config) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """Evaluate every method on every (scenario, black box); one row each."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's OpenMP threads crawl when the 2 shared cores are busy
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: Config) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    factories = black_boxes()
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, np.ndarray]] = {}
    for sc, seeds in cfg.scenarios:
        knn = _per_set(_knn_value(sc), sc)  # the same for every black box: computed once
        for bb_name in cfg.black_boxes:
            s = 1 if bb_name in DETERMINISTIC else seeds
            t0 = time.perf_counter()
            gt, _ = cached_utility(sc, bb_name, factories[bb_name], seeds=s)
            base = {"scenario": sc.name, "black box": bb_name, "n_sets": len(sc.candidates)}
            rows.append(
                {
                    **base,
                    "method": "retrain (ground truth)",
                    "rho": 1.0,
                    "seconds": time.perf_counter() - t0,
                    "per_set": _retrain_seconds(sc, bb_name),
                    "seeds": s,
                    **_ratios(sc, gt),
                }
            )
            owner = _owner(sc, bb_name, cfg)
            key = f"{sc.name} / {bb_name}"
            curves[key] = {"retrain": gt}
            methods = {
                name: _per_set(appraise, sc)
                for name, appraise in _methods(owner, sc, cfg.kinds).items()
            }
            for name, (v, times) in {**methods, "KNN-Shapley (sum)": knn}.items():
                rows.append(
                    {
                        **base,
                        "method": name,
                        "rho": _rho(v, gt),
                        "seconds": float(np.sum(times)),
                        "per_set": float(np.median(times)),
                        "build": owner["build"].get(name, 0.0),
                        **owner.get("info", {}).get(name, {}),
                        **_ratios(sc, v),
                    }
                )
                curves[key][name] = v
            t0 = time.perf_counter()
            v, info = _tmc(owner["influence"], sc, cfg.tmc_permutations)
            secs = time.perf_counter() - t0
            rows.append(
                {
                    **base,
                    "method": TMC,
                    "rho": _rho(v, gt),
                    "seconds": secs,
                    "per_set": secs / len(v),
                    **info,
                    **_ratios(sc, v),
                }
            )
            curves[key][TMC] = v
            v = np.random.default_rng(0).random(len(sc.candidates))
            rows.append(
                {
                    **base,
                    "method": "random",
                    "rho": _rho(v, gt),
                    "seconds": 0.0,
                    "per_set": 0.0,
                    **_ratios(sc, v),
                }
            )
            print(f"{key}: done", flush=True)
    return rows, curves


def _rho(values: np.ndarray, utility: np.ndarray) -> float:
    return rank_correlation(values, utility)["spearman"] if np.ptp(values) > 0 else float("nan")


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.2g}"


def _fmt(x: float, digits: int = 2) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def headline(rows: list[dict[str, Any]]) -> str:
    """Compact markdown: method x scenario cells listing rho for every black box, and the
    redundant/irrelevant-to-fresh value ratios the same way."""
    scens = list(dict.fromkeys(r["scenario"] for r in rows))
    bbs = list(dict.fromkeys(r["black box"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["scenario"], r["black box"], r["method"]): r for r in rows}

    def cell(sc: str, m: str, field: str) -> str:
        return " / ".join(
            _fmt(by[(sc, b, m)].get(field, np.nan)) if (sc, b, m) in by else "" for b in bbs
        )

    out = [
        f"Spearman rho against retraining; each cell lists {' / '.join(bbs)}.\n",
        "| method | " + " | ".join(scens) + " | ms / set |",
        "|---|" + "---|" * (len(scens) + 1),
    ]
    for m in methods:
        per_set = np.median([r["per_set"] for r in rows if r["method"] == m])
        out.append(
            f"| {m} | " + " | ".join(cell(sc, m, "rho") for sc in scens) + f" | {_ms(per_set)} |"
        )
    ratios = [k for k in RATIOS if any(k in r for r in rows)]
    if ratios:
        out += [
            "",
            "Value of a pure redundant or irrelevant set / value of a pure fresh set of "
            f"the same size (target <= 0.1); each cell lists {' / '.join(bbs)}.\n",
            "| method | " + " | ".join(ratios) + " |",
            "|---|" + "---|" * len(ratios),
        ]
        for m in methods:
            out.append(f"| {m} | " + " | ".join(cell(RATIOS[k][0], m, k) for k in ratios) + " |")
    return "\n".join(out) + "\n"


def tables(rows: list[dict[str, Any]]) -> str:
    """Markdown: headline, rho per scenario (method x black box), bad/fresh value ratios, cost,
    all rows."""
    scens = list(dict.fromkeys(r["scenario"] for r in rows))
    bbs = list(dict.fromkeys(r["black box"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["scenario"], r["black box"], r["method"]): r for r in rows}
    out = ["### Headline\n", headline(rows)]
    for sc in scens:
        n = next(r["n_sets"] for r in rows if r["scenario"] == sc)
        out.append(f"### {sc}: Spearman rho against retraining ({n} sets)\n")
        out.append("| method | " + " | ".join(bbs) + " | median s / set |")
        out.append("|---|" + "---|" * (len(bbs) + 1))
        for m in methods:
            cells = [by.get((sc, b, m)) for b in bbs]
            per_set = np.median([c["per_set"] for c in cells if c])
            out.append(
                f"| {m} | "
                + " | ".join(_fmt(c["rho"]) if c else "" for c in cells)
                + f" | {per_set:.2g} |"
            )
        out.append("")
    for k in [k for k in RATIOS if any(k in r for r in rows)]:
        out.append(
            f"### {k}: value of a pure {k.split(' / ')[0]} set / value of a pure fresh set "
            "of the same size (target <= 0.1)\n"
        )
        out.append("| method | " + " | ".join(bbs) + " |")
        out.append("|---|" + "---|" * len(bbs))
        for m in methods:
            cells = [by.get((RATIOS[k][0], b, m)) for b in bbs]
            out.append(
                f"| {m} | " + " | ".join(_fmt(c.get(k, np.nan)) if c else "" for c in cells) + " |"
            )
        out.append("")
    out.append("### Cost: one retrain of the black box against one appraisal by a proxy\n")
    out.append(
        "Medians over scenarios; ratio = retrain seconds / proxy seconds per set "
        "(target >= 1000).\n"
    )
    proxies = [p for p in PROXIES if p in methods]
    out.append(
        "| black box | retrain s | " + " | ".join(f"{p} ms/set | ratio" for p in proxies) + " |"
    )
    out.append("|---|---|" + "---|---|" * len(proxies))
    for b in bbs:
        retrain = float(np.median([by[(s, b, "retrain (ground truth)")]["per_set"] for s in scens]))
        cells = []
        for p in proxies:
            per = float(np.median([by[(s, b, p)]["per_set"] for s in scens if (s, b, p) in by]))
            cells += [f"{1e3 * per:.2f}", f"{retrain / per:,.0f}"]
        out.append(f"| {b} | {retrain:.2f} | " + " | ".join(cells) + " |")
    out.append("")
    calibrated = [r for r in rows if r["method"] == CALIBRATED and "chosen" in r]
    if calibrated:
        out.append(
            "### Self-calibration: what the influence proxy chose from the owner's own data\n"
        )
        out.append(
            "| scenario | black box | chosen | rho on simulated purchases "
            "| rho against retraining |"
        )
        out.append("|---|---|---|---|---|")
        for r in calibrated:
            chosen = ", ".join(f"{k}={v:g}" for k, v in r["chosen"].items())
            out.append(
                f"| {r['scenario']} | {r['black box']} | {chosen} "
                f"| {r['calibration rho']:.2f} | {r['rho']:.2f} |"
            )
        out.append("")
    out.append("### Every row\n")
    out.append(
        "| scenario | black box | method | rho | seconds | s / set | build s |\n"
        "|---|---|---|---|---|---|---|"
    )
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['black box']} | {r['method']} | {r['rho']:.3f} "
            f"| {r['seconds']:.3f} | {r['per_set']:.2g} "
            f"| {_fmt(r.get('build', np.nan), 1)} |"
        )
    return "\n".join(out) + "\n"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A result row with numpy scalars as floats (nested dicts too, e.g. calibration choices)."""
    return {
        k: v if isinstance(v, str) else _jsonable(v) if isinstance(v, dict) else float(v)
        for k, v in row.items()
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="small smoke run (CI); writes no tables or plots"
    )
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument(
        "--tables-from", metavar="JSON", help="only print the tables of a saved suite_rows.json"
    )
    args = ap.parse_args(argv)
    if args.tables_from:
        with open(args.tables_from) as f:
            saved = json.load(f)
        print(tables(saved))
        return saved
    start = time.perf_counter()
    cfg = _config(args.quick)
    rows, curves = run(cfg)
    md = tables(rows)
    wall = time.perf_counter() - start
    print(md)
    print(f"wall time: {wall:.0f} s")
    if not args.quick:
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "suite_rows.json"), "w") as f:
            json.dump([_jsonable(r) for r in rows], f, indent=0)
        with open(os.path.join(RESULTS, "suite_table.md"), "w") as f:
            gt = sum(r["seconds"] for r in rows if r["method"] == "retrain (ground truth)")
            f.write(
                f"# Fidelity suite\n\n`python -m benchmarks.suite`: {wall / 60:.1f} min on 2 "
                f"shared cores, of which {gt / 60:.1f} min retraining for the ground truth "
                "(0 when cached).\n\n" + md
            )
        if not args.no_plot:
            _plot(curves, rows, cfg)
    return rows


def _plot(
    curves: dict[str, dict[str, np.ndarray]], rows: list[dict[str, Any]], cfg: Config
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    key = "label-noise / mlp" if "label-noise / mlp" in curves else next(iter(curves))
    c = curves[key]
    methods = [m for m in c if m != "retrain"]
    cols = 4
    nrow = -(-len(methods) // cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(4 * cols, 3 * nrow), squeeze=False)
    for ax, m in zip(axes.ravel(), methods):
        ax.scatter(c["retrain"], c[m], s=14)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("retrain utility (nats)", fontsize=8)
    for ax in axes.ravel()[len(methods) :]:
        ax.axis("off")
    fig.suptitle(f"appraisal against retraining: {key}")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "suite_appraisal.png"), dpi=90)
    plt.close(fig)

    key = "class-prior / logreg" if "class-prior / logreg" in curves else next(iter(curves))
    c = curves[key]
    sc = next(s for s, _ in cfg.scenarios if s.name == key.split(" / ")[0])
    share = np.array([np.isin(y, (0, 1, 2, 3, 4)).mean() for _, y in sc.candidates])
    shown = [m for m in ("influence", "tree", "student", TMC) if m in c]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.4), squeeze=False)
    for ax, m in zip(axes[0], shown):
        pts = ax.scatter(rankdata(c["retrain"]), rankdata(c[m]), c=share, cmap="viridis", s=12)
        ax.set_title(f"{m} (rho {_rho(c[m], c['retrain']):.2f})", fontsize=9)
        ax.set_xlabel("rank of retrain utility", fontsize=8)
    axes[0][0].set_ylabel("rank of appraisal")
    fig.colorbar(pts, ax=axes[0][-1], label="share of digits 0-4 (over-represented in D_tr)")
    fig.suptitle(key)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "suite_ranks.png"), dpi=90)
    plt.close(fig)

    plot_cost(rows)


def plot_cost(rows: list[dict[str, Any]]) -> None:
    """suite_cost.png: seconds per candidate set of every method and of one retrain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per: dict[str, list[float]] = {}
    for r in rows:
        if r["method"] == "random":
            continue
        retrain = r["method"] == "retrain (ground truth)"
        name = f"retrain {r['black box']}" if retrain else r["method"]
        per.setdefault(name, []).append(r["per_set"])
    med = {k: float(np.median(v)) for k, v in per.items()}
    names = sorted(med, key=med.get)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(names) + 1))
    ax.barh(
        names,
        [max(med[n], 1e-5) for n in names],
        color=["tab:red" if n.startswith("retrain") else "tab:blue" for n in names],
    )
    ax.set_xscale("log")
    ax.set_xlabel("seconds per candidate set (median over scenarios\nand black boxes; log scale)")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "suite_cost.png"), dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
