"""Noise flooding of decrypted block sums: the CKKS error bound of each sealed block and the
Gaussian noise the model owner adds before a block sum leaves :func:`unseal_blocks`.

Where the decryption error of a sealed block comes from (TenSEAL 0.3.18 on SEAL; checked
against measurements by ``python -m benchmarks.flooding``):

- *Scale bias*: none. The segment sum is rescaled by SEAL, which records the exact scale
  ``2**80 / q`` (TenSEAL's own rescale records ``2**40`` and biased every product by
  ``2**40 / q``, relative 1.3e-7; :func:`rescale_factor` still computes it).
- *Rounding noise* (random, depends on the secret key). One rounding ``r0 + r1 s``
  (``r`` uniform in [-1/2, 1/2], ``s`` the uniform ternary key) has per-coefficient
  variance ``v = (1 + 2N/3) / 12`` and, in a slot, standard deviation
  ``sqrt(N v / 2) / 2**scale_bits`` (:func:`rounding_std`; 1.24e-9 at N = 8192). ``Enc(w)``
  and the data owner's fresh ``Enc(0)`` each carry one (SEAL divides a public-key
  encryption by its special prime), both are multiplied slot-wise by ``psi``; the rescale
  adds one more per slot.
- *Key switching*. The rotations of the segment sum run at scale ``2**80``; the one rescale
  after them divides their noise by ``q`` (2**40), far below one rounding.

A block summed from ``W`` slot products (``Layout.width``: segments times chunks) holding
plaintext ``x`` therefore has error standard deviation about
``rounding_std * sqrt(2 |x|^2 + 1 + 6 W / (3 + 2N))`` (:func:`block_error_std`; within
a few percent of the measurement). A total is sealed as ``sum(psi) / 2**e``, ``2**e >= n``,
so ``|x|`` is at most the largest row's norm; the pairwise block has ``|x| =
|products(u)| <= |u|^2``. :func:`block_error_bound` is ``ERROR_SIGMAS`` of those at the
public norm bounds of :func:`norm_bounds` (which :func:`~mde.crypto.sealing.seal_blocks`
enforces): public parameters, the layout and the artifact's ``psi_clip`` only, never the plaintext.

Flooding (:func:`flood_sigmas`) is ``FLOOD_RATIO = 2**8`` times that bound (1,536 error
stds at the bound, 3,000 and more at real records) for the blocks of ``Enc(w)`` and
``PAIRWISE_FLOOD_RATIO = 2**4`` for the pairwise block: as much as the precision of the
price allows. Against Li and Micciancio's key recovery this leaves (Renyi argument,
:func:`security_bits`) 123.9 of 128 bits after a 3,000-record per-record answer and 126.8
after one pairwise release; provable IND-CPA^D with 30-bit statistical security (Li,
Micciancio, Schultz and Sorrell 2022) would need ``sqrt(12 releases) * 2**15`` times the
bound (:func:`lmss_ratio`), 4-6% of an order-1 total's price at these parameters.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mde.crypto.params import CKKSParams, Layout
from mde.errors import InputError

__all__ = [
    "FLOOD_RATIO",
    "PAIRWISE_FLOOD_RATIO",
    "ERROR_SIGMAS",
    "PSI_NORM_MARGIN",
    "PAIRWISE_NORM_MARGIN",
    "NormBounds",
    "FloodSigmas",
    "seal_primes",
    "context_primes",
    "rescale_factor",
    "rounding_std",
    "block_error_std",
    "block_error_bound",
    "norm_bounds",
    "flood_sigmas",
    "security_bits",
    "lmss_ratio",
]

# flooding sigma = ratio * block_error_bound (itself ERROR_SIGMAS error stds), as large as
# the price's precision allows (relative error of a total < 1e-3 on the test data sets):
# 2**8 for the blocks of Enc(w) (2**10 costs a 48-record wine total 1.5e-3), 2**4 for the
# one pairwise release (its quadratic form is small against its 14,535-slot error: 2**10
# would cost the order-2 MNIST price 6%)
FLOOD_RATIO = 2.0**8
PAIRWISE_FLOOD_RATIO = 2.0**4
ERROR_SIGMAS = 6.0
# public norm bounds, from the artifact's psi_clip (the 99% quantile of |psi| on the owner's
# test set; records of real data sets stay below 1.8 psi_clip): a sealed row of psi has
# |psi| <= 4 psi_clip, the pairwise block |products(sum(psi) / 2**e)| <= (2 psi_clip)**2
PSI_NORM_MARGIN = 4.0
PAIRWISE_NORM_MARGIN = 2.0
_SEAL_NOISE_STD = 3.19  # SEAL's default error standard deviation


@dataclass(frozen=True)
class NormBounds:
    """Public L2 bounds of sealed blocks: ``values`` for a per-record or total block of psi,
    ``pairwise`` for the pairwise block. The data owner's :func:`seal_blocks` enforces
    them; the model owner's flooding covers the CKKS error up to them."""

    values: float
    pairwise: float


