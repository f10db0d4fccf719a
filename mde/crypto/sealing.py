"""CKKS sealing of scores (TenSEAL and SEAL): the only cryptography in the sealed-value mode.

The model owner encrypts its value vector ``w`` (scaled to max |w| = 1) under its own key
and publishes the ciphertexts with a public context and Galois keys for a few rotations
(no secret key). The data owner multiplies them slot-wise by its plaintext efficacy
features, re-randomised by a fresh public-key encryption of zero, adds the chunks and sums
the segments by rotation (:class:`~mde.crypto.params.Layout`), so that each position of the
one ciphertext it returns holds a whole block sum (a record's score, or the total) in every
segment. Decryption shows block sums only: however ``w`` is crafted, nothing per feature
(an earlier version summed after decryption and hid slots with additive masks, which a
``w`` scaled far above 1 read through).

Reserved positions of every segment (the model owner sets them in each chunk, so that they
sum to the value below; the data owner multiplies them by 1 and by the header's code):

- *sentinel* (last): a secret value. A ciphertext made under another key decrypts to
  garbage there and is refused instead of producing a wrong price.
- *meta* (second to last): a second secret value times a small integer code that binds
  the ciphertext to the sealed score's header: ``-(records in this ciphertext)`` for
  per-record scores, ``e + 1`` for a total sealed as ``sum(psi) / 2**e``.

Rotations are by multiples of the segment length only, so no data position can reach a
reserved one. They run before the one rescale (by SEAL, which keeps the exact scale
``2**80 / q``, so no scale bias), which divides their key-switching noise by ``q``. Each
block sum is flooded
with Gaussian noise of its block kind's sigma (:func:`~mde.crypto.flooding.flood_sigmas`)
before it leaves :func:`unseal_blocks`, so no exact decryption is ever shown to the party
that made the ciphertext (Li and Micciancio's attack on CKKS).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mde.crypto.flooding import context_primes
from mde.crypto.params import CKKSParams, Layout
from mde.crypto.seal_io import (
    ciphertext_bytes,
    decrypt_slots,
    load_ciphertext,
    rotate_sum_rescale,
)
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


MAX_CHUNKS = 150  # ciphertexts per value vector (the artifact's size)
SEGMENT_TOLERANCE = 1e-3  # without an error bound (records from before per-block flooding)
ERROR_MARGIN = 4.0  # honest segments, sentinel and meta agree within ~0.3 error bounds


def _grid(layout: Layout, chunk: int, values: np.ndarray) -> np.ndarray:
    """(segments, segment) grid of chunk ``chunk``: ``values`` is (dim, positions)."""
    grid = np.zeros((layout.segments, layout.segment))
    start = chunk * layout.segments
    part = values[start : start + layout.segments]
    grid[: part.shape[0], : part.shape[1]] = part
    return grid


def encrypt_values(
    ctx: Any, w_scaled: np.ndarray, layout: Layout, sentinel: float, meta_key: float
) -> list[bytes]:
    """Encrypt ``w_scaled`` per ``layout``; one serialized ciphertext per chunk."""
    ts = require("tenseal")
    if layout.chunks > MAX_CHUNKS:
        raise InputError(
            f"{layout.chunks} ciphertexts per value vector is more than {MAX_CHUNKS}; "
            "use a larger ring (poly_modulus_degree) or a smaller proxy."
        )
    share = 1.0 / (layout.segments * layout.chunks)  # reserved positions sum to the secrets
    out = []
    for c in range(layout.chunks):
        grid = _grid(layout, c, np.repeat(w_scaled[:, None], layout.tiles, axis=1))
        grid[:, layout.meta_pos] = meta_key * share
        grid[:, layout.sentinel_pos] = sentinel * share
        out.append(ts.ckks_vector(ctx, grid.ravel().tolist()).serialize())
    return out


def seal_blocks(
    public_ctx: Any,
    enc_w: list[Any],
    galois_keys: Any,
    blocks: np.ndarray,
    layout: Layout,
    params: CKKSParams,
    aggregate_exp: int | None = None,
    norm_bound: float | None = None,
) -> list[bytes]:
    """Data owner: seal blocks (rows of ``blocks``, each of length ``dim``).

    ``aggregate_exp`` is e for a total sealed as ``sum(psi) / 2**e`` (one block); None for
    per-record blocks. ``norm_bound`` is the public bound on a block's L2 norm that the
    model owner's flooding assumes (:func:`~mde.crypto.flooding.norm_bounds`: ``.values``,
    or ``.pairwise`` for the pairwise block); None checks only the CKKS capacity. Returns
    ``ceil(n_blocks / tiles)`` serialized SEAL ciphertexts.

    Raises
    ------
    InputError
        If a block's values exceed what the CKKS parameters can hold, or its norm exceeds
        ``norm_bound`` (records far outside the range the proxy was built on).
    """
    require("tenseal")
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
    rescale = public_ctx.auto_rescale
    public_ctx.auto_rescale = False  # products stay at scale 2**80 until after the rotations
    try:
        for start in range(0, blocks.shape[0], layout.tiles):
            out.append(
                _seal_group(
                    public_ctx,
                    enc_w,
                    galois_keys,
                    blocks[start : start + layout.tiles],
                    layout,
                    aggregate_exp,
                )
            )
    finally:
        public_ctx.auto_rescale = rescale
    return out


def _seal_group(
    public_ctx: Any,
    enc_w: list[Any],
    galois_keys: Any,
    group: np.ndarray,
    layout: Layout,
    aggregate_exp: int | None,
) -> bytes:
    ts = require("tenseal")
    code = float(aggregate_exp + 1) if aggregate_exp is not None else -float(len(group))
    acc = None
    for c in range(layout.chunks):
        plain = _grid(layout, c, group.T)
        plain[:, layout.meta_pos] = code
        plain[:, layout.sentinel_pos] = 1.0
        fresh_zero = ts.ckks_vector(public_ctx, [0.0] * layout.slots)  # re-randomisation
        product = (enc_w[c] + fresh_zero) * plain.ravel().tolist()
        acc = product if acc is None else acc + product
    assert acc is not None  # layout.chunks >= 1
    ct = rotate_sum_rescale(public_ctx, acc.ciphertext()[0], layout.steps, galois_keys)
    return ciphertext_bytes(ct)


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
    *,
    error_bound: float | None = None,
    max_abs: float | None = None,
) -> np.ndarray:
    """Model owner: decrypt, check the segment sum, sentinel and meta codes against the
    header, and return the flooded sum of each block (scaled units; one block for a total).
    ``flood_sigma`` is the sigma of this block kind (``flood_sigmas(...).values`` for Enc(w)
    blocks, ``.pairwise`` for the pairwise block), ``error_bound`` its CKKS error bound
    (``.values_bound``, ``.pairwise_bound``): segments, sentinel and meta must agree within
    ``ERROR_MARGIN`` of it, so an accepted ciphertext carries no larger error than the
    flooding covers. ``max_abs`` bounds every block sum (``|w| * norm bound``: the data owner
    enforces the norm bound). ``exponent`` is the e a total was sealed with, by default
    :func:`aggregate_exponent` of ``n_records``.

    Raises
    ------
    SealedScoreError
        If a ciphertext was made under another key, does not match the header, or holds a
        block sum beyond ``max_abs``.
    """
    rng = rng or np.random.default_rng()
    n_blocks = n_records if per_record else 1
    expected = math.ceil(n_blocks / layout.tiles)
    if len(ciphertexts) != expected:
        raise SealedScoreError(
            f"sealed score holds {len(ciphertexts)} ciphertexts; {expected} expected for its "
            "header "
            f"({n_records} records, {'per record' if per_record else 'total'})."
        )
    want_exp = aggregate_exponent(n_records) if exponent is None else exponent
    scale = float(secret_ctx.global_scale) ** 2 / context_primes(secret_ctx)[-2]  # SEAL's, exact
    tol = SEGMENT_TOLERANCE if error_bound is None else ERROR_MARGIN * error_bound
    sums = np.zeros(n_blocks)
    for i, blob in enumerate(ciphertexts):
        ct = load_ciphertext(secret_ctx, blob, scale, SealedScoreError, f"ciphertext {i}")
        try:  # the conjugate sum doubled every value
            grid = decrypt_slots(secret_ctx, ct)[: layout.slots] / 2.0
            grid = grid.reshape(layout.segments, layout.segment)
        except Exception as exc:  # SEAL raises ValueError on a crafted ciphertext
            raise SealedScoreError(f"ciphertext {i} does not decrypt: {exc}") from exc
        spread = float(np.max(np.abs(grid - grid[0]))) if np.all(np.isfinite(grid)) else np.inf
        # the reserved positions hold 1 and the code in every one of the ``width`` slot
        # products: their error grows with sqrt(width) and the code
        reserved = tol * math.sqrt(layout.width)
        if not (spread < tol and abs(grid[0, layout.sentinel_pos] - sentinel) < reserved):
            raise SealedScoreError(
                "sealed score does not decrypt under this proxy's key (sentinel or segment "
                "check failed): it was made against another artifact's public context, its "
                "ciphertexts were reordered, or it is corrupt."
            )
        first = i * layout.tiles
        in_ct = min(layout.tiles, n_blocks - first)
        want = -in_ct if per_record else want_exp + 1
        if not abs(grid[0, layout.meta_pos] - want * meta_key) < reserved * max(1.0, abs(want)):
            raise SealedScoreError(
                "sealed score header does not match its ciphertexts (record count or mode was "
                "altered after sealing); refusing it."
            )
        sums[first : first + in_ct] = grid[0, :in_ct]
    if max_abs is not None and np.any(np.abs(sums) > max_abs):
        raise SealedScoreError(
            f"a block sum reaches {np.max(np.abs(sums)):.3g}, beyond {max_abs:.3g} (the value "
            "vector's norm times the public norm bound the data owner enforces): the score was "
            "altered or its records lie outside the bound. Refusing it."
        )
    return sums + rng.normal(0.0, flood_sigma, size=n_blocks)
