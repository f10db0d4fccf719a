"""The model owner's ledger (SQLite): exported artifacts' secrets, evaluations, pending
hidden-mode masks, quotes and settlements, each change in one transaction.

The one-evaluation rule (an artifact is opened or evaluated once unless the owner accepts
the extra leakage) must hold across restarts, unsaved proxy files and concurrent
processes, so it is not kept in the proxy file: :meth:`Ledger.record_evaluation` checks
and records in one ``BEGIN IMMEDIATE`` transaction, and a report is only returned once its
evaluation is committed. A crash before the commit records nothing; after it, the
evaluation counts (fail closed: an artifact is never evaluated twice by accident). A
hidden-mode mask is recorded with its evaluation and taken once, atomically. A quote is
recorded with the report it prices; a settlement once per quote, so a crash during
settlement leaves the quote either settled (the stored settlement is returned again) or
still open.

The default path is ``$MDE_HOME/owner-ledger.sqlite`` (``MDE_HOME`` defaults to
``$XDG_DATA_HOME/mde``, i.e. ``~/.local/share/mde``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path

from mde.errors import ProtocolError, ReplayError
from mde.ledger_db import open_ledger, transaction
from mde.paths import mde_home

__all__ = ["Ledger", "default_ledger_path"]

SCHEMA_VERSION = 2  # 2: artifacts hold each artifact's own CKKS secret key
_WHAT = "model owner's ledger"
_SCHEMA = """
CREATE TABLE artifacts (
    artifact_id TEXT PRIMARY KEY, proxy_id TEXT NOT NULL, record TEXT NOT NULL,
    secret BLOB, at REAL NOT NULL);
CREATE TABLE evaluations (
    artifact_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (artifact_id, seq));
CREATE TABLE pending (
    result_id TEXT PRIMARY KEY, artifact_id TEXT NOT NULL, record TEXT NOT NULL,
    opened INTEGER NOT NULL DEFAULT 0, at REAL NOT NULL);
CREATE TABLE quotes (
    quote_id TEXT PRIMARY KEY, artifact_id TEXT NOT NULL, commitment TEXT NOT NULL,
    seller TEXT NOT NULL, price REAL NOT NULL, report TEXT NOT NULL, pricing TEXT NOT NULL,
    at REAL NOT NULL);
CREATE TABLE settlements (
    quote_id TEXT PRIMARY KEY REFERENCES quotes(quote_id), price REAL NOT NULL,
    settlement BLOB NOT NULL, at REAL NOT NULL);
