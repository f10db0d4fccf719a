"""Settlement (issue 14, item 5): quote -> delivery -> settle -> accept.

A cheating data owner crafts deliveries and signs them with its own key (the signature check
passes, so the deeper checks are what refuse them); forged quotes and settlements are signed
by a third key. Every refusal names its exact error class and leaves both ledgers without a
settlement for the quote, which still settles honestly afterwards. Then: one settlement per
quote, prices against closed forms, and ``kill -9`` during open and during settlement.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mde
from mde.data_owner.deliver import accept_settlement
from mde.data_owner.ledger import DataOwnerLedger
from mde.errors import (
    DeliveryError,
    IdentityError,
    MDEError,
    ProtocolError,
    ReplayError,
    StorageError,
)
from mde.owner.ledger import Ledger
from mde.owner.settle import make_quote
from mde.report import EfficacyReport
from mde.wire.deal import Delivery, Settlement, SignedQuote
from mde.wire.merkle import SALT_BYTES, proof_length
from mde.wire.signing import SigningKey
from pricing import BinaryPricing, LinearPricing, UniformPricing

BUYER = SigningKey.generate()  # the model owner
SELLER = SigningKey.generate()  # the data owner; a cheating one signs what it crafts
FORGER = SigningKey.generate()  # anyone else (another buyer, a man in the middle)

UNIFORM = UniformPricing(unit_price=1.0)
SUBSET = [3, 5, 10, 17]  # clean records of the mixed offer (all with 6-node proofs)
# the mixed offer: 0-19 clean, 20-39 relabelled, 40-41 copies of 0-1, 42 a training record
N_MIXED = 43


@dataclass
class Offer:
    X: np.ndarray
    y: np.ndarray
    report: EfficacyReport


@dataclass
class Deal:
    owner: mde.ModelOwner
    session: mde.DataOwnerSession
    home: Path
    mixed: Offer  # per-record; worth less than its clean half
    clean: Offer  # per-record; another commitment
    total: Offer  # total only


@pytest.fixture(scope="module")
def deal(tmp_path_factory, digits, model) -> Deal:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("deal")
    owner = mde.build_proxy(
        model,
        digits.Xtr,
        digits.ytr,
        digits.Xte,
        digits.yte,
        n_components=16,  # 16 directions: the artifact ships the membership sketch
        random_state=0,
        ledger=home / "owner.sqlite",
    )
    owner.identity = BUYER
    Xm, ym = digits.Xc[:40].copy(), digits.yc[:40].copy()
    ym[20:] = (ym[20:] + 3) % 10
    Xm = np.vstack([Xm, Xm[:2], digits.Xtr[:1]])
    ym = np.concatenate([ym, ym[:2], digits.ytr[:1]])
    # the clean offer holds the mixed offer's record 3 at the same position, with its own salt
    Xk, yk = digits.Xc[40:80].copy(), digits.yc[40:80].copy()
    Xk[3], yk[3] = Xm[3], ym[3]
    offers = {
        "mixed": (Xm, ym, True),
        "clean": (Xk, yk, True),
        "total": (digits.Xc[80:140], digits.yc[80:140], False),
    }
    opened = {}
    for name, (X, y, per_record) in offers.items():
        owner.export(home / f"{name}.mde")
        session = mde.load_artifact(
            home / f"{name}.mde", buyer="model-owner", identity=SELLER, ledger=home / "do.sqlite"
        )
        sealed = session.score(X, y, per_record=per_record)
        report = owner.open(sealed.to_bytes(), expect_seller=SELLER.public_hex)
        opened[name] = Offer(np.asarray(X), np.asarray(y), report)
    owner.save(home / "owner.mdeproxy")
    BUYER.save(home / "buyer.pem")
    SELLER.save(home / "seller.pem")
    return Deal(owner, session, home, **opened)


# -- helpers ------------------------------------------------------------------------------


def _deliver(deal: Deal, offer: Offer, quote: SignedQuote, indices: Any = None) -> Delivery:
    return deal.session.deliver(quote.to_bytes(), offer.X, offer.y, indices=indices)


def _craft(
    delivery: Delivery,
    key: SigningKey | None = SELLER,
    members: dict[str, bytes] | None = None,
    **fields: Any,
) -> bytes:
    """The delivery with members and header fields replaced, signed by ``key`` (or not)."""
    header = delivery.model_dump(exclude={"data"}) | fields
    msg = Delivery(**header, data=dict(delivery.data) | (members or {}))
    return (msg if key is None else msg.signed(key)).to_bytes()


@dataclass
class Parts:
    """A subset delivery's members, as arrays, to edit."""

    X: np.ndarray
    y: np.ndarray
    index: np.ndarray
    salts: np.ndarray
    proofs: list[bytes]  # one concatenated proof per record

    @classmethod
    def of(cls, d: Delivery) -> Parts:
        k, n = d.n_delivered, d.n_records
        index = np.frombuffer(d.data["index.i8"], "<i8").copy()
        nodes, proofs, pos = d.data["proofs"], [], 0
        for i in index.tolist():
            size = 32 * proof_length(i, n)
            proofs.append(nodes[pos : pos + size])
            pos += size
        return cls(
            np.frombuffer(d.data["X.f4"], "<f4").reshape(k, d.n_features).copy(),
            np.frombuffer(d.data["y.i8"], "<i8").copy(),
            index,
            np.frombuffer(d.data["salts"], np.uint8).reshape(k, SALT_BYTES).copy(),
            proofs,
        )

    def members(self) -> dict[str, bytes]:
        return {
            "X.f4": np.ascontiguousarray(self.X, "<f4").tobytes(),
            "y.i8": np.ascontiguousarray(self.y, "<i8").tobytes(),
            "index.i8": np.ascontiguousarray(self.index, "<i8").tobytes(),
            "salts": np.ascontiguousarray(self.salts, np.uint8).tobytes(),
            "proofs": b"".join(self.proofs),
        }

    def crafted(self, d: Delivery, **fields: Any) -> bytes:
        return _craft(d, members=self.members(), n_delivered=len(self.index), **fields)


