"""Model owner, step 0: ``build_proxy``, the entry point (optionally self-calibrated)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.errors import InputError
from mde.owner.model_owner import ModelOwner
from mde.proxies.calibration import calibrate
from mde.proxies.registry import make_proxy, proxy_class
from mde.validation import check_matrix

__all__ = ["build_proxy"]


def build_proxy(
    blackbox: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    kind: str = "influence",
    random_state: int | None = None,
    calibrate_with: Any = None,
    calibration_grid: dict[str, Any] | None = None,
    ledger: Any = None,
    identity: Any = None,
    **options: Any,
) -> ModelOwner:
    """Build a compact proxy of a black-box classifier.

    Parameters
    ----------
    blackbox : model or BlackBox
        Anything :func:`adapters.wrap` accepts; only ``predict_proba`` is queried.
    X_train, y_train : arrays
        The model owner's training set (the data the model already has).
    X_test, y_test : arrays
        The test set whose loss the owner wants to reduce (it shapes the secret ``w``).
    kind : str
        Proxy kind, one of :func:`mde.proxy_kinds` (default ``"influence"``).
    random_state : int, optional
    calibrate_with : callable, optional
        ``model_factory(seed)`` returning a fresh, unfitted copy of the black box. If given,
        hyperparameters are chosen by simulated purchases (:mod:`mde.proxies.calibration`)
        over ``calibration_grid``; the choice and every configuration's rank correlation
        are kept in ``calibration_``.
    ledger : Ledger or path, optional
        The model owner's evaluation ledger (:mod:`mde.owner.ledger`; default under the
        user's data folder, or ``$MDE_HOME``).
    identity : SigningKey, optional
        The model owner's signing key; default ``$MDE_HOME/identity.pem`` (made on first use).
    **options
        Keyword arguments of the proxy class (e.g. ``n_components=32, l2=1e-2``); fixed
        during calibration.

    Returns
    -------
    ModelOwner
        The fitted proxy with an empty session; ``fidelity_`` is its arg-max agreement with
        the black box on ``X_test``.
    """
    proxy_class(kind)  # an unknown kind fails before any calibration work
    calibration = None
    if calibrate_with is not None:
        if not callable(calibrate_with):
            raise InputError(
                "calibrate_with must be a model factory: a callable seed -> unfitted model."
            )
        chosen, results = calibrate(
            kind,
            calibrate_with,
            check_matrix(X_train),
            np.asarray(y_train),
            check_matrix(X_test),
            np.asarray(y_test),
            calibration_grid,
            options,
            random_state=random_state,
        )
        calibration = {"chosen": chosen, "results": results, "rho": max(r["rho"] for r in results)}
        options = {**options, **chosen}
    proxy = make_proxy(kind, random_state=random_state, **options)
    proxy.fit(blackbox, X_train, y_train, X_test, y_test)
    proxy.calibration_ = calibration
    return ModelOwner(proxy, ledger=ledger, identity=identity)
