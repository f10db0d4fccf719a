"""Self-calibration: hyperparameters chosen by simulated purchases on the owner's own data."""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression

import mde
from mde.proxies.calibration import calibrate


def _factory(seed):
    return LogisticRegression(C=0.05, max_iter=2000)


def test_self_calibration_picks_the_best_simulated_configuration(digits, model):
    grid = {"n_components": [4, 12], "l2": [0.01, 1.0]}
    proxy = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        random_state=0,
        calibrate_with=_factory,
        calibration_grid=grid,
        compression="pca",
    )
    cal = proxy.calibration_
    assert len(cal["results"]) == 4
    assert sorted((r["params"]["n_components"], r["params"]["l2"]) for r in cal["results"]) == [
        (4, 0.01),
        (4, 1.0),
        (12, 0.01),
        (12, 1.0),
    ]
    best = max(cal["results"], key=lambda r: r["rho"])
    assert cal["chosen"] == best["params"] and cal["rho"] == best["rho"]
    assert proxy.n_components == best["params"]["n_components"]
    assert proxy.l2 == best["params"]["l2"]
    assert proxy.compression == "pca"  # fixed options are kept
    # a configuration's rho does not depend on the rest of the grid: a smaller grid with the
    # same seed (same split, simulated sets and retraining) gives exactly the same numbers
    _, part = calibrate(
        "influence",
        _factory,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        {"n_components": [4, 12], "l2": [1.0]},
        {"compression": "pca"},
        random_state=0,
    )
    assert part == [r for r in cal["results"] if r["params"]["l2"] == 1.0]
    with pytest.raises(mde.InputError, match="model factory"):
        mde.build_proxy(model, digits.Xtr, digits.ytr, digits.Xte, digits.yte, calibrate_with=42)
    with pytest.raises(mde.InputError, match="grid"):
        calibrate("oracle", _factory, digits.Xtr, digits.ytr, digits.Xte, digits.yte)


def test_uncalibrated_proxies_say_so(proxy):
    assert proxy.calibration_ is None


def test_calibration_survives_save_and_load(digits, model, tmp_path):
    proxy = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        random_state=0,
        calibrate_with=_factory,
        calibration_grid={"l2": [0.1, 1.0]},
    )
    assert proxy.calibration_ is not None and len(proxy.calibration_["results"]) == 2
    proxy.save(tmp_path / "p.mdeproxy")
    assert mde.load_proxy(tmp_path / "p.mdeproxy").calibration_ == proxy.calibration_
