"""The segment sum inside the sealed ciphertext: whatever a buyer puts in Enc(w), decryption
shows one number per record (the same in every segment) and nothing per feature; a seller
needs exactly the layout's Galois keys."""

from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts

from mde.crypto.context import new_context, public_context_bytes
from mde.crypto.flooding import context_primes
from mde.crypto.params import CKKSParams, galois_steps, make_layout
from mde.crypto.seal_io import decrypt_slots, galois_key_bytes, load_ciphertext, load_galois_keys
from mde.crypto.sealing import _grid, seal_blocks
from mde.errors import ArtifactError, SealedScoreError

M = 170


@pytest.fixture(scope="module")
def keys():
    params = CKKSParams()
    ctx = new_context(params)
    public = ts.context_from(public_context_bytes(ctx))
    layout = make_layout(M, params)
    gk = load_galois_keys(public, galois_key_bytes(ctx, layout.steps), layout.steps, ArtifactError)
    return params, ctx, public, layout, gk


def _view(ctx, blob: bytes, layout) -> np.ndarray:
    scale = float(ctx.global_scale) ** 2 / context_primes(ctx)[-2]
    ct = load_ciphertext(ctx, blob, scale, SealedScoreError, "ct")
    # the seller adds the conjugate: twice the real part (a crafted imaginary part is lost)
    return decrypt_slots(ctx, ct).reshape(layout.segments, layout.segment) / 2.0


def test_a_crafted_value_grid_shows_one_linear_functional_per_record(keys):
    """The buyer encrypts a different huge value in every slot (not a replicated w): each
    record position still decrypts to sum_slots(grid * psi), identical in all segments."""
    params, ctx, public, layout, gk = keys
    rng = np.random.default_rng(0)
    crafted = rng.uniform(-(2.0**10), 2.0**10, (layout.chunks, layout.segments, layout.segment))
    enc = [
        ts.ckks_vector_from(public, ts.ckks_vector(ctx, g.ravel().tolist()).serialize())
        for g in crafted
    ]
    psi = rng.normal(size=(layout.tiles, M))
    [blob] = seal_blocks(public, enc, gk, psi, layout, params)
    view = _view(ctx, blob, layout)
    plains = np.array([_grid(layout, c, psi.T) for c in range(layout.chunks)])
    functional = (crafted * plains).sum(axis=(0, 1))[: layout.tiles]  # one number per record
    expected = np.broadcast_to(functional, (layout.segments, layout.tiles))
    np.testing.assert_allclose(view[:, : layout.tiles], expected, rtol=1e-9, atol=1e-4)
    # what the old slot-wise sealing showed (every product) is not in the view
    assert not np.allclose(view[:, 0], (crafted * plains).sum(axis=0)[:, 0], atol=1.0)


def test_missing_or_foreign_galois_keys_are_refused(keys, tmp_path):
    import tenseal.sealapi as sealapi

    params, ctx, public, layout, _ = keys
    partial = galois_key_bytes(ctx, layout.steps[:-1])
    with pytest.raises(ArtifactError, match="lack a rotation"):
        load_galois_keys(public, partial, layout.steps, ArtifactError)
    # rotations without the conjugation key (which drops a buyer's imaginary slot values)
    sc = ctx.seal_context().data
    gen = sealapi.KeyGenerator(sc, ctx.secret_key().data)
    n2 = 2 * params.poly_modulus_degree
    gen.create_galois_keys([pow(3, s, n2) for s in layout.steps]).save(str(tmp_path / "g"))
    no_conj = (tmp_path / "g").read_bytes()
    with pytest.raises(ArtifactError, match="lack a rotation"):
        load_galois_keys(public, no_conj, layout.steps, ArtifactError)
    for junk in (b"", b"\0" * 64, partial[:1000], partial[:-7]):
        with pytest.raises(ArtifactError, match="cannot be loaded"):
            load_galois_keys(public, junk, layout.steps, ArtifactError)
    other = new_context(CKKSParams(coeff_mod_bit_sizes=[60, 40, 40, 60]))  # another modulus
    with pytest.raises(ArtifactError):
        load_galois_keys(public, galois_key_bytes(other, layout.steps), layout.steps, ArtifactError)


def test_a_ciphertext_at_another_scale_or_of_three_parts_is_refused(keys):
    params, ctx, public, layout, gk = keys
    fresh = ts.ckks_vector(public, [1.0] * layout.slots)  # scale 2**40, never rescaled
    from mde.crypto.seal_io import ciphertext_bytes

    scale = float(ctx.global_scale) ** 2 / context_primes(ctx)[-2]
    with pytest.raises(SealedScoreError, match="parts at scale"):
        load_ciphertext(ctx, ciphertext_bytes(fresh.ciphertext()[0]), scale, SealedScoreError, "c")


def test_pairwise_and_value_layouts_share_their_rotations():
    params = CKKSParams()
    values, pairwise = make_layout(M, params), make_layout(M * (M + 1) // 2, params, False)
    assert (values.segment, values.chunks, pairwise.segment, pairwise.chunks) == (64, 3, 4, 15)
    assert set(values.steps) <= set(pairwise.steps)
    assert galois_steps(values, pairwise) == [4 << t for t in range(10)]
