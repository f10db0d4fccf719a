"""The model owner's private proxy file (secret key inside; never give it away).

A zip of ``proxy.json`` (kind, parameters, scalars, artifact registry), one ``.npy`` per
learned array (loaded with ``allow_pickle=False``) and the secret CKKS context.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from mde.errors import ArtifactError, require
from mde.proxy import Proxy
from mde.validation import as_native

__all__ = ["save_proxy", "load_proxy", "PROXY_FORMAT_VERSION"]

PROXY_FORMAT_VERSION = 1


def save_proxy(proxy: Proxy, path: str | os.PathLike[str]) -> None:
    """Write the owner's private proxy file, including the secret key if one exists."""
    proxy._check_fitted()
    meta = {
        "format": "mde-proxy",
        "format_version": PROXY_FORMAT_VERSION,
        "kind": proxy.kind,
        "params": proxy.get_params(),
        "classes": [as_native(c) for c in proxy.classes_],
        "n_features_in_": proxy.n_features_in_,
        "feature_names_in_": getattr(proxy, "feature_names_in_", None),
        "n_train_": proxy.n_train_,
        "psi_dim_": proxy.psi_dim_,
        "fidelity_": proxy.fidelity_,
        "build_seconds_": proxy.build_seconds_,
        "extra": proxy._extra_state() if hasattr(proxy, "_extra_state") else {},
        "artifacts_": proxy.artifacts_,
        "calibration_": getattr(proxy, "calibration_", None),
        "opened_": proxy.opened_,
        "ckks": proxy._ckks.model_dump() if proxy._context is not None else None,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("proxy.json", json.dumps(meta, indent=2))
        for name, arr in proxy._state().items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(arr), allow_pickle=False)
            zf.writestr(f"arrays/{name}.npy", buf.getvalue())
        if getattr(proxy, "known_", None) is not None:
            zf.writestr("known.npz", proxy.known_.to_bytes())
        if proxy._context is not None:
            zf.writestr(
                "context.secret.tenseal",
                proxy._context.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False),
            )


def load_proxy(path: str | os.PathLike[str]) -> Proxy:
    """Load a proxy saved with ``proxy.save(path)``.

    Raises
    ------
    ArtifactError
        If the file is not a proxy file of this format version, or is damaged.
    """
    from mde.build import proxy_class
    from mde.membership import MembershipSketch
    from mde.sealing import CKKSParams

    try:
        with zipfile.ZipFile(path) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
        meta = json.loads(files["proxy.json"])
    except FileNotFoundError as exc:
        raise ArtifactError(f"proxy file {os.fspath(path)!r} does not exist.") from exc
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ArtifactError(f"{os.fspath(path)!r} is not a readable MDE proxy file: {exc}") from exc
    if meta.get("format") != "mde-proxy" or meta.get("format_version") != PROXY_FORMAT_VERSION:
        raise ArtifactError(
            f"{os.fspath(path)!r} is not an MDE proxy file of version {PROXY_FORMAT_VERSION}."
        )
    proxy = proxy_class(meta["kind"])(**meta["params"])
    try:
        arrays = {
            name[len("arrays/") : -len(".npy")]: np.load(io.BytesIO(data), allow_pickle=False)
            for name, data in files.items()
            if name.startswith("arrays/")
        }
    except ValueError as exc:
        raise ArtifactError(f"proxy file arrays are damaged: {exc}") from exc
    proxy._set_state(arrays)
    proxy.classes_ = np.asarray(meta["classes"])
    proxy.feature_names_in_ = meta.get("feature_names_in_")
    proxy.calibration_ = meta.get("calibration_")
    for key in ("n_features_in_", "n_train_", "psi_dim_", "fidelity_", "build_seconds_", "artifacts_", "opened_"):
        setattr(proxy, key, meta[key])
    if hasattr(proxy, "_set_extra_state"):
        proxy._set_extra_state(meta.get("extra", {}))
    proxy.known_ = MembershipSketch.from_bytes(files["known.npz"], proxy.n_features_in_) if "known.npz" in files else None
    proxy._context = None
    if "context.secret.tenseal" in files:
        ts = require("tenseal")
        proxy._context = ts.context_from(files["context.secret.tenseal"])
        proxy._ckks = CKKSParams(**meta["ckks"])
    return proxy
