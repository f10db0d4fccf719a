"""MDE: price training data against a model before either side reveals anything.

Model owner: ``build_proxy`` -> ``proxy.export`` (public artifact) -> ``proxy.open``
(sealed score -> :class:`EfficacyReport`) -> a pricing function -> ``proxy.verify_delivery``.
Data owner: ``load_artifact`` -> ``scorer.score`` -> send ``SealedScore.to_bytes()``.
"""

from __future__ import annotations

from typing import Any

from mde.build import build_proxy, proxy_kinds, register_proxy
from mde.errors import (
    AdapterError,
    ArtifactError,
    DeliveryError,
    InputError,
    LabelError,
    MDEError,
    MissingDependencyError,
    NotFittedError,
    PricingError,
    ReplayError,
    SealedScoreError,
)
from mde.proxy import Proxy
from mde.report import EfficacyReport
from mde.scoring import Scorer, load_artifact
from mde.sealed import SealedScore
from mde.sealing import CKKSParams
from mde.storage import load_proxy

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "wrap",
    "build_proxy",
    "proxy_kinds",
    "register_proxy",
    "Proxy",
    "load_proxy",
    "load_artifact",
    "Scorer",
    "SealedScore",
    "EfficacyReport",
    "CKKSParams",
    "MDEError",
    "InputError",
    "LabelError",
    "AdapterError",
    "NotFittedError",
    "ArtifactError",
    "SealedScoreError",
    "ReplayError",
    "DeliveryError",
    "PricingError",
    "MissingDependencyError",
]


def wrap(model: Any, **options: Any) -> Any:
    """Wrap a classifier as a black box; see :func:`adapters.wrap`."""
    from adapters import wrap as _wrap

    return _wrap(model, **options)
