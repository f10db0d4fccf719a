"""Flooding of sealed block sums: SEAL's primes and TenSEAL's scale bias, the CKKS error
model of each block kind against constructed worst cases at the public norm bounds, and
the per-block sigmas (seeded records, masks and flooding; CKKS keys are fresh per run, so
the error checks hold with margin: 6-sigma bounds, stds within 25%)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mde.crypto.context import new_context, public_context_bytes
from mde.crypto.flooding import (
    FLOOD_RATIO,
    PAIRWISE_FLOOD_RATIO,
    block_error_bound,
    block_error_std,
    context_primes,
    flood_sigmas,
    lmss_ratio,
    norm_bounds,
    rescale_factor,
    rounding_std,
    security_bits,
)
from mde.crypto.params import CKKSParams, check_params, hidden_params, make_layout
from mde.crypto.seal_io import galois_key_bytes, load_galois_keys
from mde.crypto.sealing import (
    aggregate_exponent,
    encrypt_values,
    pairwise_products,
    seal_blocks,
    unseal_blocks,
)
from mde.errors import ArtifactError, InputError

M = 170  # the influence proxy's psi width on MNIST (16 components, 10 classes)
PSI_CLIP = 4.5


class Keys:
    """A model owner's key, its public context and Enc(v) of one value vector."""

    def __init__(
        self, params: CKKSParams, v: np.ndarray, sentinel: float = 1.5, per_record: bool = True
    ) -> None:
        import tenseal as ts

        self.params, self.v, self.sentinel = params, v, sentinel
        self.ctx = new_context(params)
        self.public = ts.context_from(public_context_bytes(self.ctx))
        self.layout = make_layout(len(v), params, per_record)
        steps = self.layout.steps
        self.keys = load_galois_keys(
            self.public, galois_key_bytes(self.ctx, steps), steps, ArtifactError
        )
        blobs = encrypt_values(self.ctx, v, self.layout, sentinel, 1.25)
        self.enc = [ts.ckks_vector_from(self.public, b) for b in blobs]

    def seal(
        self, blocks: np.ndarray, exp: int | None = None, bound: float | None = None
    ) -> list[bytes]:
        return seal_blocks(
            self.public, self.enc, self.keys, blocks, self.layout, self.params, exp, bound
        )

    def open(
        self, cts: list[bytes], n: int, exp: int | None = None, sigma: float = 0.0, seed: int = 0
    ) -> np.ndarray:
        rng = np.random.default_rng(seed)
        per = exp is None
        return unseal_blocks(
            self.ctx, cts, self.layout, n, per, self.sentinel, 1.25, sigma, rng, exp
        )


def _unit(rng: np.random.Generator, m: int) -> np.ndarray:
    w = rng.uniform(-1.0, 1.0, m)
    return w / np.abs(w).max()


