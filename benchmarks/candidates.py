"""Candidate-set generators used by the benchmarks and tests (not library API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mde.valuation.retrain import Candidate

__all__ = ["label_noise_candidates", "gradient_norm"]


def label_noise_candidates(
    X: np.ndarray,
    y: np.ndarray,
    n_sets: int = 10,
    pair: tuple[Any, Any] | None = None,
    random_state: int | None = 0,
    rates: Sequence[float] | None = None,
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


def gradient_norm(proxy: Any, X: Any, y: Any) -> float:
    """Baseline appraisal: norm of the summed efficacy features (seed 000 eq. 3)."""
    return float(np.linalg.norm(proxy.psi(X, y).sum(axis=0)))
