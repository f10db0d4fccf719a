"""MDE: price training data against a model before either side reveals anything.

Model owner: ``owner = build_proxy(...)`` -> ``owner.export`` (public artifact) ->
``owner.open`` (sealed score -> :class:`EfficacyReport`) -> a pricing function ->
``owner.verify_delivery``. Data owner: ``load_artifact`` -> ``session.prepare(X, y)``
(``scorer.score``) -> send ``message.to_bytes()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mde.errors import (
    AdapterError,
    ArtifactError,
    BudgetError,
    DeliveryError,
    IdentityError,
    InputError,
    LabelError,
    MDEError,
    MissingDependencyError,
    NotFittedError,
    PricingError,
    ProtocolError,
    ReplayError,
    SealedScoreError,
    StorageError,
)
from mde.version import __version__

if TYPE_CHECKING:
    from mde.crypto.params import CKKSParams
    from mde.data_owner import DataOwnerSession, HiddenClient, Scorer, load_artifact
    from mde.data_owner.policy import DPPolicy, GuardPolicy
    from mde.owner import ModelOwner, build_proxy, load_proxy
    from mde.proxies import Proxy, proxy_kinds, register_proxy
    from mde.report import EfficacyReport
    from mde.wire import SealedScore
    from mde.wire.signing import SigningKey

# the public API is imported on first use: `mde --help` and a data owner's scorer load only
# what they need (no scikit-learn, no model-owner steps)
_LAZY = {
    "CKKSParams": "mde.crypto.params",
    "DataOwnerSession": "mde.data_owner",
    "HiddenClient": "mde.data_owner",
    "Scorer": "mde.data_owner",
    "load_artifact": "mde.data_owner",
    "DPPolicy": "mde.data_owner.policy",
    "GuardPolicy": "mde.data_owner.policy",
    "ModelOwner": "mde.owner",
    "build_proxy": "mde.owner",
    "load_proxy": "mde.owner",
    "Proxy": "mde.proxies",
    "proxy_kinds": "mde.proxies",
    "register_proxy": "mde.proxies",
    "EfficacyReport": "mde.report",
    "SealedScore": "mde.wire",
    "SigningKey": "mde.wire.signing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mde' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "__version__",
    "wrap",
    "build_proxy",
    "proxy_kinds",
    "register_proxy",
    "Proxy",
    "ModelOwner",
    "load_proxy",
    "load_artifact",
    "DataOwnerSession",
    "Scorer",
    "HiddenClient",
    "SealedScore",
    "EfficacyReport",
    "CKKSParams",
    "MDEError",
    "InputError",
    "LabelError",
    "AdapterError",
    "NotFittedError",
    "ArtifactError",
    "StorageError",
    "SealedScoreError",
    "ProtocolError",
    "ReplayError",
    "DeliveryError",
    "PricingError",
    "MissingDependencyError",
    "IdentityError",
    "BudgetError",
    "GuardPolicy",
    "DPPolicy",
    "SigningKey",
]


def wrap(model: Any, **options: Any) -> Any:
    """Wrap a classifier as a black box; see :func:`adapters.wrap`."""
    from adapters import wrap as _wrap

    return _wrap(model, **options)
