"""What the data owner's DP mode costs: rank fidelity against retraining, and price spread.

With ``GuardPolicy(dp=DPPolicy(epsilon, delta))`` the data owner clips each record's psi
(after its screens: copies inside the offer and records the membership sketch excludes
score zero) to L2 norm ``clip`` (default the artifact's public ``psi_clip``, the model
owner's 99th percentile of test-record norms), adds Gaussian noise N(0, (z clip)^2 I) to the
summed psi, with ``z = noise_multiplier_for(epsilon, delta)``, and seals the noisy sum
against Enc(w). The order-1 efficacy the model owner opens is ``noisy_sum @ w``: the exact
clipped efficacy plus N(0, (z clip |w|)^2).

Data: the fidelity suite's MNIST label-noise scenario (``benchmarks.scenarios.label_noise``:
D_tr 500, D_te 1,000, 10 candidate sets of 350 records, set p flips 1 <-> 7 with probability
p/10), with the suite's retraining ground truth (``benchmarks.common.cached_utility``:
reduction of test log-loss; logreg 1 seed (deterministic), random forest 3 seeds) and the
influence proxy (order 1) of each black box. Ground truth is cached (gitignored
``benchmarks/results/gt-*.npz``, shared with the suite).

For each black box and epsilon in {1, 4, 16} (delta 1e-6) the table gives:

- Spearman rho of the DP efficacies against retraining: median and 10th/90th percentiles over
  20 independent noise draws (each draw noises every set once). The mechanism is simulated in
  plaintext exactly as the data owner computes it (:func:`mde.owner.verify.recompute` with
  the clip: screens, float32 records, clipped rows, then noise on the sum, dot ``w_``);
  sealing adds only CKKS and flooding noise of order 1e-6, far below the DP noise.
- the same without DP (the plain efficacy) and with clipping only (epsilon = inf);
- the DP noise's standard deviation on the efficacy (``z clip |w|``) over the spread
  (standard deviation) of the no-DP efficacies across the 10 sets;
- the price spread over 2,000 noise draws for one set: LinearPricing(rate=100 per nat) on the
  cleanest set (p = 0.1), mean and standard deviation, and the probability of a sale under
  BinaryPricing(price=100) on the noisiest set (p = 1.0), priced by the real pricing code.

A second table runs the real sealed path (export, ``load_artifact`` with the DP policy,
``score``, ``open``) on every set, 5 answers per set and epsilon: the rho of the opened
efficacies, and the opened efficacy minus the exact clipped efficacy in units of the
noise's standard deviation (mean and standard deviation should be about 0 and 1), which
shows that the simulation matches the sealed mechanism within its noise.

    python -m benchmarks.dp_fidelity    # ~1 minute on 2 cores (~25 s with cached ground truth)

Writes benchmarks/results/dp_fidelity.txt.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import scenarios
from benchmarks.common import RESULTS, black_boxes, cached_utility
from benchmarks.scenarios import Scenario

EPSILONS = (1.0, 4.0, 16.0)
DELTA = 1e-6
BLACK_BOXES = {"logreg": 1, "rf": 3}  # retraining seeds, as in the full suite
RHO_DRAWS = 20
PRICE_DRAWS = 2000
SEALED_DRAWS = 5  # real sealed answers per set and epsilon
LINEAR_RATE = 100.0  # currency per nat
BINARY_PRICE = 100.0
LINEAR = f"linear price p=0.1 (rate {LINEAR_RATE:g})"
BINARY = "binary P(sale) p=1.0"


@dataclass
class Sets:
    """One black box's view of the candidate sets: plain and clipped exact efficacies, the
    clipped psi sums, ``w``, the clip bound and the retraining ground truth."""

    plain: np.ndarray
    clipped: np.ndarray
    sums: np.ndarray  # (n_sets, m) clipped psi sums
    w: np.ndarray
    clip: float
    truth: np.ndarray


def _rho(values: np.ndarray, truth: np.ndarray) -> float:
    from mde.valuation import rank_correlation

    return float(rank_correlation(values, truth)["spearman"])


def _noise_multiplier(epsilon: float) -> float:
    from mde.data_owner.policy import noise_multiplier_for

    return noise_multiplier_for(epsilon, DELTA)


def _exact(owner: Any, sc: Scenario, truth: np.ndarray) -> Sets:
    """The data owner's exact (noise-free) clipped sums, as the model owner recomputes them."""
    from mde.owner.verify import recompute

    proxy, clip = owner.proxy, float(owner.psi_clip_)
    plain, clipped, sums = [], [], []
    for X, y in sc.candidates:
        Xa, yi = proxy.validate(X, y)
        X32 = Xa.astype(np.float32).astype(np.float64)  # what the data owner scores
        scores, s = recompute(proxy, X32, yi, clip)
        plain.append(owner.efficacy(X, y))
        clipped.append(float(scores.sum()))
        sums.append(s)
    return Sets(np.array(plain), np.array(clipped), np.array(sums), owner.w_, clip, truth)


