"""CKKS sealing of scores (TenSEAL): the only cryptography in the sealed-value mode.

The model owner encrypts its value vector ``w`` (scaled to max |w| = 1) under its own key
and publishes the ciphertext with a public context (no secret key). The data owner
multiplies it slot-wise by its plaintext efficacy features, re-randomises the result with
a fresh public-key encryption of zero, and adds a random mask whose slots sum to zero
within each block, so that decryption reveals block sums (scores) and nothing per slot.

Slot layout: every ciphertext reserves its last slot for a *sentinel*, a secret value the
model owner checks on decryption; a ciphertext made under another key decrypts to garbage
there and is refused. With ``m`` features and ``S`` slots, ``m <= S - 1`` gives
``tiles = (S - 1) // m`` blocks per ciphertext; otherwise one block spans
``chunks = ceil(m / (S - 1))`` ciphertexts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mde.errors import SealedScoreError, require

__all__ = ["CKKSParams", "Layout", "make_layout", "make_secret_context", "public_context_bytes",
           "encrypt_values", "seal_blocks", "unseal_blocks"]


class CKKSParams(BaseModel):
    """CKKS parameters (128-bit security for N = 8192 with 160 modulus bits)."""

    model_config = ConfigDict(frozen=True)

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: list[int] = Field(default_factory=lambda: [60, 40, 60])
    global_scale_bits: int = 40
    mask_bound: float = 2.0**14

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2


class Layout(BaseModel):
    """How value vectors and records are packed into ciphertext slots."""

    model_config = ConfigDict(frozen=True)

    dim: int = Field(ge=1)
    slots: int
    tiles: int = Field(ge=1)
    chunks: int = Field(ge=1)

    @property
    def usable(self) -> int:
        return self.slots - 1

    @property
    def sentinel_slot(self) -> int:
        return self.slots - 1


def make_layout(dim: int, params: CKKSParams) -> Layout:
    usable = params.slots - 1
    if dim <= usable:
        return Layout(dim=dim, slots=params.slots, tiles=usable // dim, chunks=1)
    return Layout(dim=dim, slots=params.slots, tiles=1, chunks=math.ceil(dim / usable))


def make_secret_context(params: CKKSParams) -> Any:
    """A fresh CKKS context holding a secret key (the model owner's)."""
    ts = require("tenseal")
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree, coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes)
    )
    ctx.global_scale = 2.0**params.global_scale_bits
    return ctx


def public_context_bytes(ctx: Any) -> bytes:
    """Serialize the public part of a context: public key only, no secret, relin or Galois keys."""
    return ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )


def _chunk_slices(layout: Layout) -> list[slice]:
    return [slice(c * layout.usable, min((c + 1) * layout.usable, layout.dim)) for c in range(layout.chunks)]


def encrypt_values(ctx: Any, w_scaled: np.ndarray, layout: Layout, sentinel: float) -> list[bytes]:
    """Encrypt ``w_scaled`` tiled per ``layout``; one serialized ciphertext per chunk."""
    ts = require("tenseal")
    out = []
    for sl in _chunk_slices(layout):
        vec = np.zeros(layout.slots)
        part = w_scaled[sl]
        for t in range(layout.tiles):
            vec[t * len(part) : (t + 1) * len(part)] = part
        vec[layout.sentinel_slot] = sentinel
        out.append(ts.ckks_vector(ctx, vec.tolist()).serialize())
    return out


def _blocks_to_plain(
    blocks: np.ndarray, layout: Layout, rng: np.random.Generator, mask_bound: float
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (chunk, plaintext, mask) per ciphertext for up to ``tiles`` blocks."""
    nb = blocks.shape[0]
    masks = rng.uniform(-mask_bound, mask_bound, size=blocks.shape)
    masks -= masks.mean(axis=1, keepdims=True)  # each block's mask sums to zero
    for c, sl in enumerate(_chunk_slices(layout)):
        width = sl.stop - sl.start
        plain = np.zeros(layout.slots)
        mask = np.zeros(layout.slots)
        for t in range(nb):
            plain[t * width : (t + 1) * width] = blocks[t, sl]
            mask[t * width : (t + 1) * width] = masks[t, sl]
        plain[layout.sentinel_slot] = 1.0
        yield c, plain, mask


def seal_blocks(
    public_ctx: Any,
    enc_w: list[Any],
    blocks: np.ndarray,
    layout: Layout,
    rng: np.random.Generator,
    mask_bound: float,
) -> list[bytes]:
    """Data owner: seal blocks (rows of ``blocks``, each of length ``dim``).

    Returns ``ceil(n_blocks / tiles) * chunks`` serialized ciphertexts.
    """
    ts = require("tenseal")
    out: list[bytes] = []
    for start in range(0, blocks.shape[0], layout.tiles):
        group = blocks[start : start + layout.tiles]
        for c, plain, mask in _blocks_to_plain(group, layout, rng, mask_bound):
            fresh_zero = ts.ckks_vector(public_ctx, [0.0] * layout.slots)  # public-key re-randomisation
            ct = (enc_w[c] + fresh_zero) * plain.tolist()
            ct = ct + mask.tolist()
            out.append(ct.serialize())
    return out


def unseal_blocks(
    secret_ctx: Any, ciphertexts: list[bytes], layout: Layout, n_blocks: int, sentinel: float
) -> np.ndarray:
    """Model owner: decrypt and return the sum of each block (length ``n_blocks``)."""
    ts = require("tenseal")
    per_ct = layout.tiles
    expected = math.ceil(n_blocks / per_ct) * layout.chunks
    if len(ciphertexts) != expected:
        raise SealedScoreError(
            f"sealed score holds {len(ciphertexts)} ciphertexts; {expected} expected for {n_blocks} blocks."
        )
    sums = np.zeros(n_blocks)
    slices = _chunk_slices(layout)
    for i, blob in enumerate(ciphertexts):
        group, c = divmod(i, layout.chunks)
        try:
            vec = np.asarray(ts.ckks_vector_from(secret_ctx, blob).decrypt())
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError on foreign data
            raise SealedScoreError(
                f"ciphertext {i} cannot be read with this proxy's key ({exc}); "
                "it was made for another artifact or context."
            ) from exc
        if vec.shape[0] < layout.slots or not abs(vec[layout.sentinel_slot] - sentinel) < 1e-3:
            raise SealedScoreError(
                "sealed score does not decrypt under this proxy's key (sentinel check failed): "
                "it was made against another artifact's public context, or it is corrupt."
            )
        width = slices[c].stop - slices[c].start
        first = group * per_ct
        for t in range(min(per_ct, n_blocks - first)):
            sums[first + t] += vec[t * width : (t + 1) * width].sum()
    return sums
