"""The data owner's ledger (SQLite): buyers pinned, answers released, privacy spent,
requests decrypted, commitment salts, quotes and settlements.

Every check-and-record is one ``BEGIN IMMEDIATE`` transaction, so budgets hold across
restarts and concurrent processes, and a crash (``kill -9``) at any point leaves either the
whole answer recorded or nothing. An answer is recorded *before* the score is returned:
a crash in between spends budget without releasing anything (fail closed).

Default path: ``$MDE_HOME/data-owner-ledger.sqlite``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from mde.data_owner.budgets import check_buyer, check_release
from mde.data_owner.policy import GuardPolicy, composed_epsilon
from mde.errors import IdentityError, ProtocolError, StorageError
from mde.ledger_db import open_ledger, transaction
from mde.paths import mde_home

__all__ = ["DataOwnerLedger", "default_data_owner_ledger_path"]

SCHEMA_VERSION = 1
_WHAT = "data owner's ledger"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buyers (
    name TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE, pinned_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT, buyer TEXT NOT NULL, artifact TEXT NOT NULL,
    dataset TEXT NOT NULL, numbers INTEGER NOT NULL, noise_multiplier REAL,
    delta REAL, commitment TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS commitments (
    commitment TEXT PRIMARY KEY, seed BLOB NOT NULL, n_records INTEGER NOT NULL,
    dataset TEXT NOT NULL, buyer TEXT NOT NULL, artifact TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decryptions (
    request_id TEXT PRIMARY KEY, buyer TEXT NOT NULL, dataset TEXT NOT NULL,
    result_id TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quotes (
    quote_id TEXT PRIMARY KEY, buyer TEXT NOT NULL, commitment TEXT NOT NULL,
    price REAL NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS settlements (
    quote_id TEXT PRIMARY KEY, buyer TEXT NOT NULL, price REAL NOT NULL,
    settlement BLOB NOT NULL, at REAL NOT NULL);
"""


def default_data_owner_ledger_path() -> Path:
    """``$MDE_HOME/data-owner-ledger.sqlite`` (:func:`mde.paths.mde_home`)."""
    return mde_home() / "data-owner-ledger.sqlite"