def _rows_at(norm: float, w: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of L2 norm ``norm`` along ``w``: large block sums, so an uncorrected scale bias
    (value * 1.3e-7) would be far beyond the error bound."""
    rows = w / np.linalg.norm(w) + 0.3 * rng.normal(size=(n, len(w))) / math.sqrt(len(w))
    return rows * (norm / np.linalg.norm(rows, axis=1, keepdims=True))


def _random_rows_at(norm: float, m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of L2 norm ``norm`` in random directions (their Enc(w) errors add up differently:
    every block shares the one Enc(w), so aligned rows share most of its error)."""
    rows = rng.normal(size=(n, m))
    return rows * (norm / np.linalg.norm(rows, axis=1, keepdims=True))


@pytest.mark.parametrize("params", [CKKSParams(), hidden_params(2), hidden_params(5)])
def test_primes_are_read_from_the_context_and_match_seal(params):
    ctx = new_context(params)
    primes = context_primes(ctx)
    n = params.poly_modulus_degree
    assert [q.bit_length() for q in primes] == list(params.coeff_mod_bit_sizes)
    assert all(q % (2 * n) == 1 for q in primes)
    assert rescale_factor(ctx) == pytest.approx(2.0**40 / primes[-2], rel=1e-15)


def test_the_default_rescale_biases_products_by_1_3e_minus_7():
    ctx = new_context(CKKSParams())
    assert rescale_factor(ctx) - 1.0 == pytest.approx(1.341e-7, rel=1e-3)
    assert rounding_std(CKKSParams()) == pytest.approx(1.2419e-9, rel=1e-3)


def test_compact_ring_without_room_for_key_switching_is_refused():
    problem = check_params(CKKSParams(poly_modulus_degree=4096, coeff_mod_bit_sizes=[53, 40, 16]))
    assert problem is not None and "special (last) prime" in problem


def test_per_record_blocks_at_the_norm_bound_stay_within_the_error_bound():
    params = CKKSParams()
    rng = np.random.default_rng(0)
    norm = norm_bounds(PSI_CLIP, M).values
    k = Keys(params, _unit(rng, M))
    rows = np.vstack([_random_rows_at(norm, M, 240, rng), _rows_at(norm, k.v, 48, rng)])
    got = k.open(k.seal(rows), len(rows))
    err = got - rows @ k.v  # no scale bias to remove: SEAL rescales with the exact scale
    width = k.layout.width
    assert np.abs(err).max() <= block_error_bound(params, width, norm)
    assert 0.75 <= err[:240].std() / block_error_std(params, width, norm) <= 1.25
    assert abs(err.mean()) < 3 * block_error_std(params, width, norm) / math.sqrt(len(err))


def test_a_total_block_opens_within_its_bound():
    rng = np.random.default_rng(1)
    n = 300
    e = aggregate_exponent(n)
    k = Keys(CKKSParams(), _unit(rng, M))
    psi = _rows_at(norm_bounds(PSI_CLIP, M).values, k.v, n, rng)
    total = psi.sum(axis=0) / 2.0**e  # aligned rows: |total| near the row bound
    got = k.open(k.seal(total[None, :], e), n, e)[0]
    assert abs(got - total @ k.v) <= block_error_bound(
        CKKSParams(), k.layout.width, float(np.linalg.norm(total))
    )


def test_the_pairwise_block_at_its_norm_bound_stays_within_its_bound():
    rng = np.random.default_rng(2)
    params = CKKSParams()
    width = M * (M + 1) // 2  # 14,535 values over 15 chunks
    k = Keys(params, _unit(rng, width), sentinel=3.5, per_record=False)
    norm = norm_bounds(PSI_CLIP, M).pairwise
    blocks = []
    for _ in range(3):
        u = _rows_at(math.sqrt(norm), _unit(rng, M), 1, rng)[0]
        blocks.append(pairwise_products(u))
    P = np.array(blocks)
    assert np.allclose(np.linalg.norm(P, axis=1), norm, rtol=0.3)  # |products(u)| ~ |u|^2
    got = np.array([k.open(k.seal(p[None, :], 0), 1, 0)[0] for p in P])  # one total each
    assert np.abs(got - P @ k.v).max() <= block_error_bound(params, k.layout.width, norm)


def test_flood_sigmas_are_the_ratios_times_the_block_bounds():
    params = CKKSParams()
    norms = norm_bounds(PSI_CLIP, M)
    layout, pair = make_layout(M, params), make_layout(M * (M + 1) // 2, params, False)
    assert (layout.width, pair.width) == (192, 15360)
    sig = flood_sigmas(params, layout, norms, pair)
    assert sig.values == FLOOD_RATIO * block_error_bound(params, 192, norms.values)
    assert sig.pairwise == PAIRWISE_FLOOD_RATIO * block_error_bound(params, 15360, norms.pairwise)
    # 256 six-sigma bounds: more than 1,000 error stds even for rows at the norm bound
    assert sig.values >= 1000 * block_error_std(params, 192, norms.values)
    assert sig.values == pytest.approx(4.86e-5, rel=0.02)
    assert sig.pairwise == pytest.approx(1.37e-5, rel=0.02)
    assert flood_sigmas(params, make_layout(M, params), norms).pairwise is None


def test_unseal_adds_exactly_the_given_sigma_to_each_block():
    rng = np.random.default_rng(3)
    k = Keys(CKKSParams(), _unit(rng, M))
    rows = rng.uniform(-3.0, 3.0, (100, M))
    cts = k.seal(rows)
    sigma = flood_sigmas(k.params, k.layout, norm_bounds(PSI_CLIP, M)).values
    plain = k.open(cts, len(rows), sigma=0.0, seed=7)
    flooded = k.open(cts, len(rows), sigma=sigma, seed=7)
    noise = np.random.default_rng(7).normal(0.0, sigma, len(rows))
    np.testing.assert_allclose(flooded - plain, noise, rtol=1e-6, atol=1e-12)


def test_seal_refuses_a_block_beyond_the_norm_bound():
    rng = np.random.default_rng(4)
    k = Keys(CKKSParams(), _unit(rng, M))
    bound = norm_bounds(PSI_CLIP, M).values
    rows = _rows_at(bound, k.v, 3, rng)
    k.seal(rows, None, bound)  # at the bound
    with pytest.raises(InputError, match="beyond the artifact's bound"):
        k.seal(rows * 1.01, None, bound)


def test_norm_bounds_cover_clipped_rows_and_their_dp_noise():
    plain = norm_bounds(PSI_CLIP, M)
    assert (plain.values, plain.pairwise) == (4 * PSI_CLIP, (2 * PSI_CLIP) ** 2)
    dp = norm_bounds(PSI_CLIP, M, dp_clip=2.0, dp_noise_multiplier=1.0)
    noise = np.random.default_rng(5).normal(0.0, 2.0, (2000, M))
    assert np.linalg.norm(noise, axis=1).max() + 2.0 <= dp.values
    assert dp.pairwise == dp.values**2
    with pytest.raises(InputError):
        norm_bounds(float("nan"), M)


def test_key_recovery_security_left_and_the_provable_ratio():
    assert security_bits(FLOOD_RATIO, 3000) > 123.9
    assert security_bits(FLOOD_RATIO, 1) > 127.9
    assert security_bits(2**10, 3000) > 126.9
    assert security_bits(PAIRWISE_FLOOD_RATIO, 1) > 126.5
    assert security_bits(0.5, 400) == 0.0  # the old per-record flooding: no guarantee left
    assert security_bits(16, 1) > security_bits(16, 100) > security_bits(16, 10_000)
    assert lmss_ratio(1) == pytest.approx(math.sqrt(12) * 2**15)