@dataclass(frozen=True)
class FloodSigmas:
    """Flooding noise (scaled units, max |w| = 1) per block kind, and the bounds behind it.

    ``values`` floods each per-record block and a total block of Enc(w); ``pairwise`` the
    pairwise block of Enc(q) of an order-2 artifact (None without one)."""

    values: float
    pairwise: float | None
    values_bound: float
    pairwise_bound: float | None


def _is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (SEAL primes have at most 61 bits)."""
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    if n < 2:
        return False
    for p in bases:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def seal_primes(poly_modulus_degree: int, bit_sizes: list[int]) -> list[int]:
    """The primes SEAL's ``CoeffModulus::Create`` picks: per bit size, the largest primes
    ``= 1 mod 2N`` below ``2**bits``, handed out smallest first in the order of ``bit_sizes``."""
    return list(_seal_primes(poly_modulus_degree, tuple(bit_sizes)))


@lru_cache(maxsize=32)
def _seal_primes(poly_modulus_degree: int, bit_sizes: tuple[int, ...]) -> tuple[int, ...]:
    factor = 2 * poly_modulus_degree
    pools: dict[int, list[int]] = {}
    for bits, count in Counter(bit_sizes).items():
        found: list[int] = []
        value = ((1 << bits) - 1) // factor * factor + 1
        while len(found) < count and value > 1 << (bits - 1):
            if _is_prime(value):
                found.append(value)
            value -= factor
        pools[bits] = found
    return tuple(pools[bits].pop() for bits in bit_sizes)


def context_primes(ctx: Any) -> list[int]:
    """The primes of a TenSEAL context (data primes q_0 .. q_L, then the special prime), read
    from its modulus chain and checked against SEAL's own products (low 64 bits).

    Raises
    ------
    InputError
        If the chain does not match SEAL's prime selection (another SEAL version).
    """
    data = ctx.seal_context().data
    levels = []
    level = data.key_context_data()
    while level is not None:  # key level (all primes), first data level, ..., q_0 alone
        levels.append(level)
        level = level.next_context_data()
    counts = [lv.total_coeff_modulus_bit_count() for lv in levels]
    sizes = [counts[-1]] + [counts[i] - counts[i + 1] for i in range(len(counts) - 2, -1, -1)]
    degree = int(data.key_context_data().parms().poly_modulus_degree())
    primes = seal_primes(degree, sizes)
    for k, lv in enumerate(reversed(levels)):  # level k holds q_0 .. q_k (the key level: all)
        if lv.total_coeff_modulus() != math.prod(primes[: k + 1]) % 2**64:
            raise InputError(
                "the CKKS context's modulus chain does not match SEAL's prime selection; this "
                "TenSEAL build is not the one the noise model was checked on."
            )
    return primes


def rescale_factor(ctx: Any, rescales: int = 1) -> float:
    """What a value decrypts to per unit after ``rescales`` plaintext multiplications under
    TenSEAL's scale bookkeeping: ``prod(2**scale_bits / q)`` over the primes dropped."""
    primes = context_primes(ctx)[:-1]  # data primes q_0 .. q_L
    out = 1.0
    for q in primes[::-1][:rescales]:
        out *= float(ctx.global_scale) / q
    return out


def rounding_std(params: CKKSParams) -> float:
    """Standard deviation, in one slot (scaled units), of one rounding ``r0 + r1 s``."""
    n = params.poly_modulus_degree
    v = (1.0 + 2.0 * n / 3.0) / 12.0
    return math.sqrt(n * v / 2.0) / 2.0**params.global_scale_bits


def _fresh_var(params: CKKSParams) -> float:
    """Per-coefficient variance of a SEAL public-key encryption's error (division by the
    special prime P: one rounding plus (u e + e1 + e2 s) / P) and of the encoding."""
    n = params.poly_modulus_degree
    special = 2.0 ** params.coeff_mod_bit_sizes[-1]
    flood = _SEAL_NOISE_STD**2 * (1.0 + 4.0 * n / 3.0) / special**2
    return (1.0 + 2.0 * n / 3.0) / 12.0 + 1.0 / 12.0 + flood


def block_error_std(params: CKKSParams, width: int, norm: float) -> float:
    """Standard deviation of the decryption error of one block sum (scaled units):
    ``width`` slot products (two encodings each) holding a plaintext of L2 norm ``norm``,
    summed by rotation at scale ``2**80`` and rescaled once."""
    n = params.poly_modulus_degree
    per_slot = n / 2.0 / 4.0**params.global_scale_bits
    rescale = (1.0 + 2.0 * n / 3.0) / 12.0  # the one rescale, after the segment sum
    return math.sqrt(per_slot * (2.0 * _fresh_var(params) * norm**2 + rescale + width / 6.0))


