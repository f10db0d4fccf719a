"""The model owner's estimators: proxies of a black box, their registry and calibration.

Nothing here knows CKKS, files or sessions. Importing the package registers the built-in
kinds (each registers itself in its own module).
"""

from mde.proxies import influence, poly, student, tree  # noqa: F401  (registration)
from mde.proxies.base import CKKSEvaluable, Proxy
from mde.proxies.registry import proxy_class, proxy_kinds, register_proxy

__all__ = ["Proxy", "CKKSEvaluable", "proxy_class", "proxy_kinds", "register_proxy"]
