"""The deal after a score is opened: quote, delivery and settlement (each signed).

1. :class:`SignedQuote` (model owner -> data owner): the provisional price of an opened score,
   bound to the artifact, the commitment and the data owner's key;
2. :class:`Delivery` (data owner -> model owner): the records bought, as the float32
   features and class indices that were scored, with either the salt seed (every record) or
   each record's salt and Merkle inclusion proof (a subset, without delivering the rest);
3. :class:`Settlement` (model owner -> data owner): the verified price, recorded in both
   ledgers. Only a settlement is a price; a quote is an offer that verification may lower.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from mde.errors import ProtocolError
from mde.wire.merkle import SALT_BYTES
from mde.wire.messages import Message

__all__ = ["SignedQuote", "Delivery", "Settlement"]

_ID = Field(min_length=1, max_length=64)
_HEX = Field(pattern=r"^[0-9a-f]{64}$")
_MAX_RECORDS = 1 << 40


def _finite_price(v: float) -> float:
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError("a price must be a finite number >= 0")
    return v


class SignedQuote(Message):
    """The model owner's provisional price for an opened score."""

    format: ClassVar[str] = "mde-quote"

    quote_id: str = _ID
    artifact_id: str = _ID
    commitment: str = _HEX
    seller: str = _HEX
    n_records: int = Field(ge=1, le=_MAX_RECORDS)
    efficacy: float = Field(allow_inf_nan=False)
    price: float
    pricing: str = Field(max_length=400)

    _price = field_validator("price")(classmethod(lambda cls, v: _finite_price(v)))


class Settlement(Message):
    """The verified price of a delivery: what is paid."""

    format: ClassVar[str] = "mde-settlement"

    quote_id: str = _ID
    artifact_id: str = _ID
    commitment: str = _HEX
    seller: str = _HEX
    n_records_paid: int = Field(ge=0, le=_MAX_RECORDS)
    quoted_price: float
    price: float
    verified_efficacy: float = Field(allow_inf_nan=False)

    _prices = field_validator("price", "quoted_price")(classmethod(lambda cls, v: _finite_price(v)))


class Delivery(Message):
    """Records delivered against a quote, with what proves they are the committed ones.

    ``root`` is the Merkle root the commitment hashes. Members: ``X.f4`` (k x d float32,
    little-endian), ``y.i8`` (k int64 class indices), ``index.i8`` (the k positions in the
    committed order) and either ``seed`` (32 bytes, all records delivered) or ``salts``
    (k x 16 bytes) and ``proofs`` (the concatenated 32-byte nodes of each record's inclusion
    proof, in index order).
    """

    format: ClassVar[str] = "mde-delivery"
    blob_field: ClassVar[str | None] = "data"

    quote_id: str = _ID
    commitment: str = _HEX
    root: str = _HEX
    n_records: int = Field(ge=1, le=_MAX_RECORDS)
    n_features: int = Field(ge=1, le=2**20)
    n_delivered: int = Field(ge=1, le=_MAX_RECORDS)
    data: dict[str, bytes]

    @property
    def full(self) -> bool:
        """Whether every committed record is delivered (with the seed)."""
        return "seed" in self.data

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X float32 (k, d), y int64 (k,), index int64 (k,))``, checked for shape.

        Raises
        ------
        ProtocolError
            If a member is missing or of the wrong size, or an index is out of range or
            repeated.
        """
        k, d = self.n_delivered, self.n_features
        want = {"X.f4": 4 * k * d, "y.i8": 8 * k, "index.i8": 8 * k}
        extra = {"seed"} if self.full else {"salts", "proofs"}
        if set(self.data) != set(want) | extra:
            raise ProtocolError(
                f"delivery holds members {sorted(self.data)}; expected {sorted(set(want) | extra)}."
            )
        for name, size in want.items():
            if len(self.data[name]) != size:
                raise ProtocolError(
                    f"delivery member {name} holds {len(self.data[name])} bytes; {k} records "
                    f"of {d} features need {size}."
                )
        X = np.frombuffer(self.data["X.f4"], dtype="<f4").reshape(k, d)
        y = np.frombuffer(self.data["y.i8"], dtype="<i8")
        index = np.frombuffer(self.data["index.i8"], dtype="<i8")
        if (
            np.any(index < 0)
            or np.any(index >= self.n_records)
            or len(np.unique(index)) != k
            or (self.full and (k != self.n_records or np.any(index != np.arange(k))))
        ):
            raise ProtocolError(
                "delivery's record positions are out of range, repeated, or (with the seed) "
                "not every record in order."
            )
        if self.full and len(self.data["seed"]) != 32:
            raise ProtocolError("delivery's salt seed must be 32 bytes.")
        if not self.full and len(self.data["salts"]) != SALT_BYTES * k:
            raise ProtocolError(f"delivery holds salts for other than its {k} records.")
        return X, y, index
