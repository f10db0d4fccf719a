"""CKKS sealing of scores (TenSEAL): the only cryptography in the sealed-value mode.

The model owner encrypts its value vector ``w`` (scaled to max |w| = 1) under its own key
and publishes the ciphertext with a public context (no secret key). The data owner
multiplies it slot-wise by its plaintext efficacy features, re-randomises the result with
a fresh public-key encryption of zero, and adds a random mask whose slots sum to zero
within each block, so that decryption reveals block sums (scores) and nothing per slot.

Slot layout: each ciphertext reserves its last two slots.

- *sentinel* (last slot): a secret value times 1. A ciphertext made under another key
  decrypts to garbage there and is refused instead of producing a wrong price.
- *meta* (second to last): a second secret value times a small integer code that binds
  the ciphertext to the sealed score's header: ``-(records in this ciphertext)`` for
  per-record scores, ``e + 1`` for a total sealed as ``sum(psi) / 2**e``.

With ``m`` features and ``S`` slots, ``m <= S - 2`` gives ``tiles = (S - 2) // m`` blocks
per ciphertext; otherwise one block spans ``chunks = ceil(m / (S - 2))`` ciphertexts.

Decryption removes TenSEAL's scale bias (a product decrypts to ``value * 2**40 / q``;
:func:`~mde.crypto.flooding.rescale_factor`), and each block sum is flooded with Gaussian
noise of its block kind's sigma (:func:`~mde.crypto.flooding.flood_sigmas`: 2**8 times a
6-sigma bound on the block's CKKS error, from public parameters, the layout and a public
bound on |psi|) before it leaves :func:`unseal_blocks`, so no exact decryption is ever
shown to the party that made the ciphertext (Li and Micciancio's attack on CKKS).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mde.crypto.flooding import rescale_factor
from mde.crypto.params import CKKSParams, Layout
from mde.errors import InputError, SealedScoreError, require

__all__ = [
    "encrypt_values",
    "seal_blocks",
    "unseal_blocks",
    "aggregate_exponent",
    "pairwise_values",
    "pairwise_products",
]


def aggregate_exponent(n_records: int) -> int:
    """e such that a total is sealed as ``sum(psi) / 2**e`` (2**(e-1) < n <= 2**e)."""
    return max(0, math.ceil(math.log2(n_records)))


def pairwise_values(Q: np.ndarray) -> np.ndarray:
    """Upper triangle of a symmetric matrix, off-diagonal entries doubled, so that
    ``pairwise_values(Q) @ pairwise_products(s) == s @ Q @ s``."""
    i, j = np.triu_indices(Q.shape[0])
    return Q[i, j] * np.where(i == j, 1.0, 2.0)


def pairwise_products(s: np.ndarray) -> np.ndarray:
    """Products ``s_i s_j`` for ``i <= j`` (the order of :func:`pairwise_values`)."""
    i, j = np.triu_indices(s.shape[0])
    return s[i] * s[j]


# chunk c of a value vector carries sentinel + c * step: a ciphertext moved to another
# chunk's position decrypts to the wrong sentinel (the check's tolerance is step / 5)
SENTINEL_STEP = 5e-3
MAX_CHUNKS = 150  # keeps the w sentinels (from [1, 2)) below the pairwise ones (from [3, 4))


def chunk_sentinel(sentinel: float, chunk: int) -> float:
    """The sentinel value that chunk ``chunk`` of a value vector carries."""
    return sentinel + chunk * SENTINEL_STEP


def _chunk_slices(layout: Layout) -> list[slice]:
    return [
        slice(c * layout.usable, min((c + 1) * layout.usable, layout.dim))
        for c in range(layout.chunks)
    ]


def encrypt_values(
    ctx: Any, w_scaled: np.ndarray, layout: Layout, sentinel: float, meta_key: float
) -> list[bytes]:
    """Encrypt ``w_scaled`` tiled per ``layout``; one serialized ciphertext per chunk."""
    ts = require("tenseal")
    if layout.chunks > MAX_CHUNKS:
        raise InputError(
            f"{layout.chunks} ciphertexts per value vector is more than {MAX_CHUNKS}; "
            "use a larger ring (poly_modulus_degree) or a smaller proxy."
        )
    out = []
    for c, sl in enumerate(_chunk_slices(layout)):
        vec = np.zeros(layout.slots)
        part = w_scaled[sl]
        for t in range(layout.tiles):
            vec[t * len(part) : (t + 1) * len(part)] = part
        vec[layout.sentinel_slot] = chunk_sentinel(sentinel, c)
        vec[layout.meta_slot] = meta_key
        out.append(ts.ckks_vector(ctx, vec.tolist()).serialize())
    return out


def seal_blocks(
    public_ctx: Any,
    enc_w: list[Any],
    blocks: np.ndarray,
    layout: Layout,
    rng: np.random.Generator,
    params: CKKSParams,
    aggregate_exp: int | None = None,
    norm_bound: float | None = None,
) -> list[bytes]:
    """Data owner: seal blocks (rows of ``blocks``, each of length ``dim``).

    ``aggregate_exp`` is e for a total sealed as ``sum(psi) / 2**e`` (one block); None for
    per-record blocks. ``norm_bound`` is the public bound on a block's L2 norm that the
    model owner's flooding assumes (:func:`~mde.crypto.flooding.norm_bounds`: ``.values``,
    or ``.pairwise`` for the pairwise block); None checks only the CKKS capacity. Returns
    ``ceil(n_blocks / tiles) * chunks`` serialized ciphertexts.

    Raises
    ------
    InputError
        If a block's values exceed what the CKKS parameters can hold, or its norm exceeds
        ``norm_bound`` (records far outside the range the proxy was built on).
    """
    ts = require("tenseal")
    peak = float(np.max(np.abs(blocks))) if blocks.size else 0.0
    if not np.isfinite(peak) or peak > params.capacity / 8:
        raise InputError(
            f"efficacy features reach {peak:.3g}, beyond what the CKKS parameters hold "
            f"({params.capacity / 8:g}); the records lie far outside the range the proxy was built "
            "on."
        )
    norm = float(np.max(np.linalg.norm(blocks, axis=1))) if blocks.size else 0.0
    if norm_bound is not None and not norm <= norm_bound * (1.0 + 1e-12):
        raise InputError(
            f"a block of efficacy features has L2 norm {norm:.3g}, beyond the artifact's bound "
            f"{norm_bound:.3g} (the flooding noise covers the CKKS error up to it); the "
            "records lie far outside the range the proxy was built on."
        )
    out: list[bytes] = []
    slices = _chunk_slices(layout)
    for start in range(0, blocks.shape[0], layout.tiles):
        group = blocks[start : start + layout.tiles]
        masks = rng.uniform(-params.mask_bound, params.mask_bound, size=group.shape)
        masks -= masks.mean(axis=1, keepdims=True)  # each block's mask sums to zero
        code = float(aggregate_exp + 1) if aggregate_exp is not None else -float(len(group))
        for c, sl in enumerate(slices):
            width = sl.stop - sl.start
            plain = np.zeros(layout.slots)
            mask = np.zeros(layout.slots)
            plain[: len(group) * width] = group[:, sl].ravel()
            mask[: len(group) * width] = masks[:, sl].ravel()
            plain[layout.sentinel_slot] = 1.0
            plain[layout.meta_slot] = code
            fresh_zero = ts.ckks_vector(
                public_ctx, [0.0] * layout.slots
            )  # public-key re-randomisation
            ct = (enc_w[c] + fresh_zero) * plain.tolist()
            out.append((ct + mask.tolist()).serialize())
    return out


def unseal_blocks(
    secret_ctx: Any,
    ciphertexts: list[bytes],
    layout: Layout,
    n_records: int,
    per_record: bool,
    sentinel: float,
    meta_key: float,
    flood_sigma: float,
    rng: np.random.Generator | None = None,
    exponent: int | None = None,
) -> np.ndarray:
    """Model owner: decrypt, remove the scale bias, check sentinel and meta codes against the
    header, and return the flooded sum of each block (scaled units; one block for a total).
    ``flood_sigma`` is the sigma of this block kind (``flood_sigmas(...).values`` for Enc(w)
    blocks, ``.pairwise`` for the pairwise block). ``exponent`` is the e a total was sealed
    with, by default :func:`aggregate_exponent` of ``n_records``.

    Raises
    ------
    SealedScoreError
        If a ciphertext was made under another key, or does not match the header.
    """
    ts = require("tenseal")
    rng = rng or np.random.default_rng()
    n_blocks = n_records if per_record else 1
    expected = math.ceil(n_blocks / layout.tiles) * layout.chunks
    if len(ciphertexts) != expected:
        raise SealedScoreError(
            f"sealed score holds {len(ciphertexts)} ciphertexts; {expected} expected for its "
            "header "
            f"({n_records} records, {'per record' if per_record else 'total'})."
        )
    want_exp = aggregate_exponent(n_records) if exponent is None else exponent
    unbias = 1.0 / rescale_factor(secret_ctx)  # TenSEAL records 2**40, not 2**80 / q
    sums = np.zeros(n_blocks)
    slices = _chunk_slices(layout)
    for i, blob in enumerate(ciphertexts):
        group, c = divmod(i, layout.chunks)
        try:
            vec = np.asarray(ts.ckks_vector_from(secret_ctx, blob).decrypt()) * unbias
        except Exception as exc:  # TenSEAL raises ValueError/RuntimeError on foreign data
            raise SealedScoreError(
                f"ciphertext {i} cannot be read with this proxy's key ({exc}); "
                "it was made for another artifact or context."
            ) from exc
        if (
            vec.shape[0] < layout.slots
            or not abs(vec[layout.sentinel_slot] - chunk_sentinel(sentinel, c)) < SENTINEL_STEP / 5
        ):
            raise SealedScoreError(
                "sealed score does not decrypt under this proxy's key (sentinel check failed): "
                "it was made against another artifact's public context, its ciphertexts were "
                "reordered, or it is corrupt."
            )
        code = vec[layout.meta_slot] / meta_key
        first = group * layout.tiles
        in_ct = min(layout.tiles, n_blocks - first)
        want = -in_ct if per_record else want_exp + 1
        if not abs(code - want) < 0.25:
            raise SealedScoreError(
                "sealed score header does not match its ciphertexts (record count or mode was "
                "altered after sealing); refusing it."
            )
        width = slices[c].stop - slices[c].start
        sums[first : first + in_ct] += vec[: in_ct * width].reshape(in_ct, width).sum(axis=1)
    return sums + rng.normal(0.0, flood_sigma, size=n_blocks)
