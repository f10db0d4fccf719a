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

from mde.crypto.context import context_matches
from mde.crypto.flooding import context_primes
from mde.crypto.params import CKKSParams
from mde.errors import MDEError, require

__all__ = [
    "galois_elements",
    "galois_key_bytes",
    "load_galois_keys",
    "rotate_sum_rescale",
    "ciphertext_bytes",
    "load_ciphertext",
    "check_ciphertext",
    "check_artifact_encryptions",
    "decrypt_slots",
]


def _sealapi() -> Any:
    require("tenseal")
    import tenseal.sealapi as sealapi

    return sealapi


def _seal_context(ctx: Any) -> Any:
    return ctx.seal_context().data


def galois_elements(poly_modulus_degree: int, steps: list[int]) -> list[int]:
    """SEAL's Galois elements of the left rotations ``steps`` (``3**step mod 2N``), then
    complex conjugation (``2N - 1``), which keeps only the real part of each slot."""
    n2 = 2 * poly_modulus_degree
    return [pow(3, step, n2) for step in steps] + [n2 - 1]


def _degree(ctx: Any) -> int:
    return int(_seal_context(ctx).key_context_data().parms().poly_modulus_degree())


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
    degree = _degree(secret_ctx)
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
    degree = _degree(ctx)
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
    """``ct`` plus its complex conjugate (twice the real part: a buyer's imaginary slot
    values carry nothing), plus its rotations by each step in turn, then rescaled (in
    place): with steps ``L, 2L, ..., S/2`` every slot ends up holding twice the sum of its
    position over all segments. Key switching before the rescale divides its noise by the
    dropped prime."""
    sealapi = _sealapi()
    evaluator = sealapi.Evaluator(_seal_context(ctx))
    conj = sealapi.Ciphertext()
    evaluator.complex_conjugate(ct, keys, conj)
    evaluator.add_inplace(ct, conj)
    for step in steps:
        rotated = sealapi.Ciphertext()
        evaluator.rotate_vector(ct, step, keys, rotated)
        evaluator.add_inplace(ct, rotated)
    evaluator.rescale_to_next_inplace(ct)
    return ct


def ciphertext_bytes(ct: Any) -> bytes:
    """A SEAL ciphertext serialized (SEAL's own compressed format)."""
    return _save(ct)


def check_ciphertext(
    ctx: Any, ct: Any, scale: float, last_level: bool, error: type[MDEError], what: str
) -> None:
    """Require a two-part NTT-form ciphertext at exactly ``scale`` and at the context's
    first data level (a fresh encryption) or last one (a rescaled product).

    Raises
    ------
    error
        If it has another size, form, scale or level.
    """
    sc = _seal_context(ctx)
    level = sc.last_parms_id() if last_level else sc.first_parms_id()
    got = float(ct.scale)
    if not (
        int(ct.size()) == 2
        and bool(ct.is_ntt_form())
        and got == scale
        and list(ct.parms_id()) == list(level)
    ):
        raise error(
            f"{what} has {int(ct.size())} parts at scale 2**{np.log2(max(got, 1e-300)):.4f}; "
            f"it should have 2 parts in NTT form at 2**{np.log2(scale):.4f}, at the "
            f"{'last' if last_level else 'first'} level. It is crafted or corrupt."
        )


def check_artifact_encryptions(
    ctx: Any, params: CKKSParams, vectors: list[Any], error: type[MDEError]
) -> None:
    """Require the context to be SEAL's for ``params`` (ring, primes, scale, slot count) and
    every TenSEAL vector of ``vectors`` to be one fresh ciphertext of it: a context of
    another ring than the manifest declares would turn the segment sum into partial sums,
    another level or scale would fail mid-score.

    Raises
    ------
    error
        If the context or a ciphertext is not the one declared.
    """
    sealapi = _sealapi()
    try:
        sizes = [q.bit_length() for q in context_primes(ctx)]
    except MDEError as exc:
        raise error(f"the artifact's CKKS context is not SEAL's for its parameters: {exc}") from exc
    count = int(sealapi.CKKSEncoder(_seal_context(ctx)).slot_count())
    if (
        not context_matches(ctx, params)
        or count != params.slots
        or sizes != list(params.coeff_mod_bit_sizes)
    ):
        raise error(
            f"the artifact's CKKS context ({count} slots, primes of {sizes} bits) is not the one "
            "its manifest declares "
            f"(N = {params.poly_modulus_degree}, {params.coeff_mod_bit_sizes}). It is crafted."
        )
    for i, v in enumerate(vectors):
        cts = v.ciphertext()
        if v.size() != params.slots or len(cts) != 1:
            raise error(f"the artifact's encrypted vector {i} is not one full ciphertext.")
        scale = float(2**params.global_scale_bits)
        check_ciphertext(ctx, cts[0], scale, False, error, f"encrypted vector {i}")


def load_ciphertext(ctx: Any, data: bytes, scale: float, error: type[MDEError], what: str) -> Any:
    """Load a rescaled two-part SEAL ciphertext at exactly ``scale`` (:func:`check_ciphertext`).

    Raises
    ------
    error
        If the bytes are not a valid ciphertext for ``ctx``, or it has another size, form,
        scale or level.
    """
    sealapi = _sealapi()
    try:
        ct = _load(sealapi.Ciphertext(), ctx, data)
    except Exception as exc:  # SEAL raises ValueError/RuntimeError on crafted bytes
        raise error(f"{what} cannot be read with this key's context: {exc}") from exc
    check_ciphertext(ctx, ct, scale, True, error, what)
    return ct


def decrypt_slots(secret_ctx: Any, ct: Any) -> np.ndarray:
    """The real parts of all slots of ``ct`` under the model owner's secret key."""
    sealapi = _sealapi()
    sc = _seal_context(secret_ctx)
    plain = sealapi.Plaintext()
    sealapi.Decryptor(sc, secret_ctx.secret_key().data).decrypt(ct, plain)
    return np.asarray(sealapi.CKKSEncoder(sc).decode_double(plain), dtype=np.float64)
