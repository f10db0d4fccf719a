"""The model owner's estimators: proxies of a black box, their registry and calibration.

Nothing here knows CKKS, files or sessions. The built-in kinds register themselves in their
own modules, imported on the registry's first look-up (:mod:`mde.proxies.registry`); the
package itself imports no estimator, so the data owner's scorer loads none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mde.proxies.registry import proxy_class, proxy_kinds, register_proxy

if TYPE_CHECKING:
    from mde.proxies.base import CKKSEvaluable, Proxy

__all__ = ["Proxy", "CKKSEvaluable", "proxy_class", "proxy_kinds", "register_proxy"]


def __getattr__(name: str) -> Any:
    if name in ("Proxy", "CKKSEvaluable"):
        from mde.proxies import base

        return getattr(base, name)
    raise AttributeError(f"module 'mde.proxies' has no attribute {name!r}")
