"""CKKS parameters (128-bit security checks), the hidden-mode parameter rule and slot layouts."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from mde.errors import InputError

__all__ = ["CKKSParams", "Layout", "make_layout", "check_params", "hidden_params", "RESERVED_SLOTS"]

RESERVED_SLOTS = 2
# max total modulus bits for 128-bit security (HomomorphicEncryption.org standard)
_MAX_BITS = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
_MIN_MASK = 2.0**8


class CKKSParams(BaseModel):
    """CKKS parameters. The default (N = 8192, 160 modulus bits) gives 128-bit security,
    40-bit scale and room for values up to 2**19 after the one multiplication."""

    model_config = ConfigDict(frozen=True)

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: list[int] = Field(default_factory=lambda: [60, 40, 60])
    global_scale_bits: int = 40
    mask_bound: float = 2.0**14

    @classmethod
    def compact(cls) -> CKKSParams:
        """N = 4096 with primes [53, 40, 16] (109 bits, 128-bit security): keys and ciphertexts
        about 2.5x smaller and the same 40-bit precision, but 2047 slots and a mask of
        +-2**9 (instead of 2**14) per slot, i.e. single slots are hidden to ~1/1000."""
        return cls(
            poly_modulus_degree=4096,
            coeff_mod_bit_sizes=[53, 40, 16],
            global_scale_bits=40,
            mask_bound=2.0**9,
        )

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def capacity(self) -> float:
        """Largest magnitude a slot may hold after the multiplication (with a safety margin)."""
        return 2.0 ** (self.coeff_mod_bit_sizes[0] - self.global_scale_bits - 2)

    @property
    def flood_sigma(self) -> float:
        """The flat flooding sigma of earlier versions (scaled units, max |w| = 1): below the
        per-record CKKS error. Flood per block with :func:`mde.crypto.flooding.flood_sigmas`."""
        return 2.0 ** (20 - self.global_scale_bits)


def check_params(p: CKKSParams) -> str | None:
    """Return what is wrong with ``p`` (insecure, unusable or leaky), or None if it is fine."""
    if p.poly_modulus_degree not in _MAX_BITS:
        return (
            f"poly_modulus_degree must be one of {sorted(_MAX_BITS)}; got {p.poly_modulus_degree}."
        )
    bits = list(p.coeff_mod_bit_sizes)
    if len(bits) < 3 or sum(bits) > _MAX_BITS[p.poly_modulus_degree]:
        return (
            f"coeff_mod_bit_sizes {bits} must have >= 3 primes totalling <= "
            f"{_MAX_BITS[p.poly_modulus_degree]} bits for 128-bit security at N = "
            f"{p.poly_modulus_degree}."
        )
    if bits[1] != p.global_scale_bits or not 20 <= p.global_scale_bits <= 60:
        return "global_scale_bits must equal the size of the second prime and lie in [20, 60]."
    if not (math.isfinite(p.mask_bound) and _MIN_MASK <= p.mask_bound <= p.capacity / 4):
        return (
            f"mask_bound must lie in [{_MIN_MASK:g}, {p.capacity / 4:g}] for these primes "
            f"(it hides single slots); got {p.mask_bound}."
        )
    return None


class Layout(BaseModel):
    """How value vectors and records are packed into ciphertext slots."""

    model_config = ConfigDict(frozen=True)

    dim: int = Field(ge=1)
    slots: int
    tiles: int = Field(ge=1)
    chunks: int = Field(ge=1)

    @property
    def usable(self) -> int:
        return self.slots - RESERVED_SLOTS

    @property
    def sentinel_slot(self) -> int:
        return self.slots - 1

    @property
    def meta_slot(self) -> int:
        return self.slots - 2


def make_layout(dim: int, params: CKKSParams) -> Layout:
    usable = params.slots - RESERVED_SLOTS
    if dim <= usable:
        return Layout(dim=dim, slots=params.slots, tiles=usable // dim, chunks=1)
    return Layout(dim=dim, slots=params.slots, tiles=1, chunks=math.ceil(dim / usable))


def hidden_params(depth: int) -> CKKSParams:
    """CKKS parameters for a score graph of multiplicative ``depth`` (128-bit security):
    N = 8192 up to depth 2, else N = 16384; 40-bit scale, 60-bit first and special primes."""
    bits = [60] + [40] * depth + [60]
    n = 8192 if sum(bits) <= 218 else 16384
    if sum(bits) > 438:
        raise InputError(
            f"a score graph of depth {depth} is too deep for 128-bit CKKS parameters (max 7)."
        )
    return CKKSParams(
        poly_modulus_degree=n, coeff_mod_bit_sizes=bits, global_scale_bits=40, mask_bound=2.0**14
    )