"""


def default_ledger_path() -> Path:
    """``$MDE_HOME/owner-ledger.sqlite`` (:func:`mde.paths.mde_home`)."""
    return mde_home() / "owner-ledger.sqlite"


class Ledger:
    """The model owner's SQLite ledger.

    Parameters
    ----------
    path : str or Path, optional
        The database file (created with its folder if missing); default
        :func:`default_ledger_path`.

    Raises
    ------
    StorageError
        If the file cannot be opened, is not a ledger, or has another schema version.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        open_ledger(self.path, _SCHEMA, SCHEMA_VERSION, _WHAT)

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, _WHAT)

    # -- artifacts (the session) ----------------------------------------------------------
    def record_artifact(
        self, artifact_id: str, proxy_id: str, record_json: str, secret: bytes | None = None
    ) -> None:
        """Keep the secrets of an exported artifact (its record and, for a sealed-value
        artifact, its own CKKS secret key) before the artifact file is written."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?)",
                (artifact_id, proxy_id, record_json, secret, time.time()),
            )

    def artifact_secret(self, artifact_id: str, proxy_id: str) -> bytes | None:
        """The CKKS secret key of an artifact this proxy exported, or None."""
        with self._tx() as db:
            row = db.execute(
                "SELECT secret FROM artifacts WHERE artifact_id = ? AND proxy_id = ?",
                (artifact_id, proxy_id),
            ).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def artifact(self, artifact_id: str) -> tuple[str, str] | None:
        """``(proxy_id, record_json)`` of an exported artifact, or None."""
        with self._tx() as db:
            row = db.execute(
                "SELECT proxy_id, record FROM artifacts WHERE artifact_id = ?", (artifact_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def artifacts(self, proxy_id: str) -> list[tuple[str, str]]:
        """``(artifact_id, record_json)`` of every artifact a proxy exported, in order."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT artifact_id, record FROM artifacts WHERE proxy_id = ? ORDER BY rowid",
                (proxy_id,),
            ).fetchall()
        return [(str(a), str(r)) for a, r in rows]

    # -- evaluations ------------------------------------------------------------------
    def evaluations(self, artifact_id: str) -> int:
        """How often ``artifact_id`` was evaluated (committed evaluations only)."""
        with self._tx() as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM evaluations WHERE artifact_id = ?", (artifact_id,)
            ).fetchone()
        return int(count)

    def _replay(self, artifact_id: str, count: int) -> ReplayError:
        return ReplayError(
            f"artifact {artifact_id!r} was already evaluated ({count}x, ledger "
            f"{str(self.path)!r}); repeated evaluations leak the value vector. Export a new "
            "artifact, or allow the repeat (allow_repeat=True, mde open --allow-repeat) if you "
            "accept that."
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

    def record_evaluation(
        self,
        artifact_id: str,
        kind: str,
        allow_repeat: bool,
        pending: tuple[str, str] | None = None,
    ) -> int:
        """Check the one-evaluation rule and record one evaluation, atomically; with
        ``pending=(result_id, mask_json)`` (hidden mode) also the mask to open it with.

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
        with self._tx() as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM evaluations WHERE artifact_id = ?", (artifact_id,)
            ).fetchone()
            if count >= 1 and not allow_repeat:
                raise self._replay(artifact_id, int(count))
            db.execute(
                "INSERT INTO evaluations (artifact_id, seq, kind, at) VALUES (?, ?, ?, ?)",
                (artifact_id, count + 1, kind, time.time()),
            )
            if pending is not None:
                db.execute(
                    "INSERT INTO pending (result_id, artifact_id, record, at) VALUES (?, ?, ?, ?)",
                    (pending[0], artifact_id, pending[1], time.time()),
                )
        return int(count) + 1

    def pending(self, artifact_id: str) -> list[str]:
        """Result ids of an artifact's masked results not opened yet."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT result_id FROM pending WHERE artifact_id = ? AND opened = 0 ORDER BY rowid",
                (artifact_id,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def pending_mask(self, result_id: str, artifact_id: str) -> str | None:
        """The mask of a result of ``artifact_id`` not opened yet, or None."""
        with self._tx() as db:
            row = db.execute(
                "SELECT record FROM pending WHERE result_id = ? AND artifact_id = ? AND opened = 0",
                (result_id, artifact_id),
            ).fetchone()
        return None if row is None else str(row[0])

    def mark_opened(self, result_id: str) -> bool:
        """Mark a pending result opened; False if it was already (a concurrent open won)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE pending SET opened = 1 WHERE result_id = ? AND opened = 0", (result_id,)
            )
            return cur.rowcount == 1

    # -- the deal ---------------------------------------------------------------------
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
        with self._tx() as db:
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

    def quote(self, quote_id: str) -> tuple[str, str, float, str]:
        """``(seller, report_json, price, pricing)`` of a recorded quote.

        Raises
        ------
        ProtocolError
            If this ledger holds no such quote.
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT seller, report, price, pricing FROM quotes WHERE quote_id = ?",
                (quote_id,),
            ).fetchone()
        if row is None:
            raise ProtocolError(
                f"no quote {quote_id!r} in ledger {str(self.path)!r}; settle with the ledger "
                "that made the quote."
            )
        return str(row[0]), str(row[1]), float(row[2]), str(row[3])

    def settlement(self, quote_id: str) -> bytes | None:
        """The stored settlement of ``quote_id``, or None if it is not settled."""
        with self._tx() as db:
            row = db.execute(
                "SELECT settlement FROM settlements WHERE quote_id = ?", (quote_id,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def record_settlement(self, quote_id: str, price: float, blob: bytes) -> bytes:
        """Record the settlement of a quote once; return the settlement that stands (an
        earlier one if this quote was already settled: a retry never settles twice)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT settlement FROM settlements WHERE quote_id = ?", (quote_id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO settlements VALUES (?, ?, ?, ?)",
                    (quote_id, price, blob, time.time()),
                )
        return blob if row is None else bytes(row[0])
