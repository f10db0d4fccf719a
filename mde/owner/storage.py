"""The model owner's private proxy file (``w`` inside; never give it away).

A wire envelope of format ``mde-proxy``: the header holds the proxy's id, kind, parameters,
fitted scalars and the CKKS parameters; the members are one ``.npy`` per learned array
(loaded with ``allow_pickle=False``) and the secret CKKS context. The session (exported
artifacts' secrets, evaluations, pending masks) lives in the owner's ledger, keyed by the
proxy's id, so opening a score never rewrites this file.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from mde.crypto.context import load_context, secret_context_bytes
from mde.crypto.params import CKKSParams
from mde.errors import InputError, StorageError
from mde.proxies.base import Proxy
from mde.proxies.registry import proxy_class
from mde.wire.envelope import Envelope, read_bytes

__all__ = ["save_proxy_file", "load_proxy_file"]

FORMAT = "mde-proxy"
_SECRET = "context.secret.tenseal"


def save_proxy_file(
    path: str | os.PathLike[str], proxy: Proxy, proxy_id: str, key: tuple[Any, CKKSParams] | None
) -> None:
    """Write the private proxy file atomically, with the secret key if there is one."""
    scalars, arrays = proxy.get_state()
    header = {
        "kind": proxy.kind,
        "params": proxy.get_params(),
        "state": scalars,
        "proxy_id": proxy_id,
        "ckks": None if key is None else key[1].model_dump(),
    }
    members = {}
    for name, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr), allow_pickle=False)
        members[f"arrays/{name}.npy"] = buf.getvalue()
    if key is not None:
        members[_SECRET] = secret_context_bytes(key[0])
    try:
        Envelope(FORMAT, header, members).write(path, private=True)  # w and the secret key
    except ValueError as exc:  # non-finite or non-JSON parameter values
        raise InputError(
            f"proxy cannot be saved: a parameter or fitted value is not plain JSON ({exc})."
        ) from exc


def load_proxy_file(
    path: str | os.PathLike[str],
) -> tuple[Proxy, str, tuple[Any, CKKSParams] | None]:
    """Read a private proxy file.

    Raises
    ------
    StorageError
        If the file is missing, damaged, of another format version, or inconsistent.
    """
    env = Envelope.from_bytes(read_bytes(path, "proxy", StorageError), FORMAT, StorageError)
    head = env.header
    try:
        arrays = {
            name[len("arrays/") : -len(".npy")]: np.load(io.BytesIO(data), allow_pickle=False)
            for name, data in env.members.items()
            if name.startswith("arrays/")
        }
        proxy_id = head["proxy_id"]
        if not isinstance(proxy_id, str) or not 8 <= len(proxy_id) <= 64:
            raise ValueError(f"proxy_id must be a string id; got {proxy_id!r}")
        proxy = proxy_class(head["kind"]).from_state(head["params"], head["state"], arrays)
        ckks = None if head["ckks"] is None else CKKSParams.model_validate(head["ckks"])
    except Exception as exc:  # numpy, pydantic and the proxy raise many types on crafted files
        # (a cut .npy header raises tokenize errors; a huge announced shape MemoryError)
        raise StorageError(
            f"{os.fspath(path)!r} is not a consistent MDE proxy file: {exc}"
        ) from exc
    key = None
    if (ckks is None) != (_SECRET not in env.members):
        raise StorageError(
            f"{os.fspath(path)!r} has CKKS parameters without a key or a key without parameters."
        )
    if ckks is not None:
        key = (
            load_context(
                env.members[_SECRET], StorageError, public=False, what="the proxy file's secret key"
            ),
            ckks,
        )
    return proxy, proxy_id, key
