"""Data owner, after a quote: what a delivery sends (all records with the seed, or a subset
with each record's salt and inclusion proof), and what it refuses to deliver."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mde
from mde.data_owner.ledger import DataOwnerLedger
from mde.errors import InputError, MDEError, StorageError
from mde.wire.deal import Delivery, SignedQuote
from mde.wire.merkle import (
    SALT_BYTES,
    commitment_hex,
    leaf_hashes,
    proof_length,
    record_salts,
    verify_inclusion,
)
from mde.wire.signing import SigningKey
from pricing import UniformPricing

BUYER = SigningKey.generate()
SELLER = SigningKey.generate()
N = 37  # not a power of two: proofs of different lengths


@dataclass
class Deal:
    session: mde.DataOwnerSession
    X: np.ndarray
    y: np.ndarray
    quote: SignedQuote
    book: Path


@pytest.fixture(scope="module")
def deal(tmp_path_factory, digits, model) -> Deal:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("deliver")
    owner = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=8,
        random_state=0,
        ledger=home / "owner.sqlite",
    )
    owner.identity = BUYER
    owner.export(home / "a.mde")
    session = mde.load_artifact(
        home / "a.mde", buyer="model-owner", identity=SELLER, ledger=home / "do.sqlite"
    )
    X, y = digits.Xc[:N], digits.yc[:N]
    report = owner.open(session.score(X, y, per_record=True), expect_seller=SELLER.public_hex)
    return Deal(
        session, X, y, owner.quote(report, UniformPricing(unit_price=1.0)), home / "do.sqlite"
    )


def _quotes(deal: Deal, quote_id: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(deal.book)) as db:
        return db.execute(
            "SELECT buyer, commitment, price FROM quotes WHERE quote_id = ?", (quote_id,)
        ).fetchall()


def _fresh_quote(deal: Deal) -> SignedQuote:
    """Another quote of the same score (a new id), as the buyer would sign it."""
    fields = deal.quote.model_dump() | {"quote_id": uuid.uuid4().hex}
    return SignedQuote(**fields).signed(BUYER)


def test_a_full_delivery_sends_the_scored_records_and_the_seed(deal: Deal) -> None:
    d = deal.session.deliver(deal.quote.to_bytes(), deal.X, deal.y)
    assert d.full and (d.n_records, d.n_delivered, d.n_features) == (N, N, 64)
    assert d.data["seed"] == DataOwnerLedger(deal.book).seed(deal.quote.commitment)
    assert d.data["X.f4"] == deal.X.astype("<f4").tobytes()
    assert d.data["y.i8"] == deal.y.astype("<i8").tobytes()  # classes 0..9 are their indices
    assert d.data["index.i8"] == np.arange(N, dtype="<i8").tobytes()
    assert commitment_hex(bytes.fromhex(d.root), N, 64) == deal.quote.commitment
    assert Delivery.from_bytes(d.to_bytes()).check_signature() == SELLER.public_hex
    # the quote is recorded once, however often the data owner delivers against it
    deal.session.deliver(deal.quote, deal.X, deal.y)
    assert _quotes(deal, deal.quote.quote_id) == [
        (BUYER.public_hex, deal.quote.commitment, deal.quote.price)
    ]


def test_a_subset_delivery_proves_each_record_without_the_rest(deal: Deal) -> None:
    quote = _fresh_quote(deal)
    d = deal.session.deliver(quote, deal.X, deal.y, indices=[33, 2, 2, 17])
    assert not d.full and "seed" not in d.data
    index = np.frombuffer(d.data["index.i8"], "<i8")
    assert index.tolist() == [2, 17, 33]  # sorted, each record once
    seed = DataOwnerLedger(deal.book).seed(quote.commitment)
    assert all(seed not in member for member in d.data.values())
    salts = np.frombuffer(d.data["salts"], np.uint8).reshape(-1, SALT_BYTES)
    np.testing.assert_array_equal(salts, np.vstack([record_salts(seed, i, 1) for i in index]))
    X = np.frombuffer(d.data["X.f4"], "<f4").reshape(3, 64)
    np.testing.assert_array_equal(X, deal.X[index].astype(np.float32))
    leaves = leaf_hashes(X, np.frombuffer(d.data["y.i8"], "<i8"), salts)
    root, nodes, pos = bytes.fromhex(d.root), d.data["proofs"], 0
    lengths = [proof_length(int(i), N) for i in index]
    assert len(set(lengths)) > 1  # 37 leaves: record 33 sits in the short right subtree
    for i, leaf, k in zip(index.tolist(), leaves, lengths):
        proof = [nodes[pos + 32 * j : pos + 32 * (j + 1)] for j in range(k)]
        pos += 32 * k
        assert verify_inclusion(root, bytes(leaf), i, N, proof)
        assert not verify_inclusion(root, bytes(leaf), (i + 1) % N, N, proof)
    assert pos == len(nodes)


@pytest.mark.parametrize("indices", [[], [[1, 2]], [1.0, 2.0], [-1], [N], [0, N + 5]], ids=repr)
def test_bad_indices_are_refused_and_nothing_is_recorded(deal: Deal, indices: Any) -> None:
    quote = _fresh_quote(deal)
    with pytest.raises(MDEError) as info:
        deal.session.deliver(quote, deal.X, deal.y, indices=np.asarray(indices))
    assert type(info.value) is InputError
    assert _quotes(deal, quote.quote_id) == []


def _ulp(X: np.ndarray) -> np.ndarray:
    out = X.astype(np.float32)
    j = int(np.flatnonzero(out[4])[0])
    out[4, j] = np.nextafter(out[4, j], np.float32(np.inf))
    return out


@pytest.mark.parametrize(
    "change",
    ["one float32 ulp", "reordered", "one record missing", "one record more", "relabelled"],
)
def test_records_other_than_the_scored_ones_are_not_delivered(deal: Deal, change: str) -> None:
    X, y = deal.X, deal.y
    X, y = {
        "one float32 ulp": lambda: (_ulp(X), y),
        "reordered": lambda: (X[::-1], y[::-1]),
        "one record missing": lambda: (X[:-1], y[:-1]),
        "one record more": lambda: (np.vstack([X, X[:1]]), np.concatenate([y, y[:1]])),
        "relabelled": lambda: (X, np.where(np.arange(N) == 3, (y + 1) % 10, y)),
    }[change]()
    quote = _fresh_quote(deal)
    for indices in (None, [3, 4]):
        with pytest.raises(MDEError) as info:
            deal.session.deliver(quote, X, y, indices=indices)
        assert type(info.value) is InputError
    assert _quotes(deal, quote.quote_id) == []


def test_a_quote_for_a_commitment_this_ledger_never_made_is_refused(deal: Deal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = SignedQuote(**deal.quote.model_dump() | {"commitment": "ab" * 32}).signed(BUYER)
    with pytest.raises(MDEError) as info:
        deal.session.deliver(other, deal.X, deal.y)
    assert type(info.value) is StorageError
    # nor by the same data owner from another ledger, which holds no salt seed for it
    elsewhere = mde.load_artifact(
        deal.book.parent / "a.mde", identity=SELLER, ledger=tmp_path / "other.sqlite"
    )
    with pytest.raises(MDEError) as info:
        elsewhere.deliver(deal.quote, deal.X, deal.y)
    assert type(info.value) is StorageError
