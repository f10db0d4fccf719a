"""The model owner's ledger: evaluations, quotes and settlements in SQLite, in transactions.

The one-evaluation rule (an artifact is opened or evaluated once unless the owner accepts
the extra leakage) must hold across restarts, unsaved proxy files and concurrent
processes, so it is not kept in the proxy file: :meth:`Ledger.record_evaluation` checks
and records in one ``BEGIN IMMEDIATE`` transaction, and a report is only returned once its
evaluation is committed. A crash before the commit records nothing; after it, the
evaluation counts (fail closed: an artifact is never evaluated twice by accident).
A quote is recorded with the report it prices; a settlement once per quote, in one
transaction, so a crash during settlement leaves the quote either settled (the stored
settlement is returned again) or still open.

The default path is ``$MDE_HOME/owner-ledger.sqlite`` (``MDE_HOME`` defaults to
``$XDG_DATA_HOME/mde``, i.e. ``~/.local/share/mde``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from mde.errors import ProtocolError, ReplayError, StorageError
from mde.paths import mde_home

__all__ = ["Ledger", "default_ledger_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    artifact_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (artifact_id, seq)
);
CREATE TABLE IF NOT EXISTS quotes (
    quote_id TEXT PRIMARY KEY, artifact_id TEXT NOT NULL, commitment TEXT NOT NULL,
    seller TEXT NOT NULL, price REAL NOT NULL, report TEXT NOT NULL, pricing TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS settlements (
    quote_id TEXT PRIMARY KEY REFERENCES quotes(quote_id), price REAL NOT NULL,
    settlement BLOB NOT NULL, at REAL NOT NULL
);
"""


def default_ledger_path() -> Path:
    """``$MDE_HOME/owner-ledger.sqlite`` (:func:`mde.paths.mde_home`)."""
    return mde_home() / "owner-ledger.sqlite"


class Ledger:
    """The model owner's SQLite ledger of evaluations.

    Parameters
    ----------
    path : str or Path, optional
        The database file (created with its folder if missing); default
        :func:`default_ledger_path`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"ledger {str(self.path)!r} cannot be opened: {exc}. Choose another path "
                "(ledger=...) or set MDE_HOME."
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below)
        return sqlite3.connect(self.path, timeout=30.0, isolation_level=None)

    def evaluations(self, artifact_id: str) -> int:
        """How often ``artifact_id`` was evaluated (committed evaluations only)."""
        try:
            with self._connect() as db:
                row = db.execute(
                    "SELECT COUNT(*) FROM evaluations WHERE artifact_id = ?", (artifact_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {str(self.path)!r} cannot be read: {exc}") from exc
        return int(row[0])

    def _replay(self, artifact_id: str, count: int) -> ReplayError:
        return ReplayError(
            f"artifact {artifact_id!r} was already evaluated ({count}x, ledger "
            f"{str(self.path)!r}); repeated evaluations leak the value vector. Export a new "
            "artifact, or pass allow_repeat=True if you accept that."
        )

    def check(self, artifact_id: str, allow_repeat: bool) -> None:
        """Fail fast (before any decryption) if the artifact was already evaluated.

        Raises
        ------
        ReplayError
            If it was and ``allow_repeat`` is False.
        """
        count = self.evaluations(artifact_id)
        if count >= 1 and not allow_repeat:
            raise self._replay(artifact_id, count)

    def record_evaluation(self, artifact_id: str, kind: str, allow_repeat: bool) -> int:
        """Check the one-evaluation rule and record one evaluation, atomically.

        Returns
        -------
        int
            The number of evaluations of ``artifact_id`` including this one.

        Raises
        ------
        ReplayError
            If the artifact was already evaluated and ``allow_repeat`` is False.
        StorageError
            If the database cannot be written.
        """
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: check and insert are atomic
            (count,) = db.execute(
                "SELECT COUNT(*) FROM evaluations WHERE artifact_id = ?", (artifact_id,)
            ).fetchone()
            if count >= 1 and not allow_repeat:
                db.execute("ROLLBACK")
                raise self._replay(artifact_id, int(count))
            db.execute(
                "INSERT INTO evaluations (artifact_id, seq, kind, at) VALUES (?, ?, ?, ?)",
                (artifact_id, count + 1, kind, time.time()),
            )
            db.execute("COMMIT")
            return int(count) + 1
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StorageError(f"ledger {str(self.path)!r} cannot be written: {exc}") from exc
        finally:
            db.close()

    def record_quote(
        self,
        quote_id: str,
        artifact_id: str,
        commitment: str,
        seller: str,
        price: float,
        report_json: str,
        pricing: str,
    ) -> None:
        """Record a provisional quote and the report it prices."""
        db = self._connect()
        try:
            db.execute(
                "INSERT INTO quotes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    quote_id,
                    artifact_id,
                    commitment,
                    seller,
                    price,
                    report_json,
                    pricing,
                    time.time(),
                ),
            )
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {str(self.path)!r} cannot be written: {exc}") from exc
        finally:
            db.close()

    def quote(self, quote_id: str) -> tuple[str, str, float, str]:
        """``(seller, report_json, price, pricing)`` of a recorded quote.

        Raises
        ------
        ProtocolError
            If this ledger holds no such quote.
        """
        try:
            with self._connect() as db:
                row = db.execute(
                    "SELECT seller, report, price, pricing FROM quotes WHERE quote_id = ?",
                    (quote_id,),
                ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {str(self.path)!r} cannot be read: {exc}") from exc
        if row is None:
            raise ProtocolError(
                f"no quote {quote_id!r} in ledger {str(self.path)!r}; settle with the ledger "
                "that made the quote."
            )
        return str(row[0]), str(row[1]), float(row[2]), str(row[3])

    def settlement(self, quote_id: str) -> bytes | None:
        """The stored settlement of ``quote_id``, or None if it is not settled."""
        try:
            with self._connect() as db:
                row = db.execute(
                    "SELECT settlement FROM settlements WHERE quote_id = ?", (quote_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {str(self.path)!r} cannot be read: {exc}") from exc
        return None if row is None else bytes(row[0])

    def record_settlement(self, quote_id: str, price: float, blob: bytes) -> bytes:
        """Record the settlement of a quote once; return the settlement that stands (an
        earlier one if this quote was already settled: a retry never settles twice)."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT settlement FROM settlements WHERE quote_id = ?", (quote_id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO settlements VALUES (?, ?, ?, ?)",
                    (quote_id, price, blob, time.time()),
                )
            db.execute("COMMIT")
            return blob if row is None else bytes(row[0])
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StorageError(f"ledger {str(self.path)!r} cannot be written: {exc}") from exc
        finally:
            db.close()