def block_error_bound(params: CKKSParams, width: int, norm: float) -> float:
    """``ERROR_SIGMAS`` error standard deviations of a block: a Gaussian sum of many
    independent roundings exceeds it with probability 2e-9."""
    return ERROR_SIGMAS * block_error_std(params, width, norm)


def norm_bounds(
    psi_clip: float,
    dim: int,
    dp_clip: float | None = None,
    dp_noise_multiplier: float | None = None,
) -> NormBounds:
    """The public norm bounds of an artifact's sealed blocks (both parties compute them).

    Without DP: ``PSI_NORM_MARGIN psi_clip`` per row and ``(PAIRWISE_NORM_MARGIN psi_clip)**2``
    for the pairwise block (``|products(u)| <= |u|^2``, ``|u| = |sum(psi)| / 2**e`` at most
    the largest row's norm). A DP answer seals clipped rows (or a clipped total) plus
    Gaussian noise: ``clip (1 + z (sqrt(dim) + 6))``, exceeded with probability 1e-8, and its
    square for the pairwise block.

    Raises
    ------
    InputError
        If a bound would not be a positive finite number.
    """
    if dp_clip is not None and dp_noise_multiplier is not None:
        row = dp_clip * (1.0 + dp_noise_multiplier * (math.sqrt(dim) + 6.0))
        bounds = NormBounds(values=row, pairwise=row**2)
    else:
        bounds = NormBounds(
            values=PSI_NORM_MARGIN * psi_clip, pairwise=(PAIRWISE_NORM_MARGIN * psi_clip) ** 2
        )
    if not all(math.isfinite(v) and v > 0 for v in (bounds.values, bounds.pairwise)):
        raise InputError(
            f"psi_clip and the DP parameters must give positive finite norm bounds; got {bounds}."
        )
    return bounds


def flood_sigmas(
    params: CKKSParams,
    layout: Layout,
    norms: NormBounds,
    pairwise_layout: Layout | None = None,
) -> FloodSigmas:
    """Flooding sigma per block kind (scaled units): ``FLOOD_RATIO`` times the error bound of
    a ``layout``'s block of norm ``norms.values``, and ``PAIRWISE_FLOOD_RATIO`` times that of
    the ``pairwise_layout``'s pairwise block of norm ``norms.pairwise``."""
    bound = block_error_bound(params, layout.width, norms.values)
    pair = None
    if pairwise_layout is not None:
        pair = block_error_bound(params, pairwise_layout.width, norms.pairwise)
    return FloodSigmas(
        values=FLOOD_RATIO * bound,
        pairwise=None if pair is None else PAIRWISE_FLOOD_RATIO * pair,
        values_bound=bound,
        pairwise_bound=pair,
    )


def security_bits(ratio: float, releases: float, security: float = 128.0) -> float:
    """Key-recovery security left after ``releases`` flooded block sums, each with error at
    most B and Gaussian flooding of ``ratio * B`` (a release at ratio R' counts as
    ``(ratio / R')**2`` releases).

    Per release the Renyi divergence of order a between N(v + e, s^2) and N(v, s^2) is
    ``a e^2 / (2 s^2) <= a / (2 ratio^2)``; it adds up over adaptively chosen releases, and
    an event of probability p without the errors (key recovery: 2**-security) has
    probability at most ``(p exp(D_a))^((a-1)/a)`` with them (Renyi probability preservation,
    Bai et al. 2018, as used by Micciancio-Walter 2018 and Li-Micciancio-Schultz-Sorrell
    2022). The best order a leaves ``(sqrt(security ln 2) - sqrt(t))**2 / ln 2`` bits,
    ``t = releases / (2 ratio^2)``: about ``security - sqrt(2 security releases / ln 2) /
    ratio``.
    """
    t = releases / (2.0 * ratio**2)
    root = math.sqrt(security * math.log(2.0)) - math.sqrt(t)
    return root**2 / math.log(2.0) if root > 0 else 0.0


def lmss_ratio(releases: int, statistical_security: float = 30.0) -> float:
    """Flooding-to-error ratio for provable IND-CPA^D security with ``statistical_security``
    bits against ``releases`` decryptions (Li, Micciancio, Schultz and Sorrell, CRYPTO 2022,
    as implemented by OpenFHE's NOISE_FLOODING_DECRYPT): ``sqrt(12 releases) 2**(s/2)``."""
    return math.sqrt(12.0 * releases) * 2.0 ** (statistical_security / 2.0)