def _rows(path: Path | str, quote_id: str) -> list[bytes]:
    with closing(sqlite3.connect(path)) as db:
        found = db.execute("SELECT settlement FROM settlements WHERE quote_id = ?", (quote_id,))
        return [bytes(r[0]) for r in found.fetchall()]


def _settlements(deal: Deal, quote_id: str) -> tuple[list[bytes], list[bytes]]:
    """The settlements recorded for a quote: (model owner's ledger, data owner's ledger)."""
    return _rows(deal.owner.ledger.path, quote_id), _rows(deal.session.ledger.path, quote_id)


def _refused(
    deal: Deal, quote: SignedQuote, crafted: bytes, error: type[MDEError], pricing: Any = UNIFORM
) -> None:
    with pytest.raises(MDEError) as info:
        deal.owner.settle(crafted, pricing)
    assert type(info.value) is error, repr(info.value)
    assert _settlements(deal, quote.quote_id) == ([], [])


def _settles(deal: Deal, delivery: Delivery, pricing: Any = UNIFORM) -> Settlement:
    """Settle an honest delivery, accept it, and check both ledgers hold exactly it."""
    settlement = deal.owner.settle(delivery.to_bytes(), pricing)
    deal.session.accept_settlement(settlement.to_bytes())
    blob = settlement.to_bytes()
    assert _settlements(deal, delivery.quote_id) == ([blob], [blob])
    assert settlement.check_signature(BUYER.public_hex) == BUYER.public_hex
    return settlement


def _exact_scores(deal: Deal, offer: Offer) -> np.ndarray:
    """Noise-free record scores of the float32 records the data owner scored (screens on)."""
    X32 = offer.X.astype(np.float32).astype(np.float64)
    return np.asarray(deal.owner.proxy.record_scores(X32, offer.y))


def _ulp(X: np.ndarray, row: int) -> np.ndarray:
    """``X`` (float32) with one nonzero feature of ``row`` moved by one ulp."""
    out = X.astype(np.float32).copy()
    j = int(np.flatnonzero(out[row])[0])
    out[row, j] = np.nextafter(out[row, j], np.float32(np.inf))
    assert out[row, j] != X[row, j]
    return out


# -- the offers ---------------------------------------------------------------------------


def test_the_offers_are_what_the_tests_assume(deal: Deal) -> None:
    exact = _exact_scores(deal, deal.mixed)
    assert deal.mixed.report.n_records == N_MIXED and deal.mixed.report.record_scores is not None
    noise = deal.mixed.report.record_noise or 0.0  # the model owner's flooding per record
    np.testing.assert_allclose(deal.mixed.report.record_scores, exact, rtol=1e-4, atol=8 * noise)
    assert exact[:20].sum() > 0 > exact.sum()  # the clean half is worth more than the whole
    assert np.all(exact[SUBSET] > 1e-4)
    assert np.all(exact[40:] == 0.0)  # copies inside the offer and a known record score zero
    assert deal.total.report.record_scores is None and deal.total.report.efficacy > 0
    assert len({o.report.commitment for o in (deal.mixed, deal.clean, deal.total)}) == 3


# -- subset deliveries --------------------------------------------------------------------


