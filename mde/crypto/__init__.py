"""CKKS (TenSEAL): parameters, contexts, slot layouts, sealing, and the encrypted-graph
interpreter of hidden mode. Knows nothing of proxies, files or parties."""

from mde.crypto.params import CKKSParams, Layout, check_params, hidden_params, make_layout

__all__ = ["CKKSParams", "Layout", "check_params", "hidden_params", "make_layout"]