def _noisy(sets: Sets, z: float, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n_sets) efficacies of the Gaussian mechanism: noise on each psi sum, dot w."""
    noise = rng.normal(0.0, z * sets.clip, (draws, *sets.sums.shape))
    return (sets.sums[None] + noise) @ sets.w


def _prices(report: Any, efficacies: np.ndarray, pricing: Any) -> np.ndarray:
    return np.array(
        [pricing.quote(report.model_copy(update={"efficacy": float(e)})).price for e in efficacies]
    )


def _sealed(owner: Any, sc: Scenario, epsilon: float, tmp: str) -> tuple[list[Any], np.ndarray]:
    """SEALED_DRAWS real DP answers per set: (one opened report per set, (draws, n_sets)
    opened efficacies)."""
    import mde

    policy = mde.GuardPolicy(
        max_artifacts=10**6,
        dp=mde.DPPolicy(epsilon=epsilon, delta=DELTA, epsilon_budget=1e9),
    )
    out = np.empty((SEALED_DRAWS, len(sc.candidates)))
    reports: list[Any] = []
    for d in range(SEALED_DRAWS):
        for i, (X, y) in enumerate(sc.candidates):
            path = os.path.join(tmp, "a.mde")
            owner.export(path)  # one artifact per answer: the owner opens each once
            scorer = mde.load_artifact(path, policy=policy)
            if not isinstance(scorer, mde.Scorer):
                raise mde.ArtifactError("a sealed-value artifact was read back as another kind.")
            report = owner.open(scorer.score(X, y).to_bytes())
            out[d, i] = report.efficacy
            if d == 0:
                reports.append(report)
    return reports, out


def _q(values: np.ndarray) -> str:
    med, lo, hi = np.median(values), np.quantile(values, 0.1), np.quantile(values, 0.9)
    return f"{med:.2f} [{lo:.2f}, {hi:.2f}]"


def run() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Both tables' rows: DP fidelity and price spread; the sealed path against the model."""
    import mde
    from pricing import BinaryPricing, LinearPricing

    sc = scenarios.label_noise()
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp()
    linear, binary = LinearPricing(rate=LINEAR_RATE), BinaryPricing(price=BINARY_PRICE)
    fidelity: list[dict[str, str]] = []
    sealed_rows: list[dict[str, str]] = []
    for bb_name, seeds in BLACK_BOXES.items():
        factory = black_boxes()[bb_name]
        truth, _ = cached_utility(sc, bb_name, factory, seeds=seeds)
        model = factory(0).fit(sc.X_train, sc.y_train)
        owner = mde.build_proxy(
            mde.wrap(model), sc.X_train, sc.y_train, sc.X_test, sc.y_test, random_state=0
        )
        sets = _exact(owner, sc, truth)
        spread = float(np.std(sets.plain, ddof=1))
        wnorm = float(np.linalg.norm(sets.w))
        clean, noisy = 0, len(sc.candidates) - 1
        base = {"black box": bb_name}
        rows: list[dict[str, str]] = []
        for eps in EPSILONS:
            z = _noise_multiplier(eps)
            draws = _noisy(sets, z, RHO_DRAWS, rng)
            rhos = np.array([_rho(d, truth) for d in draws])
            reports, opened = _sealed(owner, sc, eps, tmp)
            sd = z * sets.clip * wnorm
            price_draws = _noisy(sets, z, PRICE_DRAWS, rng)
            lin = _prices(reports[clean], price_draws[:, clean], linear)
            sale = _prices(reports[noisy], price_draws[:, noisy], binary) > 0
            rows.append(
                base
                | {
                    "epsilon": f"{eps:g}",
                    "z": f"{z:.2f}",
                    "rho vs retrain": _q(rhos),
                    "noise sd / spread": f"{sd / spread:.2f}",
                    LINEAR: (
                        f"{lin.mean():.1f} +- {lin.std(ddof=1):.1f} "
                        f"({lin.std(ddof=1) / lin.mean():.0%})"
                    ),
                    BINARY: f"{sale.mean():.2f}",
                }
            )
            zscores = (opened - sets.clipped[None]) / sd
            declared = np.array([r.dp_noise for r in reports])
            sealed_rho = np.array([_rho(o, truth) for o in opened])
            sealed_rows.append(
                base
                | {
                    "epsilon": f"{eps:g}",
                    "sealed answers": str(opened.size),
                    "rho sealed (median of draws)": f"{np.median(sealed_rho):.2f}",
                    "rho simulated (median)": f"{np.median(rhos):.2f}",
                    "(opened - exact clipped) / sd: mean, sd": (
                        f"{zscores.mean():+.2f}, {zscores.std(ddof=1):.2f}"
                    ),
                    "max |.|": f"{np.abs(zscores).max():.2f}",
                    "declared dp_noise / z clip |w|": f"{np.median(declared) / sd:.4f}",
                }
            )
        template = reports[clean]  # a signed report to price exact efficacies with
        for label, z_txt, values in (
            ("no DP", "", sets.plain),
            ("inf (clip only)", "0", sets.clipped),
        ):
            price = _prices(template, values[[clean]], linear)[0]
            sold = _prices(template, values[[noisy]], binary)[0] > 0
            fidelity.append(
                base
                | {
                    "epsilon": label,
                    "z": z_txt,
                    "rho vs retrain": f"{_rho(values, truth):.2f}",
                    "noise sd / spread": "0",
                    LINEAR: f"{price:.1f}",
                    BINARY: f"{float(sold):.2f}",
                }
            )
        fidelity += rows
        print(f"{bb_name}: done", flush=True)
    return fidelity, sealed_rows


