"""Ground truth for proxies: retrain the real model with each candidate set.

Model owners call :func:`retrain_utility` and :func:`rank_correlation` before publishing a
proxy, to check that its efficacy ranks data sets the way retraining does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from pydantic import BaseModel, ConfigDict
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, log_loss

from mde.errors import InputError

__all__ = ["retrain_utility", "rank_correlation", "label_noise_candidates", "fidelity_report", "FidelityReport"]

Candidate = tuple[np.ndarray, np.ndarray]


def _test_metric(model: Any, X: np.ndarray, y: np.ndarray, metric: str, labels: np.ndarray) -> float:
    if metric == "log_loss":
        proba = np.clip(model.predict_proba(X), 1e-15, 1.0)
        cols = list(model.classes_)
        full = np.full((X.shape[0], len(labels)), 1e-15)
        for j, c in enumerate(labels):
            if c in cols:
                full[:, j] = proba[:, cols.index(c)]
        full /= full.sum(axis=1, keepdims=True)
        return float(log_loss(y, full, labels=labels))
    if metric == "error":
        return 1.0 - float(accuracy_score(y, model.predict(X)))
    raise InputError(f"metric must be 'log_loss' or 'error'; got {metric!r}.")


def _fit_eval(factory: Callable[[int], Any], seed: int, X: np.ndarray, y: np.ndarray,
              Xte: np.ndarray, yte: np.ndarray, metric: str, labels: np.ndarray) -> float:
    model = factory(seed)
    model.fit(X, y)
    return _test_metric(model, Xte, yte, metric, labels)


def retrain_utility(
    model_factory: Callable[[int], Any],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    candidates: Sequence[Candidate],
    metric: str = "log_loss",
    seeds: int = 3,
    n_jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """True utility of each candidate set: reduction of the test metric when the model is
    retrained on ``D_tr`` plus the candidate (positive = useful).

    Parameters
    ----------
    model_factory : callable
        ``model_factory(seed)`` returns a fresh, unfitted scikit-learn-style classifier.
    candidates : sequence of (X, y)
    metric : {"log_loss", "error"}
    seeds : int
        Every fit (baseline and each candidate) is repeated with seeds 0..seeds-1 and the
        improvement is taken seed by seed (paired), then averaged.
    n_jobs : int
        joblib workers.

    Returns
    -------
    mean, std : ndarray of shape (n_candidates,)
    """
    if not candidates:
        raise InputError("candidates is empty; pass at least one (X, y) candidate set.")
    labels = np.unique(np.concatenate([y_train, y_test]))
    jobs = [(None, s) for s in range(seeds)] + [(i, s) for i in range(len(candidates)) for s in range(seeds)]

    def data(i: int | None) -> tuple[np.ndarray, np.ndarray]:
        if i is None:
            return X_train, y_train
        Xc, yc = candidates[i]
        return np.vstack([X_train, Xc]), np.concatenate([y_train, yc])

    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_eval)(model_factory, s, *data(i), X_test, y_test, metric, labels) for i, s in jobs
    )
    base = np.array(results[:seeds])
    cand = np.array(results[seeds:]).reshape(len(candidates), seeds)
    gain = base[None, :] - cand
    return gain.mean(axis=1), gain.std(axis=1)


def rank_correlation(appraisal: Sequence[float], utility: Sequence[float]) -> dict[str, float]:
    """Spearman and Pearson correlation of appraisals with true utility."""
    a, u = np.asarray(appraisal, float), np.asarray(utility, float)
    if a.shape != u.shape or a.size < 3:
        raise InputError("need the same number (>= 3) of appraisals and utilities.")
    return {"spearman": float(spearmanr(a, u).statistic), "pearson": float(pearsonr(a, u).statistic)}


def label_noise_candidates(
    X: np.ndarray, y: np.ndarray, n_sets: int = 10, pair: tuple[Any, Any] | None = None,
    random_state: int | None = 0, rates: Sequence[float] | None = None,
) -> list[Candidate]:
    """Split (X, y) into ``n_sets`` candidate sets; set p (1-based) flips labels with
    probability p / n_sets (or ``rates[p - 1]``): between the two classes of ``pair``
    (seed 000's 1 <-> 7), or to a random other class when ``pair`` is None."""
    rng = np.random.default_rng(random_state)
    classes = np.unique(y)
    rates = [p / n_sets for p in range(1, n_sets + 1)] if rates is None else list(rates)
    out = []
    for p, idx in enumerate(np.array_split(rng.permutation(len(y)), n_sets), start=1):
        yc = y[idx].copy()
        flip = rng.random(len(idx)) < rates[p - 1]
        if pair is not None:
            a, b = pair
            ya, yb = flip & (yc == a), flip & (yc == b)
            yc[ya], yc[yb] = b, a
        else:
            for j in np.flatnonzero(flip):
                others = classes[classes != yc[j]]
                yc[j] = rng.choice(others)
        out.append((X[idx], yc))
    return out


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
    utility, spread = retrain_utility(model_factory, X_train, y_train, X_test, y_test, candidates, metric, seeds,
                                      n_jobs)
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
        return (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if vals else (float("nan"),) * 2

    return FidelityReport(spearman=point["spearman"], spearman_ci=ci("spearman"), pearson=point["pearson"],
                          pearson_ci=ci("pearson"), efficacy=eff.tolist(), utility=utility.tolist(),
                          utility_std=spread.tolist(), metric=metric, seeds=seeds)
