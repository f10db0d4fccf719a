"""MDE: price training data against a model before either side reveals anything.

Model owner: ``owner = build_proxy(...)`` -> ``owner.export`` (public artifact) ->
``owner.open`` (sealed score -> :class:`EfficacyReport`) -> a pricing function ->
``owner.verify_delivery``. Data owner: ``load_artifact`` -> ``session.prepare(X, y)``
(``scorer.score``) -> send ``message.to_bytes()``.
"""

from __future__ import annotations

from typing import Any

from mde.crypto.params import CKKSParams
from mde.data_owner import DataOwnerSession, HiddenClient, Scorer, load_artifact
from mde.data_owner.policy import DPPolicy, GuardPolicy
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
from mde.owner import ModelOwner, build_proxy, load_proxy
from mde.proxies import Proxy, proxy_kinds, register_proxy
from mde.report import EfficacyReport
from mde.version import __version__
from mde.wire import SealedScore
from mde.wire.signing import SigningKey

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
