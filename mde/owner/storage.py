"""The model owner's private proxy file (secret key inside; never give it away).

A wire envelope of format ``mde-proxy``: the header holds the kind, parameters, fitted
scalars, the session (every exported artifact's secrets, evaluation counts, pending masks)
and the CKKS parameters; the members are one ``.npy`` per learned array (loaded with
``allow_pickle=False``) and the secret CKKS context.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from pydantic import ValidationError

from mde.crypto.context import load_context, secret_context_bytes
from mde.crypto.params import CKKSParams
from mde.errors import InputError, StorageError
from mde.owner.session import Session
from mde.proxies.base import Proxy
from mde.proxies.registry import proxy_class
from mde.wire.envelope import Envelope, read_bytes

__all__ = ["save_proxy_file", "load_proxy_file"]

FORMAT = "mde-proxy"
_SECRET = "context.secret.tenseal"


def save_proxy_file(
    path: str | os.PathLike[str], proxy: Proxy, session: Session, key: tuple[Any, CKKSParams] | None
) -> None:
    """Write the private proxy file atomically, with the secret key if there is one."""
    scalars, arrays = proxy.get_state()
    header = {
        "kind": proxy.kind,
        "params": proxy.get_params(),
        "state": scalars,
        "session": session.model_dump(mode="json"),
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
        Envelope(FORMAT, header, members).write(path)
    except ValueError as exc:  # non-finite or non-JSON parameter values
        raise InputError(
            f"proxy cannot be saved: a parameter or fitted value is not plain JSON ({exc})."
        ) from exc


def load_proxy_file(
    path: str | os.PathLike[str],
) -> tuple[Proxy, Session, tuple[Any, CKKSParams] | None]:
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
        session = Session.model_validate(head["session"])
        proxy = proxy_class(head["kind"]).from_state(head["params"], head["state"], arrays)
        ckks = None if head["ckks"] is None else CKKSParams.model_validate(head["ckks"])
    except (KeyError, TypeError, ValueError, MemoryError, ValidationError, InputError) as exc:
        # MemoryError: a crafted .npy header can announce an array larger than memory
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
    return proxy, session, key
