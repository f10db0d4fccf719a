"""The MDE exception family.

Every error MDE raises on bad input, a tampered file or a protocol violation is an
:class:`MDEError`. Subclasses also derive from the matching built-in (``ValueError``,
``ImportError``) so generic handlers keep working.
"""

from __future__ import annotations

from types import ModuleType

__all__ = [
    "ProtocolError",
    "StorageError",
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
    "IdentityError",
    "BudgetError",
]


class MDEError(Exception):
    """Base class of every error raised by MDE."""


class InputError(MDEError, ValueError):
    """Data has the wrong shape, type, or contains NaN/inf, or is empty."""


class LabelError(InputError):
    """A label is not one of the classes the proxy knows."""


class AdapterError(MDEError, TypeError):
    """A model cannot be wrapped, or the wrapped model answered something unusable."""


class NotFittedError(MDEError, AttributeError):
    """A proxy was used before it was built."""


class ArtifactError(MDEError, ValueError):
    """An artifact or proxy file is tampered, truncated, of another version, or mismatched."""


class StorageError(ArtifactError):
    """A file kept by one owner (proxy file, key file) is missing, damaged or of another version."""


class SealedScoreError(MDEError, ValueError):
    """A sealed score is corrupt, or was made for another artifact or key."""


class ProtocolError(MDEError, ValueError):
    """A hidden-mode message is tampered, mismatched, out of order or unsafe."""


class ReplayError(MDEError):
    """A second sealed score for an artifact that allows only one evaluation."""


class DeliveryError(MDEError):
    """Delivered data is not the data that was scored."""


class IdentityError(MDEError, ValueError):
    """A message is unsigned, badly signed, or signed by a key other than the pinned one."""


class BudgetError(MDEError):
    """The data owner's guard refuses an answer past a buyer's budget (artifacts, numbers
    released, privacy loss)."""


class PricingError(MDEError, ValueError):
    """A pricing function cannot price a report (bad parameters or missing scores)."""


class MissingDependencyError(MDEError, ImportError):
    """An optional package is needed for this feature but is not installed."""


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import an optional module lazily, with an install hint if it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        hint = f"pip install 'mde[{extra}]'" if extra else f"pip install {module}"
        if module == "torch":
            hint = "pip install torch==2.13.0  (CPU build; install it before mde[torch])"
        raise MissingDependencyError(
            f"This feature needs the optional package {module!r}, which is not installed. "
            f"Install it with: {hint}"
        ) from exc
