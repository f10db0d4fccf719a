"""The one-evaluation rule lives in the SQLite ledger: it survives unsaved proxy files,
concurrent processes and a process killed inside the transaction."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
from pathlib import Path

import pytest

import mde
from mde.owner.ledger import Ledger


def _open_once(proxy_path: str, sealed: bytes, ledger: str, out: mp.Queue[str]) -> None:
    try:
        mde.load_proxy(proxy_path, ledger=ledger).open(sealed)
        out.put("opened")
    except mde.ReplayError:
        out.put("replay")


def _die_inside_the_transaction(ledger: str) -> None:
    db = sqlite3.connect(ledger, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO evaluations (artifact_id, seq, kind, at) VALUES ('a1', 1, 'open', 0)")
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 before COMMIT


@pytest.fixture()
def deal(fresh_proxy, digits, tmp_path: Path):  # type: ignore[no-untyped-def]
    fresh_proxy.ledger = Ledger(tmp_path / "ledger.sqlite")
    fresh_proxy.export(tmp_path / "a.mde")
    fresh_proxy.save(tmp_path / "p.mdeproxy")  # saved before any evaluation
    sealed = mde.load_artifact(tmp_path / "a.mde").score(digits.Xc[:50], digits.yc[:50]).to_bytes()
    return fresh_proxy, tmp_path, sealed


def test_reloading_an_unsaved_proxy_file_does_not_reopen_an_artifact(deal) -> None:  # type: ignore[no-untyped-def]
    owner, tmp, sealed = deal
    owner.open(sealed)
    stale = mde.load_proxy(tmp / "p.mdeproxy", ledger=tmp / "ledger.sqlite")  # saved before it
    assert stale.opened_ == {owner.artifacts_[0]: 1}  # the session is the ledger's, not the file's
    with pytest.raises(mde.ReplayError, match="already evaluated"):
        stale.open(sealed)
    assert owner.ledger.evaluations(owner.artifacts_[0]) == 1


def test_exactly_one_of_twenty_concurrent_opens_succeeds(deal) -> None:  # type: ignore[no-untyped-def]
    _, tmp, sealed = deal
    ctx = mp.get_context("spawn")
    out: mp.Queue[str] = ctx.Queue()
    procs = [
        ctx.Process(
            target=_open_once,
            args=(str(tmp / "p.mdeproxy"), sealed, str(tmp / "ledger.sqlite"), out),
        )
        for _ in range(20)
    ]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results == ["opened"] + ["replay"] * 19
    assert Ledger(tmp / "ledger.sqlite").evaluations(deal[0].artifacts_[0]) == 1


def test_a_process_killed_inside_the_transaction_records_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    proc = mp.get_context("spawn").Process(
        target=_die_inside_the_transaction, args=(str(ledger.path),)
    )
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == -signal.SIGKILL
    assert ledger.evaluations("a1") == 0  # the uncommitted insert is gone
    assert ledger.record_evaluation("a1", "open", allow_repeat=False) == 1
    with pytest.raises(mde.ReplayError):
        ledger.record_evaluation("a1", "open", allow_repeat=False)
    assert ledger.record_evaluation("a1", "open", allow_repeat=True) == 2


def test_an_unwritable_ledger_path_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(mde.StorageError, match="cannot be opened"):
        Ledger(blocker / "ledger.sqlite")


def test_new_ledgers_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    from mde.data_owner.ledger import DataOwnerLedger

    assert (Ledger(tmp_path / "o.sqlite").path.stat().st_mode & 0o777) == 0o600
    assert (DataOwnerLedger(tmp_path / "d.sqlite").path.stat().st_mode & 0o777) == 0o600