def _flip_salt(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.salts[0, 0] ^= 1
    return p.crafted(d)


def _flip_proof_node(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    node = bytearray(p.proofs[1])
    node[2 * 32 + 7] ^= 0x80  # the third node of the second record's path
    p.proofs[1] = bytes(node)
    return p.crafted(d)


def _proof_of_another_index(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    assert len(p.proofs[0]) == len(p.proofs[1])
    p.proofs[0], p.proofs[1] = p.proofs[1], p.proofs[0]
    return p.crafted(d)


def _claimed_at_another_index(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.index[0] = 4  # record 3 with its own salt and proof, claimed to be record 4
    return p.crafted(d)


def _duplicated_index(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.X, p.y = np.vstack([p.X[:1], p.X]), np.concatenate([p.y[:1], p.y])
    p.index, p.salts = np.concatenate([p.index[:1], p.index]), np.vstack([p.salts[:1], p.salts])
    p.proofs = p.proofs[:1] + p.proofs
    return p.crafted(d)


def _index_past_the_end(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.index[-1] = N_MIXED
    return p.crafted(d)


def _negative_index(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.index[0] = -1
    return p.crafted(d)


def _swapped_records(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.X[[0, 1]], p.y[[0, 1]] = p.X[[1, 0]], p.y[[1, 0]]
    return p.crafted(d)


def _another_record_of_the_offer(deal: Deal, d: Delivery) -> bytes:
    # record 25 (relabelled) with its own salt and proof, in the place of record 3
    q = deal.owner.quote(deal.mixed.report, UNIFORM)
    other = Parts.of(_deliver(deal, deal.mixed, q, indices=[25]))
    p = Parts.of(d)
    p.X[0], p.y[0], p.salts[0], p.proofs[0] = (
        other.X[0],
        other.y[0],
        other.salts[0],
        other.proofs[0],
    )
    return p.crafted(d)


def _a_copys_place_taken_by_its_original(deal: Deal, d: Delivery) -> bytes:
    # record 0 with its own salt and proof, claimed to be record 40 (its copy): the same
    # data and score, so only the salted leaf tells them apart
    q = deal.owner.quote(deal.mixed.report, UNIFORM)
    p = Parts.of(_deliver(deal, deal.mixed, q, indices=[0, 3]))
    p.index[0] = 40
    order = np.argsort(p.index)
    p.X, p.y, p.index, p.salts = p.X[order], p.y[order], p.index[order], p.salts[order]
    p.proofs = [p.proofs[i] for i in order]
    return p.crafted(d)


def _record_of_another_offer(deal: Deal, d: Delivery) -> bytes:
    # the same record, at the same position, scored in another offer: its valid proof there
    q = deal.owner.quote(deal.clean.report, UNIFORM)
    other = Parts.of(_deliver(deal, deal.clean, q, indices=[3]))
    assert other.X[0].tobytes() == Parts.of(d).X[0].tobytes() and other.y[0] == Parts.of(d).y[0]
    p = Parts.of(d)
    p.X[0], p.y[0], p.salts[0], p.proofs[0] = (
        other.X[0],
        other.y[0],
        other.salts[0],
        other.proofs[0],
    )
    return p.crafted(d)


def _record_of_another_offer_with_its_root(deal: Deal, d: Delivery) -> bytes:
    q = deal.owner.quote(deal.clean.report, UNIFORM)
    theirs = _deliver(deal, deal.clean, q, indices=[3])
    other = Parts.of(theirs)
    p = Parts.of(d)
    p.X[0], p.y[0], p.salts[0], p.proofs[0] = (
        other.X[0],
        other.y[0],
        other.salts[0],
        other.proofs[0],
    )
    return p.crafted(d, root=theirs.root)


def _another_offers_delivery_readdressed(deal: Deal, d: Delivery) -> bytes:
    q = deal.owner.quote(deal.clean.report, UNIFORM)
    return _craft(_deliver(deal, deal.clean, q, indices=[3, 5]), quote_id=d.quote_id)


def _one_ulp(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.X = _ulp(p.X, 2)
    return p.crafted(d)


def _one_ulp_from_zero(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    j = int(np.flatnonzero(p.X[0] == 0)[0])
    p.X[0, j] = np.nextafter(np.float32(0), np.float32(1))  # the smallest subnormal
    return p.crafted(d)


def _relabelled(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.y[0] = (p.y[0] + 1) % 10
    return p.crafted(d)


def _class_index_out_of_range(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.y[0] = 10
    return p.crafted(d)


def _extra_proof_node(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.proofs[-1] += bytes(32)
    return p.crafted(d)


def _truncated_proof(deal: Deal, d: Delivery) -> bytes:
    p = Parts.of(d)
    p.proofs[-1] = p.proofs[-1][:-32]
    return p.crafted(d)


def _unsigned(deal: Deal, d: Delivery) -> bytes:
    return _craft(d, key=None)


def _signed_by_a_forger(deal: Deal, d: Delivery) -> bytes:
    return _craft(d, key=FORGER)


def _edited_after_signing(deal: Deal, d: Delivery) -> bytes:
    return d.model_copy(update={"n_delivered": d.n_delivered - 1}).to_bytes()


SUBSET_ATTACKS: dict[str, tuple[Callable[[Deal, Delivery], bytes], type[MDEError]]] = {
    "tampered salt": (_flip_salt, DeliveryError),
    "tampered proof node": (_flip_proof_node, DeliveryError),
    "proof of another index": (_proof_of_another_index, DeliveryError),
    "record claimed at another index": (_claimed_at_another_index, DeliveryError),
    "duplicated index": (_duplicated_index, ProtocolError),
    "index past the end": (_index_past_the_end, ProtocolError),
    "negative index": (_negative_index, ProtocolError),
    "two records swapped": (_swapped_records, DeliveryError),
    "another record of the offer with its proof": (_another_record_of_the_offer, DeliveryError),
    "a copy's place taken by its original": (_a_copys_place_taken_by_its_original, DeliveryError),
    "the same record from another offer with its proof": (_record_of_another_offer, DeliveryError),
    "... and that offer's root": (_record_of_another_offer_with_its_root, DeliveryError),
    "another offer's delivery re-addressed": (_another_offers_delivery_readdressed, DeliveryError),
    "one float32 ulp": (_one_ulp, DeliveryError),
    "one ulp from zero": (_one_ulp_from_zero, DeliveryError),
    "relabelled": (_relabelled, DeliveryError),
    "class index out of range": (_class_index_out_of_range, DeliveryError),
    "extra proof node": (_extra_proof_node, DeliveryError),
    "truncated proof": (_truncated_proof, DeliveryError),
    "unsigned": (_unsigned, ProtocolError),
    "signed by another key": (_signed_by_a_forger, IdentityError),
    "edited after signing": (_edited_after_signing, ProtocolError),
}


@pytest.mark.parametrize("attack", list(SUBSET_ATTACKS))
def test_a_crafted_subset_delivery_is_refused_and_settles_nothing(deal: Deal, attack: str) -> None:
    craft, error = SUBSET_ATTACKS[attack]
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    honest = _deliver(deal, deal.mixed, quote, indices=SUBSET)
    _refused(deal, quote, craft(deal, honest), error)
    # the refusal spent nothing: the honest subset still settles, at its records' price
    assert _settles(deal, honest).price == len(SUBSET)


# -- full deliveries ----------------------------------------------------------------------


def _full(deal: Deal, d: Delivery, X: np.ndarray, y: np.ndarray, **fields: Any) -> bytes:
    members = {
        "X.f4": np.ascontiguousarray(X, "<f4").tobytes(),
        "y.i8": np.ascontiguousarray(y, "<i8").tobytes(),
        "index.i8": np.arange(len(y), dtype="<i8").tobytes(),
    }
    return _craft(d, members=members, n_delivered=len(y), **fields)


def _parts_full(d: Delivery) -> tuple[np.ndarray, np.ndarray]:
    X = np.frombuffer(d.data["X.f4"], "<f4").reshape(d.n_delivered, d.n_features).copy()
    return X, np.frombuffer(d.data["y.i8"], "<i8").copy()


FULL_ATTACKS: dict[str, tuple[Callable[[Deal, Delivery], bytes], type[MDEError]]] = {
    "wrong seed": (
        lambda deal, d: _craft(d, members={"seed": bytes(range(32))}),
        DeliveryError,
    ),
    "one record missing": (
        lambda deal, d: _full(deal, d, *(a[:-1] for a in _parts_full(d))),
        ProtocolError,
    ),
    "one record missing, record count edited": (
        lambda deal, d: _full(deal, d, *(a[:-1] for a in _parts_full(d)), n_records=59),
        DeliveryError,
    ),
    "records reordered": (
        lambda deal, d: _full(deal, d, *(a[::-1] for a in _parts_full(d))),
        DeliveryError,
    ),
    "two records swapped": (
        lambda deal, d: _full(deal, d, *(a[[1, 0, *range(2, 60)]] for a in _parts_full(d))),
        DeliveryError,
    ),
    "one float32 ulp": (
        lambda deal, d: _full(deal, d, _ulp(_parts_full(d)[0], 7), _parts_full(d)[1]),
        DeliveryError,
    ),
    "a record of another offer": (
        lambda deal, d: _full(
            deal,
            d,
            np.vstack([_parts_full(d)[0][:-1], deal.clean.X[:1]]),
            np.concatenate([_parts_full(d)[1][:-1], deal.clean.y[:1]]),
        ),
        DeliveryError,
    ),
    "salts and proofs instead of the seed": (
        lambda deal, d: _craft(
            Delivery(**d.model_dump(exclude={"data"}), data={}),
            members={k: v for k, v in d.data.items() if k != "seed"}
            | {"salts": bytes(16 * 60), "proofs": b""},
        ),
        DeliveryError,
    ),
    "unsigned": (lambda deal, d: _craft(d, key=None), ProtocolError),
    "signed by another key": (lambda deal, d: _craft(d, key=FORGER), IdentityError),
}


@pytest.mark.parametrize("attack", list(FULL_ATTACKS))
def test_a_crafted_full_delivery_is_refused_and_settles_nothing(deal: Deal, attack: str) -> None:
    craft, error = FULL_ATTACKS[attack]
    pricing = BinaryPricing(price=100.0)
    quote = deal.owner.quote(deal.total.report, pricing)
    honest = _deliver(deal, deal.total, quote)
    assert honest.full and honest.n_delivered == 60
    _refused(deal, quote, craft(deal, honest), error, pricing)
    assert _settles(deal, honest, pricing).price == 100.0


def test_a_subset_of_a_total_only_score_is_refused(deal: Deal) -> None:
    quote = deal.owner.quote(deal.total.report, BinaryPricing(price=100.0))
    partial = _deliver(deal, deal.total, quote, indices=[0, 1, 2])
    _refused(deal, quote, partial.to_bytes(), DeliveryError, BinaryPricing(price=100.0))


# -- one settlement per quote -------------------------------------------------------------


def test_a_retry_returns_the_stored_settlement_byte_for_byte(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    delivery = _deliver(deal, deal.mixed, quote)
    first = _settles(deal, delivery)
    for again in (delivery.to_bytes(), delivery, _deliver(deal, deal.mixed, quote).to_bytes()):
        assert deal.owner.settle(again, UNIFORM).to_bytes() == first.to_bytes()
        assert deal.session.accept_settlement(first.to_bytes()).to_bytes() == first.to_bytes()
    # another pricing function cannot re-price a settled quote either
    assert deal.owner.settle(delivery, UniformPricing(unit_price=9.0)).price == first.price
    assert _settlements(deal, quote.quote_id) == ([first.to_bytes()], [first.to_bytes()])


def test_another_delivery_for_a_settled_quote_gets_the_stored_settlement(deal: Deal) -> None:
    """The code returns the stored settlement for any delivery the quoted seller signs once
    the quote is settled (it does not re-verify): safe, nothing new is paid or recorded."""
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    first = _settles(deal, _deliver(deal, deal.mixed, quote))
    assert first.n_records_paid == N_MIXED
    subset = _deliver(deal, deal.mixed, quote, indices=[3])
    tampered = Parts.of(subset)
    tampered.X = _ulp(tampered.X, 0)
    for other in (subset.to_bytes(), tampered.crafted(subset)):
        assert deal.owner.settle(other, UNIFORM).to_bytes() == first.to_bytes()
    # but the stored settlement goes only to the quoted seller
    with pytest.raises(MDEError) as info:
        deal.owner.settle(_craft(subset, key=FORGER), UNIFORM)
    assert type(info.value) is IdentityError
    with pytest.raises(MDEError) as info:
        deal.owner.settle(_craft(subset, key=None), UNIFORM)
    assert type(info.value) is ProtocolError
    assert _settlements(deal, quote.quote_id) == ([first.to_bytes()], [first.to_bytes()])


def test_two_settles_racing_for_one_quote_record_one(deal: Deal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two processes both find the quote unsettled, verify different deliveries and record:
    the second gets the first's settlement (the race is replayed by hiding the stored one
    from the early check)."""
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    subset, full = (_deliver(deal, deal.mixed, quote, idx) for idx in (SUBSET, None))
    monkeypatch.setattr(deal.owner.ledger, "settlement", lambda quote_id: None)
    first = deal.owner.settle(subset.to_bytes(), UNIFORM)
    second = deal.owner.settle(full.to_bytes(), UNIFORM)
    monkeypatch.undo()
    assert second.to_bytes() == first.to_bytes() and first.n_records_paid == len(SUBSET)
    assert _settlements(deal, quote.quote_id)[0] == [first.to_bytes()]


def test_the_data_owner_refuses_a_second_settlement_at_another_price(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    first = _settles(deal, _deliver(deal, deal.mixed, quote, indices=SUBSET))
    higher = Settlement(**first.model_dump() | {"price": first.price + 1.0}).signed(BUYER)
    with pytest.raises(MDEError) as info:
        deal.session.accept_settlement(higher.to_bytes())
    assert type(info.value) is ProtocolError
    assert _settlements(deal, quote.quote_id) == ([first.to_bytes()], [first.to_bytes()])


def test_the_data_owner_refuses_any_second_different_settlement(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    first = _settles(deal, _deliver(deal, deal.mixed, quote, indices=SUBSET))
    other = Settlement(**first.model_dump() | {"n_records_paid": 1}).signed(BUYER)
    try:
        with pytest.raises(ProtocolError):
            deal.session.accept_settlement(other.to_bytes())
    finally:
        assert _settlements(deal, quote.quote_id) == ([first.to_bytes()], [first.to_bytes()])


# -- quotes -------------------------------------------------------------------------------


def test_a_delivery_for_a_quote_never_issued_is_refused(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    honest = _deliver(deal, deal.mixed, quote, indices=SUBSET)
    never = uuid.uuid4().hex
    for crafted in (_craft(honest, quote_id=never), _craft(honest, key=FORGER, quote_id=never)):
        with pytest.raises(MDEError) as info:
            deal.owner.settle(crafted, UNIFORM)
        assert type(info.value) is ProtocolError
    assert _settlements(deal, never) == ([], [])
    assert _settlements(deal, quote.quote_id) == ([], [])


def _quote_rows(deal: Deal, quote_id: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(deal.session.ledger.path)) as db:
        return db.execute("SELECT price FROM quotes WHERE quote_id = ?", (quote_id,)).fetchall()


def test_the_data_owner_delivers_only_against_its_buyers_quotes(deal: Deal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    fields = quote.model_dump()
    forged = {
        "another buyer's quote": (
            make_quote(deal.mixed.report, UNIFORM, FORGER, Ledger(tmp_path / "l.sqlite")),
            IdentityError,
        ),
        "re-signed at ten times the price": (
            SignedQuote(**fields | {"price": 10 * quote.price}).signed(FORGER),
            IdentityError,
        ),
        "unsigned": (SignedQuote(**fields), ProtocolError),
        "edited after signing": (
            quote.model_copy(update={"price": 10 * quote.price}),
            ProtocolError,
        ),
        "for another seller": (
            SignedQuote(**fields | {"seller": FORGER.public_hex}).signed(BUYER),
            ProtocolError,
        ),
    }
    for name, (bad, error) in forged.items():
        with pytest.raises(MDEError) as info:
            deal.session.deliver(bad.to_bytes(), deal.mixed.X, deal.mixed.y, indices=SUBSET)
        assert type(info.value) is error, name
        assert _quote_rows(deal, bad.quote_id) == [], name
    settlement = _settles(deal, _deliver(deal, deal.mixed, quote, indices=SUBSET))
    assert settlement.quoted_price == quote.price  # the price the buyer signed, not a forged one


# -- prices -------------------------------------------------------------------------------


def test_a_uniform_settlement_is_the_closed_form_price(deal: Deal) -> None:
    pricing = UniformPricing(unit_price=2.5, threshold=5e-4)
    exact = _exact_scores(deal, deal.mixed)
    cut = 5e-4 + 5.0 * (deal.mixed.report.record_noise or 0.0)
    bought = int(np.sum(exact > cut))
    assert 0 < bought < int(np.sum(exact > 0))  # the threshold matters
    quote = deal.owner.quote(deal.mixed.report, pricing)
    settlement = _settles(deal, _deliver(deal, deal.mixed, quote), pricing)
    assert settlement.price == 2.5 * bought == quote.price == settlement.quoted_price
    assert settlement.n_records_paid == N_MIXED
    assert settlement.verified_efficacy == pytest.approx(exact.sum(), rel=1e-9, abs=1e-12)
    assert (settlement.seller, settlement.commitment) == (
        SELLER.public_hex,
        deal.mixed.report.commitment,
    )


@pytest.mark.parametrize("above", [False, True])
def test_a_binary_settlement_is_the_closed_form_price(deal: Deal, above: bool) -> None:
    exact = float(_exact_scores(deal, deal.total).sum())
    pricing = BinaryPricing(price=100.0, threshold=2 * exact if above else exact / 2)
    quote = deal.owner.quote(deal.total.report, pricing)
    settlement = _settles(deal, _deliver(deal, deal.total, quote), pricing)
    assert settlement.price == (0.0 if above else 100.0) == quote.price
    assert settlement.verified_efficacy == pytest.approx(exact, rel=1e-9)
    assert settlement.n_records_paid == 60


def test_a_subset_under_uniform_pricing_is_paid_only_its_share(deal: Deal) -> None:
    """Uniform pricing is additive: a partition's subsets sum to the whole's price, each
    subset is paid its own records, and copies or known records delivered without their
    originals are worth nothing."""
    exact = _exact_scores(deal, deal.mixed)
    cut = 5.0 * (deal.mixed.report.record_noise or 0.0)
    worth = exact > cut
    whole = _settles(deal, _deliver(deal, deal.mixed, deal.owner.quote(deal.mixed.report, UNIFORM)))
    assert whole.price == float(worth.sum())
    parts = np.array_split(np.random.default_rng(14).permutation(N_MIXED), 3)
    paid = []
    for part in parts:
        quote = deal.owner.quote(deal.mixed.report, UNIFORM)
        settlement = _settles(deal, _deliver(deal, deal.mixed, quote, indices=part))
        assert settlement.price == float(worth[part].sum()) <= whole.price
        assert settlement.n_records_paid == len(part)
        assert settlement.verified_efficacy == pytest.approx(exact[part].sum(), abs=1e-7)
        paid.append(settlement.price)
    assert sum(paid) == whole.price
    copies = _settles(
        deal, _deliver(deal, deal.mixed, deal.owner.quote(deal.mixed.report, UNIFORM), [40, 41, 42])
    )
    assert (copies.price, copies.verified_efficacy) == (0.0, 0.0)


@pytest.mark.parametrize(
    "pricing",
    [BinaryPricing(price=100.0), LinearPricing(rate=1000.0)],
    ids=["binary", "linear"],
)
def test_a_subset_under_whole_offer_pricing_is_refused(deal: Deal, pricing: Any) -> None:
    quote = deal.owner.quote(deal.mixed.report, pricing)
    best = [i for i, s in enumerate(deal.mixed.report.record_scores or []) if s > 1e-4]
    with pytest.raises(MDEError) as info:  # the best records alone would be paid 100
        deal.owner.settle(_deliver(deal, deal.mixed, quote, indices=best), pricing)
    assert type(info.value) is DeliveryError and "whole offer" in str(info.value)
    assert _settlements(deal, quote.quote_id) == ([], [])


def test_a_settlement_never_exceeds_its_quote(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    settlement = deal.owner.settle(_deliver(deal, deal.mixed, quote, indices=SUBSET), UNIFORM)
    assert 0 < settlement.price <= quote.price


# -- the data owner accepts the settlement ------------------------------------------------


def test_tampered_settlements_are_refused_by_the_data_owner(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    settlement = deal.owner.settle(_deliver(deal, deal.mixed, quote, indices=SUBSET), UNIFORM)
    fields = settlement.model_dump() | {"price": 1000.0}
    for bad, error in (
        (Settlement(**fields).signed(FORGER), IdentityError),
        (Settlement(**fields), ProtocolError),
        (settlement.model_copy(update={"price": 1000.0}), ProtocolError),
    ):
        with pytest.raises(MDEError) as info:
            deal.session.accept_settlement(bad.to_bytes())
        assert type(info.value) is error
        assert _settlements(deal, quote.quote_id)[1] == []
    assert deal.session.accept_settlement(settlement.to_bytes()).price == len(SUBSET)
    assert _settlements(deal, quote.quote_id)[1] == [settlement.to_bytes()]


def test_a_settlement_for_an_unknown_commitment_is_refused(deal: Deal) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    settlement = deal.owner.settle(_deliver(deal, deal.mixed, quote, indices=SUBSET), UNIFORM)
    bad = Settlement(**settlement.model_dump() | {"commitment": "ab" * 32}).signed(BUYER)
    with pytest.raises(MDEError) as info:
        deal.session.accept_settlement(bad.to_bytes())
    assert type(info.value) is StorageError  # "this ledger made no commitment ..."
    assert _settlements(deal, quote.quote_id)[1] == []


@pytest.mark.parametrize("case", ["unknown quote", "another commitment than its quote's"])
def test_a_settlement_for_a_quote_not_delivered_is_refused(deal: Deal, case: str) -> None:
    quote = deal.owner.quote(deal.mixed.report, UNIFORM)
    settlement = deal.owner.settle(_deliver(deal, deal.mixed, quote, indices=SUBSET), UNIFORM)
    edit = (
        {"quote_id": uuid.uuid4().hex}
        if case == "unknown quote"
        else {"commitment": deal.clean.report.commitment}
    )
    bad = Settlement(**settlement.model_dump() | edit).signed(BUYER)
    try:
        with pytest.raises(ProtocolError):
            deal.session.accept_settlement(bad.to_bytes())
    finally:
        assert _settlements(deal, bad.quote_id)[1] == []


# -- kill -9 during settlement and during open ----------------------------------------------

_CHILD = r'''
"""Settle (or open) every item of a config; optionally die at one ledger commit."""
import hashlib, json, os, re, signal, sqlite3, sys

cfg = json.loads(open(sys.argv[1]).read())
kill = cfg.get("kill")
if kill:  # this script's own sqlite3, not the library: die just before or after one COMMIT
    _connect, _seen = sqlite3.connect, [0]
    _insert = re.compile(r"\s*INSERT\b.*\bINTO\s+" + kill["table"] + r"\b", re.I | re.S)

    class _Conn:
        def __init__(self, db):
            self._db, self._armed = db, False

        def __getattr__(self, name):
            return getattr(self._db, name)

        def __enter__(self):
            self._db.__enter__()
            return self

        def __exit__(self, *exc):
            return self._db.__exit__(*exc)

        def execute(self, sql, *args):
            if _insert.match(sql):
                _seen[0] += 1
                self._armed = _seen[0] == kill["nth"]
            commit = self._armed and sql.strip().upper() == "COMMIT"
            if commit and kill["when"] == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            out = self._db.execute(sql, *args)
            if commit and kill["when"] == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return out

    def _patched(path, *args, **kwargs):
        db = _connect(path, *args, **kwargs)
        return _Conn(db) if os.fspath(path) == kill["db"] else db

    sqlite3.connect = _patched

import mde
from mde.data_owner.deliver import accept_settlement
from mde.data_owner.ledger import DataOwnerLedger
from mde.wire.deal import Settlement
from mde.wire.signing import SigningKey
from pricing import UniformPricing

owner = mde.load_proxy(
    cfg["proxy"], ledger=cfg["owner_ledger"], identity=SigningKey.load(cfg["buyer"])
)
print("ready", flush=True)
if cfg["task"] == "settle":
    book, pricing = DataOwnerLedger(cfg["do_ledger"]), UniformPricing(**cfg["pricing"])
    for path in cfg["items"]:
        settlement = owner.settle(open(path, "rb").read(), pricing)
        blob = settlement.to_bytes()
        print("settled", settlement.quote_id, hashlib.sha256(blob).hexdigest(), flush=True)
        accept_settlement(book, SigningKey.load(cfg["seller"]), Settlement.from_bytes(blob))
        print("accepted", settlement.quote_id, flush=True)
else:
    for aid, path in cfg["items"]:
        try:
            report = owner.open(open(path, "rb").read(), expect_seller=cfg["seller"])
        except mde.ReplayError:
            print("replay", aid, flush=True)
            continue
        print("opened", report.artifact_id, repr(report.efficacy), flush=True)
print("done", flush=True)
'''

_ROOT = str(Path(mde.__file__).resolve().parents[1])  # the checkout the tests import


def _run_child(
    tmp: Path, cfg: dict[str, Any], kill_after: int | None = None, delay: float = 0.0
) -> tuple[int, list[list[str]]]:
    """Run the child on ``cfg``; with ``kill_after``, SIGKILL it ``delay`` s after it printed
    that many lines. Returns its exit code and the complete lines it printed, split."""
    script = tmp / "child.py"
    script.write_text(_CHILD)
    run = len(list(tmp.glob("cfg-*.json")))
    cfg_path, err_path = tmp / f"cfg-{run}.json", tmp / f"err-{run}.txt"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ)
    env["MDE_HOME"] = str(tmp / "home")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(cfg_path)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
    assert proc.stdout is not None
    fd, buf, lines = proc.stdout.fileno(), b"", []
    deadline = time.monotonic() + 180.0
    try:
        while kill_after is None or len(lines) < kill_after:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"child stalled: {err_path.read_text()[-2000:]}"
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            *complete, buf = (buf + chunk).split(b"\n")
            lines += complete
        if kill_after is not None and proc.poll() is None:
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
        *complete, _ = (buf + proc.stdout.read()).split(b"\n")  # a torn last line is dropped
        lines += complete
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    assert code in (0, -signal.SIGKILL), err_path.read_text()[-3000:]
    return code, [line.decode().split() for line in lines]


def _copy_db(src: Path, dst: Path) -> None:
    """A copy of a ledger (what it knows, for a test of its own to crash on)."""
    with closing(sqlite3.connect(src)) as a, closing(sqlite3.connect(dst)) as b:
        a.backup(b)


def _integrity_ok(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _all_settlements(path: Path, quote_ids: list[str]) -> dict[str, bytes]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT quote_id, settlement FROM settlements").fetchall()
    ours = [(q, bytes(b)) for q, b in rows if q in quote_ids]
    assert len(ours) == len({q for q, _ in ours})  # never two settlements for one quote
    return dict(ours)


def test_kill_9_during_settlement_leaves_both_ledgers_consistent(deal: Deal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each run settles and accepts every delivery from the first (a retry), and is killed
    just before or just after the model owner's settlement commit, just before the data
    owner's, or at a seeded time; afterwards each quote has none or exactly one settlement,
    the data owner's are among the model owner's, every settlement a run returned is
    recorded, and a retry completes them all."""
    owner_ledger, do_ledger = tmp_path / "owner.sqlite", tmp_path / "do.sqlite"
    _copy_db(deal.owner.ledger.path, owner_ledger)
    owner = mde.load_proxy(deal.home / "owner.mdeproxy", ledger=owner_ledger, identity=BUYER)
    rng = np.random.default_rng(14)
    quote_ids, items = [], []
    for i in range(8):
        quote = owner.quote(deal.mixed.report, UNIFORM)
        indices = None if i % 2 == 0 else rng.choice(N_MIXED, size=10, replace=False)
        path = tmp_path / f"delivery-{i}.mdedel"
        path.write_bytes(_deliver(deal, deal.mixed, quote, indices).to_bytes())
        quote_ids.append(quote.quote_id)
        items.append(str(path))
    _copy_db(deal.session.ledger.path, do_ledger)  # with the quotes delivered against
    cfg = {
        "task": "settle",
        "proxy": str(deal.home / "owner.mdeproxy"),
        "owner_ledger": str(owner_ledger),
        "buyer": str(deal.home / "buyer.pem"),
        "seller": str(deal.home / "seller.pem"),
        "do_ledger": str(do_ledger),
        "pricing": {"unit_price": 1.0},
        "items": items,
    }
    returned: dict[str, str] = {}  # quote id -> sha256 of the settlement a run returned
    runs = [
        (str(owner_ledger), "before", int(rng.integers(1, 3))),
        (str(owner_ledger), "after", int(rng.integers(1, 3))),
        (str(do_ledger), "before", int(rng.integers(1, 3))),
        None,  # at a seeded time
    ]
    expect_owner = expect_do = 0
    for kill in runs:
        if kill is None:
            code, lines = _run_child(
                tmp_path, cfg, 1 + int(rng.integers(1, 16)), float(rng.uniform(0, 0.03))
            )
        else:
            db, when, nth = kill
            spec = {"db": db, "table": "settlements", "when": when, "nth": nth}
            code, lines = _run_child(tmp_path, cfg | {"kill": spec})
            assert code == -signal.SIGKILL  # it died at that commit
            # settled and accepted quotes are prefixes of the items; the nth new insert
            # into the killed ledger is item `killed`, recorded only if the kill came after
            if db == str(owner_ledger):
                expect_owner += nth - (when == "before")
                expect_do = expect_owner - (when == "after")
            else:
                killed = expect_do + nth
                expect_owner = max(expect_owner, killed)
                expect_do = killed - (when == "before")
        for line in lines:
            if line[0] == "settled":
                assert returned.setdefault(line[1], line[2]) == line[2]  # a retry: same bytes
        _integrity_ok(owner_ledger)
        _integrity_ok(do_ledger)
        owners, dos = (
            _all_settlements(owner_ledger, quote_ids),
            _all_settlements(do_ledger, quote_ids),
        )
        assert all(owners[q] == blob for q, blob in dos.items())  # accepted only what was settled
        assert all(hashlib.sha256(owners[q]).hexdigest() == h for q, h in returned.items())
        accepted = {line[1] for line in lines if line[0] == "accepted"}
        assert accepted <= set(dos)
        for recorded in (owners, dos):  # nothing is lost and nothing skipped: a prefix
            assert set(recorded) == set(quote_ids[: len(recorded)])
        if kill is not None:  # a commit kill is deterministic: exactly this much was recorded
            assert (len(owners), len(dos)) == (expect_owner, expect_do), kill
        else:
            assert len(owners) >= expect_owner and len(dos) >= expect_do
            expect_owner, expect_do = len(owners), len(dos)
    # the retry after the crashes completes: one settlement per quote in both ledgers
    book = DataOwnerLedger(do_ledger)
    for quote_id, path in zip(quote_ids, items):
        settlement = owner.settle(Path(path).read_bytes(), UNIFORM)
        accept_settlement(book, SELLER, settlement)
        blob = settlement.to_bytes()
        assert returned.setdefault(quote_id, hashlib.sha256(blob).hexdigest()) == (
            hashlib.sha256(blob).hexdigest()
        )
    owners, dos = _all_settlements(owner_ledger, quote_ids), _all_settlements(do_ledger, quote_ids)
    assert set(owners) == set(dos) == set(quote_ids) and owners == dos


def test_kill_9_during_open_records_one_evaluation_or_none(deal: Deal, digits, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each run opens every sealed score from the first; it is killed just before or after
    the evaluation's commit, or at a seeded time. An artifact then has none or exactly one
    evaluation, every report a run returned was recorded, and the retry opens the unopened
    ones; one whose evaluation committed but whose report was lost is refused (fail closed)
    until the owner allows a repeat."""
    owner_ledger = tmp_path / "owner.sqlite"
    _copy_db(deal.owner.ledger.path, owner_ledger)
    owner = mde.load_proxy(deal.home / "owner.mdeproxy", ledger=owner_ledger, identity=BUYER)
    items, plain = [], {}
    for i in range(5):
        aid = owner.export(tmp_path / f"a{i}.mde")
        session = mde.load_artifact(
            tmp_path / f"a{i}.mde", buyer="mo", identity=SELLER, ledger=tmp_path / "do.sqlite"
        )
        X, y = digits.Xc[150 + 30 * i : 180 + 30 * i], digits.yc[150 + 30 * i : 180 + 30 * i]
        path = tmp_path / f"sealed-{i}.mdeseal"
        path.write_bytes(session.score(X, y, per_record=True).to_bytes())
        items.append([aid, str(path)])
        plain[aid] = owner.proxy.efficacy(X, y)
    owner.save(tmp_path / "owner.mdeproxy")
    cfg = {
        "task": "open",
        "proxy": str(tmp_path / "owner.mdeproxy"),
        "owner_ledger": str(owner_ledger),
        "buyer": str(deal.home / "buyer.pem"),
        "seller": SELLER.public_hex,
        "items": items,
    }
    ledger = Ledger(owner_ledger)
    rng = np.random.default_rng(5)
    reported: set[str] = set()
    kills = [("before", int(rng.integers(1, 3))), ("after", int(rng.integers(1, 3))), None]
    for kill in kills:
        before = {aid: ledger.evaluations(aid) for aid, _ in items}
        if kill is None:
            code, lines = _run_child(
                tmp_path, cfg, 1 + int(rng.integers(0, 4)), float(rng.uniform(0, 0.03))
            )
        else:
            spec = {
                "db": str(owner_ledger),
                "table": "evaluations",
                "when": kill[0],
                "nth": kill[1],
            }
            code, lines = _run_child(tmp_path, cfg | {"kill": spec})
            assert code == -signal.SIGKILL
        _integrity_ok(owner_ledger)
        after = {aid: ledger.evaluations(aid) for aid, _ in items}
        assert set(after.values()) <= {0, 1}
        for line in lines:
            if line[0] == "opened":  # a returned report was recorded, and only once
                assert before[line[1]] == 0 and after[line[1]] == 1 and line[1] not in reported
                assert float(line[2]) == pytest.approx(plain[line[1]], rel=1e-3, abs=1e-6)
                reported.add(line[1])
            elif line[0] == "replay":
                assert before[line[1]] == 1
        if kill is not None:  # deterministic: the killed open counts only after its commit
            newly = sum(after.values()) - sum(before.values())
            assert newly == kill[1] - (kill[0] == "before")
    lost = {aid for aid, _ in items if ledger.evaluations(aid) == 1} - reported
    assert lost  # the "after" kill lost a report whose evaluation counts
    for aid, path in items:
        sealed = Path(path).read_bytes()
        if ledger.evaluations(aid) == 0:  # the retry opens it
            report = owner.open(sealed, expect_seller=SELLER.public_hex)
            assert report.efficacy == pytest.approx(plain[aid], rel=1e-3, abs=1e-6)
            continue
        with pytest.raises(MDEError) as info:  # evaluated once: fail closed
            owner.open(sealed, expect_seller=SELLER.public_hex)
        assert type(info.value) is ReplayError
        if aid in lost:  # its report was lost: the owner may accept one repeat
            report = owner.open(sealed, expect_seller=SELLER.public_hex, allow_repeat=True)
            assert report.efficacy == pytest.approx(plain[aid], rel=1e-3, abs=1e-6)
    assert {aid: ledger.evaluations(aid) for aid, _ in items} == {
        aid: 1 + (aid in lost) for aid, _ in items
    }
