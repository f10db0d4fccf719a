"""SQLite plumbing shared by the two owners' ledgers: a versioned schema and one shape of
transaction (``BEGIN IMMEDIATE``, committed on success, rolled back on any error).

Every SQLite failure (a locked, damaged or foreign file) becomes a
:class:`~mde.errors.StorageError` that names the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mde.errors import StorageError

__all__ = ["open_ledger", "transaction"]


def open_ledger(path: Path, schema: str, version: int, what: str) -> None:
    """Create the ledger at ``path`` (and its folder) or check that it has ``version``.

    Raises
    ------
    StorageError
        If the file cannot be opened, is not SQLite, or has another schema version.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a ledger holds secrets (salt seeds, sentinels, masks): readable by its owner only
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)  # also a ledger made before ledgers were private
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")  # one creator at a time
            (found,) = db.execute("PRAGMA user_version").fetchone()
            tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if found == 0 and tables == 0:
                for statement in schema.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {int(version)}")
            db.execute("COMMIT")
        finally:
            db.close()
    except (OSError, sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged schema's text
        raise StorageError(
            f"{what} {str(path)!r} cannot be opened: {exc}. Choose another path or set MDE_HOME."
        ) from exc
    if found != version and not (found == 0 and tables == 0):
        raise StorageError(
            f"{what} {str(path)!r} has schema version {found}; this MDE reads version "
            f"{version}. Use a ledger made by this version (another path or MDE_HOME)."
        )


@contextmanager
def transaction(path: Path, what: str) -> Iterator[sqlite3.Connection]:
    """One immediate transaction on the ledger at ``path``.

    Raises
    ------
    StorageError
        If SQLite fails (nothing of the transaction is kept then).
    """
    try:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise StorageError(f"{what} {str(path)!r} cannot be opened: {exc}") from exc
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise StorageError(f"{what} {str(path)!r} cannot be used: {exc}") from exc
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()
