"""CKKS contexts (TenSEAL): the one factory both owners use, and the checks on a context
received from the other party."""

from __future__ import annotations

from typing import Any

from mde.crypto.params import CKKSParams, check_params
from mde.errors import InputError, MDEError, require

__all__ = [
    "new_context",
    "public_context_bytes",
    "secret_context_bytes",
    "load_context",
    "context_matches",
]


def new_context(params: CKKSParams, *, symmetric: bool = False) -> Any:
    """A fresh CKKS context holding a secret key.

    ``symmetric=False`` (the model owner's sealed-value key): public-key encryption, so data
    owners can re-randomise under the published public key. ``symmetric=True`` (the data
    owner's hidden-mode key): symmetric encryption with relinearisation keys, since the
    model owner multiplies ciphertexts but never encrypts.
    """
    problem = check_params(params)
    if problem:
        raise InputError(f"bad CKKS parameters: {problem}")
    ts = require("tenseal")
    kind = ts.ENCRYPTION_TYPE.SYMMETRIC if symmetric else ts.ENCRYPTION_TYPE.ASYMMETRIC
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        encryption_type=kind,
    )
    ctx.global_scale = 2.0**params.global_scale_bits
    if symmetric:
        ctx.generate_relin_keys()
    return ctx


def public_context_bytes(ctx: Any, *, relin_keys: bool = False) -> bytes:
    """Serialize the public part of a context: the public key (asymmetric contexts) or the
    relinearisation keys (``relin_keys=True``); never the secret key or Galois keys."""
    return bytes(
        ctx.serialize(
            save_public_key=not relin_keys,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=relin_keys,
        )
    )


def secret_context_bytes(ctx: Any) -> bytes:
    """Serialize a context with its secret key (for the owner's own private file only)."""
    return bytes(
        ctx.serialize(
            save_public_key=True,
            save_secret_key=True,
            save_galois_keys=False,
            save_relin_keys=False,
        )
    )


def load_context(
    data: bytes, error: type[MDEError], *, public: bool, what: str = "CKKS context"
) -> Any:
    """Load a serialized context; with ``public=True`` refuse one that holds a secret key.

    Raises
    ------
    error
        If the bytes do not load as a TenSEAL context, or a public one holds a secret key.
    """
    ts = require("tenseal")
    try:
        ctx = ts.context_from(data)
    except Exception as exc:  # TenSEAL raises bare exceptions on crafted bytes
        raise error(f"{what} cannot be loaded: {exc}") from exc
    if public and ctx.is_private():
        raise error(
            f"{what} holds a secret key, so anyone could decrypt with it; refusing it. "
            "The other party must send a public context."
        )
    return ctx


def context_matches(ctx: Any, params: CKKSParams) -> bool:
    """Whether a context has the ring degree, modulus and scale of ``params``."""
    parms = ctx.seal_context().data.key_context_data()
    return bool(
        parms.parms().poly_modulus_degree() == params.poly_modulus_degree
        and parms.total_coeff_modulus_bit_count() == sum(params.coeff_mod_bit_sizes)
        and ctx.global_scale == 2.0**params.global_scale_bits
    )
