"""Ground truth for proxies: retrain the real model with each candidate set.

Model owners call :func:`retrain_utility` and :func:`rank_correlation` before publishing a
proxy (and calibration uses them), to check that its efficacy ranks data sets the way
retraining does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, log_loss

from mde.errors import InputError

__all__ = ["retrain_utility", "rank_correlation", "Candidate"]

Candidate = tuple[np.ndarray, np.ndarray]


def _test_metric(
    model: Any, X: np.ndarray, y: np.ndarray, metric: str, labels: np.ndarray
) -> float:
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


def _fit_eval(
    factory: Callable[[int], Any],
    seed: int,
    X: np.ndarray,
    y: np.ndarray,
    Xte: np.ndarray,
    yte: np.ndarray,
    metric: str,
    labels: np.ndarray,
) -> float:
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
    jobs = [(None, s) for s in range(seeds)] + [
        (i, s) for i in range(len(candidates)) for s in range(seeds)
    ]

    def data(i: int | None) -> tuple[np.ndarray, np.ndarray]:
        if i is None:
            return X_train, y_train
        Xc, yc = candidates[i]
        return np.vstack([X_train, Xc]), np.concatenate([y_train, yc])

    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_eval)(model_factory, s, *data(i), X_test, y_test, metric, labels)
        for i, s in jobs
    )
    base = np.array(results[:seeds])
    cand = np.array(results[seeds:]).reshape(len(candidates), seeds)
    gain = base[None, :] - cand
    return gain.mean(axis=1), gain.std(axis=1)


def rank_correlation(
    appraisal: Sequence[float] | np.ndarray, utility: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """Spearman and Pearson correlation of appraisals with true utility."""
    a, u = np.asarray(appraisal, float), np.asarray(utility, float)
    if a.shape != u.shape or a.size < 3:
        raise InputError("need the same number (>= 3) of appraisals and utilities.")
    return {
        "spearman": float(spearmanr(a, u).statistic),
        "pearson": float(pearsonr(a, u).statistic),
    }
