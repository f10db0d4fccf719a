"""Black-box adapters: ``wrap(model)`` turns any classifier into a :class:`BlackBox`.

Proxies query only ``predict_proba``, ``classes_`` and ``n_features_in_``, so a model
behind a remote API works as well as a local one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.base import BlackBox, softmax
from mde.errors import AdapterError

__all__ = ["BlackBox", "wrap", "register_adapter", "registered_adapters", "softmax"]

_Factory = Callable[..., BlackBox]
_REGISTRY: list[tuple[str, Callable[[Any], bool], _Factory]] = []


def register_adapter(
    name: str, predicate: Callable[[Any], bool], factory: _Factory, *, first: bool = True
) -> None:
    """Register an adapter: ``wrap`` uses ``factory(model, **options)`` when ``predicate(model)``.

    Parameters
    ----------
    name : str
        Unique name (re-registering a name replaces it).
    predicate : callable
        Returns True for models this adapter handles.
    factory : callable
        ``factory(model, **options) -> BlackBox``.
    first : bool
        Try this adapter before the built-ins (default), so users can override them.
    """
    _REGISTRY[:] = [entry for entry in _REGISTRY if entry[0] != name]
    entry = (name, predicate, factory)
    if first:
        _REGISTRY.insert(0, entry)
    else:
        _REGISTRY.append(entry)


def registered_adapters() -> list[str]:
    """Names of the registered adapters, in the order ``wrap`` tries them."""
    return [name for name, _, _ in _REGISTRY]


def _sklearn(model: Any, **options: Any) -> BlackBox:
    from adapters.sklearn import SklearnBlackBox

    return SklearnBlackBox(model, **options)


def _torch(model: Any, **options: Any) -> BlackBox:
    from adapters.torch import TorchBlackBox

    return TorchBlackBox(model, **options)


def _onnx(model: Any, **options: Any) -> BlackBox:
    from adapters.onnx import OnnxBlackBox

    return OnnxBlackBox(model, **options)


def _callable(model: Any, **options: Any) -> BlackBox:
    from adapters.callable import CallableBlackBox

    return CallableBlackBox(model, **options)


def _is_sklearn(model: Any) -> bool:
    from adapters.sklearn import is_sklearn_classifier

    return is_sklearn_classifier(model)


def _is_torch(model: Any) -> bool:
    from adapters.torch import is_torch_module

    return is_torch_module(model)


def _is_onnx(model: Any) -> bool:
    from adapters.onnx import is_onnx_model

    return is_onnx_model(model)


register_adapter("callable", callable, _callable)
register_adapter("onnx", _is_onnx, _onnx)
register_adapter("sklearn", _is_sklearn, _sklearn)
register_adapter("torch", _is_torch, _torch)  # before sklearn/callable: a Module is callable


def wrap(model: Any, **options: Any) -> BlackBox:
    """Wrap a classifier as a :class:`BlackBox`.

    Parameters
    ----------
    model : object
        A fitted scikit-learn classifier, a ``torch.nn.Module``, an ONNX model (path,
        bytes or ``ModelProto``), a ``BlackBox``, or any callable ``X -> probabilities``.
    **options
        Passed to the adapter (e.g. ``classes=``, ``n_features=``, ``outputs="logits"``).

    Returns
    -------
    BlackBox
    """
    if isinstance(model, BlackBox):
        if options:
            raise AdapterError("model is already a BlackBox; options cannot be applied to it.")
        return model
    for _name, predicate, factory in _REGISTRY:
        if predicate(model):
            return factory(model, **options)
    raise AdapterError(
        f"no adapter for {type(model).__name__}; pass a scikit-learn classifier, a torch module, "
        "an ONNX model, a callable X -> probabilities, or register one with "
        "adapters.register_adapter."
    )
