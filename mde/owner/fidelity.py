"""Fidelity check before publishing a proxy: does its efficacy rank candidate sets the way
retraining the real model does?"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mde.valuation.retrain import Candidate, rank_correlation, retrain_utility

__all__ = ["fidelity_report", "FidelityReport", "retrain_utility", "rank_correlation"]


class FidelityReport(BaseModel):
    """How well a proxy's efficacy ranks candidate sets against retraining."""

    model_config = ConfigDict(frozen=True)

    spearman: float
    spearman_ci: tuple[float, float]
    pearson: float
    pearson_ci: tuple[float, float]
    efficacy: list[float]
    utility: list[float]
    utility_std: list[float]
    metric: str
    seeds: int


def fidelity_report(
    proxy: Any,
    model_factory: Callable[[int], Any],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    candidates: Sequence[Candidate],
    metric: str = "log_loss",
    seeds: int = 3,
    n_boot: int = 1000,
    random_state: int | None = 0,
    n_jobs: int = 1,
) -> FidelityReport:
    """Spearman and Pearson correlation of ``proxy.efficacy`` with retraining utility, with
    95% percentile bootstrap intervals over candidate sets. Run before publishing a proxy."""
    utility, spread = retrain_utility(
        model_factory, X_train, y_train, X_test, y_test, candidates, metric, seeds, n_jobs
    )
    eff = np.array([proxy.efficacy(X, y) for X, y in candidates])
    point = rank_correlation(eff, utility)
    rng = np.random.default_rng(random_state)
    boot: dict[str, list[float]] = {"spearman": [], "pearson": []}
    for _ in range(n_boot):
        idx = rng.integers(0, len(eff), len(eff))
        if np.ptp(eff[idx]) == 0 or np.ptp(utility[idx]) == 0:
            continue
        r = rank_correlation(eff[idx], utility[idx])
        for key in boot:
            if np.isfinite(r[key]):
                boot[key].append(r[key])

    def ci(key: str) -> tuple[float, float]:
        vals = boot[key]
        return (
            (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)))
            if vals
            else (float("nan"),) * 2
        )

    return FidelityReport(
        spearman=point["spearman"],
        spearman_ci=ci("spearman"),
        pearson=point["pearson"],
        pearson_ci=ci("pearson"),
        efficacy=eff.tolist(),
        utility=utility.tolist(),
        utility_std=spread.tolist(),
        metric=metric,
        seeds=seeds,
    )
