"""Shared fixtures: a small real problem (scikit-learn digits) and a built proxy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import mde


@dataclass
class Split:
    Xtr: np.ndarray
    ytr: np.ndarray
    Xte: np.ndarray
    yte: np.ndarray
    Xc: np.ndarray
    yc: np.ndarray


@pytest.fixture(scope="session", autouse=True)
def mde_home(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Ledgers go to a temporary MDE_HOME, never to the user's data folder."""
    import os

    home = str(tmp_path_factory.mktemp("mde-home"))
    os.environ["MDE_HOME"] = home
    return home


@pytest.fixture(autouse=True)
def fresh_home(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own MDE_HOME: the data owner's budgets and identities start fresh."""
    import os

    home = os.path.join(str(tmp_path), "mde-home")
    monkeypatch.setenv("MDE_HOME", home)


@pytest.fixture(scope="session")
def digits() -> Split:
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))
    tr, te, c = idx[:300], idx[300:700], idx[700:1000]
    return Split(X[tr], y[tr], X[te], y[te], X[c], y[c])


@pytest.fixture(scope="session")
def model(digits: Split) -> LogisticRegression:
    return LogisticRegression(C=0.05, max_iter=3000).fit(digits.Xtr, digits.ytr)


@pytest.fixture(scope="session")
def proxy(digits: Split, model: LogisticRegression) -> mde.ModelOwner:
    return mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=16, random_state=0
    )


@pytest.fixture()
def fresh_proxy(digits: Split, model: LogisticRegression) -> mde.ModelOwner:
    """A proxy with no exported artifacts yet (protocol tests mutate proxy state)."""
    return mde.build_proxy(
        model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, n_components=8, random_state=0
    )


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory, proxy: mde.ModelOwner) -> str:
    path = tmp_path_factory.mktemp("artifact") / "a.mde"
    proxy.export(path)
    return str(path)
