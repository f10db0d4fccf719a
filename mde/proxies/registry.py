"""The registry of proxy kinds; each kind registers itself in its own module.

The built-in kinds' modules (scikit-learn and scipy behind them) are imported on the first
look-up, not with the package: the data owner's scorer never needs them.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from mde.errors import InputError

if TYPE_CHECKING:
    from mde.proxies.base import Proxy

__all__ = ["register_proxy", "proxy_kinds", "proxy_class", "make_proxy"]

P = TypeVar("P", bound="type[Proxy]")
_KINDS: dict[str, type[Proxy]] = {}
_BUILTIN_MODULES = tuple(f"mde.proxies.{m}" for m in ("influence", "poly", "student", "tree"))
_LOCK = threading.RLock()
_loaded: set[str] = set()


def _load_builtins() -> None:
    """Import every built-in kind's module once (each registers itself); thread-safe, and a
    module that failed to import is tried again on the next look-up."""
    with _LOCK:
        for name in _BUILTIN_MODULES:
            if name not in _loaded:
                importlib.import_module(name)
                _loaded.add(name)


def register_proxy(cls: P) -> P:
    """Register a :class:`~mde.proxies.base.Proxy` subclass under its ``kind`` (a decorator).

    Raises
    ------
    InputError
        If another class already holds that kind.
    """
    kind = cls.kind
    if cls.__module__ not in _BUILTIN_MODULES:
        _load_builtins()  # a user's kind must not take a built-in name
    if kind in _KINDS and _KINDS[kind] is not cls:
        raise InputError(f"proxy kind {kind!r} is already registered by {_KINDS[kind].__name__}.")
    _KINDS[kind] = cls
    return cls


def proxy_kinds() -> list[str]:
    """Names of the registered proxy kinds."""
    _load_builtins()
    return sorted(_KINDS)


def proxy_class(kind: str) -> type[Proxy]:
    """The class registered under ``kind``.

    Raises
    ------
    InputError
        If no class is registered under ``kind``.
    """
    _load_builtins()
    if kind not in _KINDS:
        raise InputError(f"unknown proxy kind {kind!r}; choose one of {proxy_kinds()}.")
    return _KINDS[kind]


def make_proxy(kind: str, **params: Any) -> Proxy:
    """An unfitted proxy of ``kind`` with constructor arguments ``params``.

    Raises
    ------
    InputError
        If the kind is unknown or an argument does not fit its constructor.
    """
    cls: Any = proxy_class(kind)
    try:
        proxy: Proxy = cls(**params)
    except TypeError as exc:
        raise InputError(f"bad option for the {kind!r} proxy: {exc}") from exc
    return proxy