def _table(rows: list[dict[str, str]]) -> str:
    keys = list(rows[0])
    widths = [max(len(k), *(len(r[k]) for r in rows)) for k in keys]
    line = "| " + " | ".join(k.ljust(w) for k, w in zip(keys, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(r[k].ljust(w) for k, w in zip(keys, widths)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def main() -> str:
    os.environ["MDE_HOME"] = tempfile.mkdtemp(prefix="mde-home-")  # ledgers, identities
    t0 = time.perf_counter()
    with np.errstate(over="ignore"):  # clip_rows divides by tiny for zeroed (screened) rows
        fidelity, sealed_rows = run()
    wall = time.perf_counter() - t0
    text = "\n".join(
        [
            "DP fidelity: MNIST label-noise scenario of the suite (10 sets of 350 records, set p "
            "flips 1 <-> 7 with prob. p/10),",
            f"influence proxy (order 1), clip = artifact psi_clip, delta = {DELTA:g}. rho: "
            f"Spearman against retraining, median [q10, q90] over {RHO_DRAWS} noise draws",
            "(mechanism simulated in plaintext). noise sd / spread: z clip |w| over the std of "
            "the no-DP efficacies across sets.",
            f"Prices over {PRICE_DRAWS} draws: LinearPricing(rate={LINEAR_RATE:g}) on the set "
            f"p=0.1 (mean +- sd), P(sale) of BinaryPricing(price={BINARY_PRICE:g}) on p=1.0.",
            "",
            _table(fidelity),
            "",
            f"Real sealed path (export, load_artifact with DPPolicy, score, open), "
            f"{SEALED_DRAWS} answers per set and epsilon:",
            "",
            _table(sealed_rows),
            "",
            f"wall time: {wall:.0f} s",
        ]
    )
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "dp_fidelity.txt"), "w") as f:
        f.write(text + "\n")
    return text


if __name__ == "__main__":
    main()
