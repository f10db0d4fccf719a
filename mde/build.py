"""``build_proxy``: the model owner's entry point, with a registry of proxy kinds."""

from __future__ import annotations

from typing import Any

import numpy as np

from mde.errors import InputError
from mde.proxy import Proxy

__all__ = ["build_proxy", "register_proxy", "proxy_kinds", "proxy_class"]

_KINDS: dict[str, type[Proxy]] = {}


def register_proxy(cls: type[Proxy]) -> type[Proxy]:
    """Register a :class:`Proxy` subclass under its ``kind`` (usable as a decorator)."""
    _KINDS[cls.kind] = cls
    return cls


def proxy_kinds() -> list[str]:
    """Names of the registered proxy kinds."""
    return sorted(_KINDS)


def proxy_class(kind: str) -> type[Proxy]:
    if kind not in _KINDS:
        raise InputError(f"unknown proxy kind {kind!r}; choose one of {proxy_kinds()}.")
    return _KINDS[kind]


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
    **options: Any,
) -> Proxy:
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
        Proxy kind, one of :func:`proxy_kinds` (``"influence"``).
    random_state : int, optional
    calibrate_with : callable, optional
        ``model_factory(seed)`` returning a fresh, unfitted copy of the black box. If given,
        hyperparameters are chosen by simulated purchases (:mod:`mde.calibration`) over
        ``calibration_grid`` (default: :data:`mde.calibration.DEFAULT_GRIDS`); the choice and
        every configuration's rank correlation are kept in ``proxy.calibration_``.
    **options
        Keyword arguments of the proxy class (e.g. ``n_components=32, l2=1e-2``); fixed
        during calibration.

    Returns
    -------
    Proxy
        Fitted; ``proxy.fidelity_`` is its arg-max agreement with the black box on ``X_test``.
    """
    cls = proxy_class(kind)
    calibration = None
    if calibrate_with is not None:
        from mde.calibration import calibrate
        from mde.validation import check_matrix

        if not callable(calibrate_with):
            raise InputError("calibrate_with must be a model factory: a callable seed -> unfitted model.")
        chosen, results = calibrate(kind, calibrate_with, check_matrix(X_train), np.asarray(y_train),
                                    check_matrix(X_test), np.asarray(y_test), calibration_grid, options,
                                    random_state=random_state)
        calibration = {"chosen": chosen, "results": results,
                       "rho": max(r["rho"] for r in results)}
        options = {**options, **chosen}
    try:
        proxy = cls(random_state=random_state, **options)
    except TypeError as exc:
        raise InputError(f"bad option for the {kind!r} proxy: {exc}") from exc
    proxy.fit(blackbox, X_train, y_train, X_test, y_test)
    proxy.calibration_ = calibration
    return proxy


def _register_builtins() -> None:
    from mde.influence import InfluenceProxy
    from mde.poly import PolyInfluenceProxy
    from mde.student import StudentProxy
    from mde.tree import TreeProxy

    register_proxy(InfluenceProxy)
    register_proxy(PolyInfluenceProxy)
    register_proxy(TreeProxy)
    register_proxy(StudentProxy)


_register_builtins()