class DataOwnerLedger:
    """The data owner's SQLite ledger.

    Parameters
    ----------
    path : str or Path, optional
        The database file; default :func:`default_data_owner_ledger_path`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_data_owner_ledger_path()
        open_ledger(self.path, _SCHEMA, SCHEMA_VERSION, _WHAT)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One immediate transaction: committed on success, rolled back on any error."""
        return transaction(self.path, _WHAT)

    # -- buyers ---------------------------------------------------------------------
    def pin(self, name: str, public_key: str) -> None:
        """Pin ``name`` to ``public_key`` (a no-op if already pinned to it).

        Raises
        ------
        IdentityError
            If the name or the key is already pinned to another.
        """
        with self._write() as db:
            self._pin(db, name, public_key)

    def _pin(self, db: sqlite3.Connection, name: str, key: str) -> None:
        row = db.execute(
            "SELECT name, public_key FROM buyers WHERE name = ? OR public_key = ?", (name, key)
        ).fetchone()
        if row is None:
            db.execute("INSERT INTO buyers VALUES (?, ?, ?)", (name, key, time.time()))
        elif tuple(row) != (name, key):
            raise IdentityError(
                f"buyer {row[0]!r} is pinned to key {row[1][:16]}...; this artifact is signed "
                f"by {key[:16]}... as {name!r}. It is not the buyer you dealt with before; "
                "if it changed its key, unpin it deliberately (a new ledger entry)."
            )

    def buyer_name(self, public_key: str) -> str | None:
        """The pinned name of ``public_key``, or None."""
        with self._write() as db:
            row = db.execute("SELECT name FROM buyers WHERE public_key = ?", (public_key,))
            found = row.fetchone()
        return None if found is None else str(found[0])

    # -- answers (budgets and privacy) -------------------------------------------------
    def precheck(
        self, buyer: str, artifact: str, policy: GuardPolicy, buyer_name: str | None = None
    ) -> None:
        """Refuse early (before any record is scored) what :meth:`record_answer` would
        refuse whatever the data: another key under ``buyer_name``, an unpinned buyer
        under ``require_pinned``, a buyer past its artifacts. Records nothing."""
        with self._write() as db:
            if buyer_name is not None:
                row = db.execute(
                    "SELECT name, public_key FROM buyers WHERE name = ? OR public_key = ?",
                    (buyer_name, buyer),
                ).fetchone()
                if row is not None and tuple(row) != (buyer_name, buyer):
                    self._pin(db, buyer_name, buyer)  # raises IdentityError, saying why
            check_buyer(db, buyer, artifact, policy)

    def record_answer(
        self,
        *,
        buyer: str,
        artifact: str,
        dataset: str,
        numbers: int,
        n_records: int,
        commitment: str,
        seed: bytes | None,
        policy: GuardPolicy,
        buyer_name: str | None = None,
        decryption: tuple[str, str] | None = None,
    ) -> None:
        """Check every budget and record one answer with its commitment salt, atomically.

        ``decryption=(request_id, result_id)`` (hidden mode) also records the one decryption
        of that request in the same transaction.

        Raises
        ------
        BudgetError
            If the answer would pass a budget (:mod:`mde.data_owner.budgets`); nothing is
            recorded then.
        IdentityError
            If ``buyer_name`` is pinned to another key, or ``policy.require_pinned`` and the
            buyer is not pinned.
        ProtocolError
            If the request was already decrypted.
        """
        dp = policy.dp
        with self._write() as db:
            check_buyer(db, buyer, artifact, policy)  # require_pinned: pinned *before*
            if buyer_name is not None:
                self._pin(db, buyer_name, buyer)
            check_release(
                db,
                buyer=buyer,
                dataset=dataset,
                numbers=numbers,
                n_records=n_records,
                policy=policy,
                hidden=decryption is not None,
            )
            if decryption is not None:
                self._decryption(db, *decryption, buyer, dataset)
            db.execute(
                "INSERT INTO answers (buyer, artifact, dataset, numbers, noise_multiplier, "
                "delta, commitment, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    buyer,
                    artifact,
                    dataset,
                    numbers,
                    None if dp is None else dp.noise_multiplier,
                    None if dp is None else dp.delta,
                    commitment,
                    time.time(),
                ),
            )
            if seed is not None:
                db.execute(
                    "INSERT OR IGNORE INTO commitments VALUES (?, ?, ?, ?, ?, ?)",
                    (commitment, seed, n_records, dataset, buyer, artifact),
                )

    def privacy_spent(self, dataset: str, delta: float) -> float:
        """Composed epsilon at ``delta`` of every DP answer about ``dataset``."""
        with self._write() as db:
            zs = [
                float(r[0])
                for r in db.execute(
                    "SELECT noise_multiplier FROM answers WHERE dataset = ? AND "
                    "noise_multiplier IS NOT NULL",
                    (dataset,),
                )
            ]
        return composed_epsilon(zs, delta)

    def answers(self, buyer: str | None = None) -> list[dict[str, Any]]:
        """Recorded answers (optionally of one buyer), oldest first."""
        with self._write() as db:
            cur = db.execute(
                "SELECT buyer, artifact, dataset, numbers, noise_multiplier, commitment, at "
                "FROM answers" + ("" if buyer is None else " WHERE buyer = ?") + " ORDER BY id",
                () if buyer is None else (buyer,),
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def seed(self, commitment: str) -> bytes:
        """The salt seed of a commitment this data owner made (see :meth:`commitment`)."""
        return self.commitment(commitment)[0]

    def commitment(self, commitment: str) -> tuple[bytes, int, str]:
        """``(seed, n_records, buyer key)`` of a commitment this data owner made.

        Raises
        ------
        StorageError
            If this ledger holds no such commitment.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT seed, n_records, buyer FROM commitments WHERE commitment = ?",
                (commitment,),
            ).fetchone()
        if row is None:
            raise StorageError(
                f"this ledger ({str(self.path)!r}) made no commitment {commitment[:16]}...; "
                "deliver from the ledger that scored the data."
            )
        return bytes(row[0]), int(row[1]), str(row[2])

    # -- hidden mode ------------------------------------------------------------------
    def record_commitment(
        self, commitment: str, seed: bytes, n_records: int, dataset: str, buyer: str, artifact: str
    ) -> None:
        """Keep a commitment's salt seed (hidden mode records it when it encrypts)."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO commitments VALUES (?, ?, ?, ?, ?, ?)",
                (commitment, seed, n_records, dataset, buyer, artifact),
            )

    def decrypted(self, request_id: str) -> bool:
        """Whether a result for ``request_id`` was decrypted."""
        with self._write() as db:
            row = db.execute("SELECT 1 FROM decryptions WHERE request_id = ?", (request_id,))
            return row.fetchone() is not None

    def _decryption(
        self, db: sqlite3.Connection, request_id: str, result_id: str, buyer: str, dataset: str
    ) -> None:
        if db.execute("SELECT 1 FROM decryptions WHERE request_id = ?", (request_id,)).fetchone():
            raise ProtocolError(
                f"a result for request {request_id} was already decrypted (ledger "
                f"{str(self.path)!r}); a second decryption would leak more. Encrypt again."
            )
        db.execute(
            "INSERT INTO decryptions VALUES (?, ?, ?, ?, ?)",
            (request_id, buyer, dataset, result_id, time.time()),
        )

    # -- the deal ---------------------------------------------------------------------
    def record_quote(self, quote_id: str, buyer: str, commitment: str, price: float) -> None:
        """Record a quote received (idempotent for the same quote)."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO quotes VALUES (?, ?, ?, ?, ?)",
                (quote_id, buyer, commitment, price, time.time()),
            )

    def quote(self, quote_id: str) -> tuple[str, str, float] | None:
        """``(buyer, commitment, price)`` of a quote delivered against, or None."""
        with self._write() as db:
            row = db.execute(
                "SELECT buyer, commitment, price FROM quotes WHERE quote_id = ?", (quote_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), float(row[2]))

    def record_settlement(self, quote_id: str, buyer: str, price: float, blob: bytes) -> bytes:
        """Record a signed settlement, once per quote; return the one that stands.

        Raises
        ------
        ProtocolError
            If this quote was already settled with another settlement.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT settlement FROM settlements WHERE quote_id = ?", (quote_id,)
            ).fetchone()
            if row is not None:
                if bytes(row[0]) != blob:
                    raise ProtocolError(
                        f"quote {quote_id} was already settled by another settlement; a second, "
                        "different one is refused (the first stands)."
                    )
                return blob
            db.execute(
                "INSERT INTO settlements VALUES (?, ?, ?, ?, ?)",
                (quote_id, buyer, price, blob, time.time()),
            )
        return blob

    def settlements(self) -> list[tuple[str, float]]:
        """``(quote_id, price)`` of every settlement, in order."""
        with self._write() as db:
            return [
                (str(q), float(p))
                for q, p in db.execute("SELECT quote_id, price FROM settlements ORDER BY at")
            ]
