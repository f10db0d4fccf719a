"""CKKS parameters (128-bit security checks), the hidden-mode parameter rule and slot layouts."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from mde.errors import InputError

__all__ = [
    "CKKSParams",
    "Layout",
    "make_layout",
    "galois_steps",
    "check_params",
    "hidden_params",
    "RESERVED_SLOTS",
]

RESERVED_SLOTS = 2
# max total modulus bits for 128-bit security (HomomorphicEncryption.org standard)
_MAX_BITS = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
_MIN_MASK = 2.0**8


class CKKSParams(BaseModel):
    """CKKS parameters. The default (N = 8192, 160 modulus bits) gives 128-bit security,
    40-bit scale and room for values up to 2**18 after the one multiplication.
    ``mask_bound`` is the hidden mode's per-slot mask."""

    model_config = ConfigDict(frozen=True)

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: list[int] = Field(default_factory=lambda: [60, 40, 60])
    global_scale_bits: int = 40
    mask_bound: float = 2.0**14

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
    if bits[-1] < max(bits[:-1]):
        return (
            f"the special (last) prime of {bits} must be at least as large as every data prime: "
            "the segment sum's rotations switch keys through it."
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
    """How a value vector and the data owner's records are packed into ciphertext slots.

    The ``slots`` of a ciphertext form ``segments`` segments of ``segment`` positions
    (both powers of two). Chunk ``c`` of ``Enc(w)`` holds ``w[c * segments + b]`` at every
    data position of segment ``b``; a record's ``psi`` lies along one position, one feature
    per segment. After the slot-wise product the data owner sums its chunks and rotates by
    the ``steps`` (multiples of ``segment``), so that every segment holds the record sums at
    its positions: decryption shows one number per record and nothing per feature. Each
    segment's last two positions are reserved (meta code, sentinel)."""

    model_config = ConfigDict(frozen=True)

    dim: int = Field(ge=1)
    slots: int
    segment: int = Field(ge=4)
    chunks: int = Field(ge=1)

    @property
    def segments(self) -> int:
        return self.slots // self.segment

    @property
    def tiles(self) -> int:
        """Records (blocks) per sealed ciphertext."""
        return self.segment - RESERVED_SLOTS

    @property
    def meta_pos(self) -> int:
        return self.segment - 2

    @property
    def sentinel_pos(self) -> int:
        return self.segment - 1

    @property
    def width(self) -> int:
        """Slot products summed into each block sum (segments times chunks)."""
        return self.segments * self.chunks

    @property
    def steps(self) -> list[int]:
        """The rotations of the segment sum (the only Galois keys the artifact carries)."""
        return [self.segment << t for t in range(self.segments.bit_length() - 1)]


def galois_steps(layout: Layout, pairwise: Layout | None = None) -> list[int]:
    """The rotations an artifact's Galois keys cover: its layouts' segment-sum steps."""
    return sorted(set(layout.steps) | set(pairwise.steps if pairwise else []))


def _pow2_at_least(x: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, x))))


def make_layout(dim: int, params: CKKSParams, per_record: bool = True) -> Layout:
    """The layout of a ``dim``-vector: 4 to 8 chunks (one Galois key per doubling of the
    segments costs about as much as 1.5 chunks) and segments of at least 16 positions for
    value vectors (per-record blocks); 4-position segments for the pairwise vector, which is
    only ever sealed as one total."""
    slots = params.slots
    if per_record:
        segments = min(_pow2_at_least(math.ceil(dim / 4)), slots // 16)
    else:
        segments = slots // 4
    return Layout(dim=dim, slots=slots, segment=slots // segments, chunks=math.ceil(dim / segments))


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
