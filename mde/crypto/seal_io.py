"""SEAL objects that TenSEAL's Python API does not expose: Galois keys for chosen rotations,
the rotations themselves, and raw ciphertexts as bytes (through ``tenseal.sealapi``).

SEAL serializes only to files here, so bytes pass through a private temporary directory.
Every loader validates what it reads against the context (SEAL's own checks) and reports a
crafted or damaged object as the caller's ``MDEError`` subclass.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from mde.errors import MDEError, require

__all__ = [
    "galois_elements",
    "galois_key_bytes",
    "load_galois_keys",
    "rotate_sum_rescale",
    "ciphertext_bytes",
    "load_ciphertext",
    "decrypt_slots",
]


def _sealapi() -> Any:
    require("tenseal")
    import tenseal.sealapi as sealapi

    return sealapi


def _seal_context(ctx: Any) -> Any:
    return ctx.seal_context().data


def galois_elements(poly_modulus_degree: int, steps: list[int]) -> list[int]:
    """SEAL's Galois element of each left rotation step (``3**step mod 2N``)."""
    return [pow(3, step, 2 * poly_modulus_degree) for step in steps]


def _save(obj: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mde-") as tmp:
        path = os.path.join(tmp, "obj")
        obj.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def _load(obj: Any, ctx: Any, data: bytes) -> Any:
    with tempfile.TemporaryDirectory(prefix="mde-") as tmp:
        path = os.path.join(tmp, "obj")
        with open(path, "wb") as fh:
            fh.write(data)
        obj.load(_seal_context(ctx), path)
    return obj


def galois_key_bytes(secret_ctx: Any, steps: list[int]) -> bytes:
    """Galois keys for exactly the rotations ``steps`` (the model owner's secret key), saved
    seeded (half the size: their random halves are expanded from a seed on loading)."""
    sealapi = _sealapi()
    degree = int(_seal_context(secret_ctx).key_context_data().parms().poly_modulus_degree())
    gen = sealapi.KeyGenerator(_seal_context(secret_ctx), secret_ctx.secret_key().data)
    return _save(gen.create_galois_keys(galois_elements(degree, steps)))


def load_galois_keys(ctx: Any, data: bytes, steps: list[int], error: type[MDEError]) -> Any:
    """Load Galois keys and check they hold a key for every one of ``steps``.

    Raises
    ------
    error
        If the bytes are not Galois keys for this context or lack a needed rotation.
    """
    sealapi = _sealapi()
    degree = int(_seal_context(ctx).key_context_data().parms().poly_modulus_degree())
    try:
        keys = _load(sealapi.GaloisKeys(), ctx, data)
        present = [keys.has_key(e) for e in galois_elements(degree, steps)]
    except Exception as exc:  # SEAL raises ValueError/RuntimeError on crafted bytes
        raise error(f"the artifact's Galois keys cannot be loaded for its context: {exc}") from exc
    if not all(present):
        raise error(
            "the artifact's Galois keys lack a rotation its layout needs; it is damaged or was "
            "made by another version."
        )
    return keys


def rotate_sum_rescale(ctx: Any, ct: Any, steps: list[int], keys: Any) -> Any:
    """``ct`` plus its rotations by each step in turn, then rescaled (in place): with steps
    ``L, 2L, ..., S/2`` every slot ends up holding the sum of its position over all segments.
    Rotating before the rescale divides the key-switching noise by the dropped prime."""
    sealapi = _sealapi()
    evaluator = sealapi.Evaluator(_seal_context(ctx))
    for step in steps:
        rotated = sealapi.Ciphertext()
        evaluator.rotate_vector(ct, step, keys, rotated)
        evaluator.add_inplace(ct, rotated)
    evaluator.rescale_to_next_inplace(ct)
    return ct


def ciphertext_bytes(ct: Any) -> bytes:
    """A SEAL ciphertext serialized (SEAL's own compressed format)."""
    return _save(ct)


def load_ciphertext(ctx: Any, data: bytes, scale: float, error: type[MDEError], what: str) -> Any:
    """Load a two-part SEAL ciphertext at exactly ``scale``.

    Raises
    ------
    error
        If the bytes are not a valid ciphertext for ``ctx``, or it has another size or scale.
    """
    sealapi = _sealapi()
    try:
        ct = _load(sealapi.Ciphertext(), ctx, data)
        size, got = int(ct.size()), float(ct.scale)
    except Exception as exc:  # SEAL raises ValueError/RuntimeError on crafted bytes
        raise error(f"{what} cannot be read with this key's context: {exc}") from exc
    if size != 2 or got != scale:
        raise error(
            f"{what} has {size} parts at scale 2**{np.log2(got):.4f}; a sealed score has 2 "
            f"parts at 2**{np.log2(scale):.4f}. It is crafted or corrupt."
        )
    return ct


def decrypt_slots(secret_ctx: Any, ct: Any) -> np.ndarray:
    """The real parts of all slots of ``ct`` under the model owner's secret key."""
    sealapi = _sealapi()
    sc = _seal_context(secret_ctx)
    plain = sealapi.Plaintext()
    sealapi.Decryptor(sc, secret_ctx.secret_key().data).decrypt(ct, plain)
    return np.asarray(sealapi.CKKSEncoder(sc).decode_double(plain), dtype=np.float64)
