"""Seeded fuzz of the command line: every command given a damaged, crafted, foreign or
garbage file (or a damaged identity or ledger in its owner's home) exits with status 2 and
a message ``mde <command>: error: ...``, never a traceback."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mde
from mde.cli import main
from mde.wire.envelope import Envelope
from tests.fuzz.harness import PRICING, Corpus, Tally, cases, format_of, home
from tests.fuzz.mutations import garbage, mutate, mutate_inside

# command -> (whose home it runs in, arguments); {name} is a corpus file, {out} an output
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "inspect": ("do", ["--artifact", "{artifact.mde}"]),
    "score": ("do", ["--artifact", "{artifact.mde}", "--data", "{offer.csv}", "--quiet"]),
    "open": (
        "mo",
        ["--proxy", "{proxy.mdeproxy}", "--sealed", "{score.mdeseal}", "--allow-repeat"],
    ),
    "open-partial": ("mo", ["--proxy", "{poly.mdeproxy}", "--sealed", "{partial.mdepart}"]),
    "price": ("mo", ["--report", "{report.json}", "--pricing", PRICING]),
    "deliver": (
        "do",
        ["--artifact", "{artifact.mde}", "--quote", "{quote.mdequote}", "--data", "{offer.npz}"],
    ),
    "settle": ("mo", ["--proxy", "{proxy.mdeproxy}", "--delivery", "{subset.mdedel}"]),
    "accept": ("do", ["--artifact", "{artifact.mde}", "--settlement", "{settlement.mdesettle}"]),
    "decrypt": (
        "do",
        ["--artifact", "{hidden.mde}", "--key", "{key.mdekey}", "--result", "{result.mderes}"],
    ),
    "encrypt": ("do", ["--artifact", "{hidden.mde}", "--data", "{offer.csv}", "--quiet"]),
    "evaluate": (
        "mo",
        ["--proxy", "{poly.mdeproxy}", "--request", "{request.mdereq}", "--allow-repeat"],
    ),
}
OUT = {
    "score": "--out",
    "open": "--report-out",
    "open-partial": "--report-out",
    "deliver": "--out",
    "settle": "--out",
    "decrypt": "--out",
    "encrypt": "--out",
    "evaluate": "--out",
}
# the ledgers as they were before the step (a decryption, a settlement happens once)
LEDGERS = {
    "open-partial": ["mo-before-settle.sqlite"],
    "settle": ["mo-before-settle.sqlite"],
    "deliver": ["do-before-accept.sqlite"],
    "accept": ["do-before-accept.sqlite"],
    "decrypt": ["do-before-decrypt.sqlite"],
}
# the party that sends each file (its real key re-signs crafted copies)
SENDER = {
    "artifact.mde": "mo",
    "hidden.mde": "mo",
    "quote.mdequote": "mo",
    "settlement.mdesettle": "mo",
    "result.mderes": "mo",
    "score.mdeseal": "do",
    "partial.mdepart": "do",
    "subset.mdedel": "do",
}


class Workspace:
    """Fresh copies of both homes and every input, for one command run."""

    def __init__(self, c: Corpus, root: Path) -> None:
        self.c, self.root, self.n = c, root, 0

    def argv(self, command: str, slot: str | None, data: bytes | None) -> tuple[Path, list[str]]:
        self.n += 1
        work = self.root / str(self.n)
        shutil.copytree(self.c.root / "model-owner", work / "mo")
        shutil.copytree(self.c.root / "data-owner", work / "do")
        role, args = COMMANDS[command]
        out = []
        for arg in args:
            if arg.startswith("{"):
                name = arg[1:-1]
                path = work / name
                path.write_bytes(data if name == slot and data is not None else self.c.files[name])
                arg = str(path)
            out.append(arg)
        for ledger in LEDGERS.get(command, []):  # as it was before this step
            owner = "mo" if ledger.startswith("mo-") else "do"
            name = "owner-ledger.sqlite" if owner == "mo" else "data-owner-ledger.sqlite"
            shutil.copy(self.c.paths[ledger], work / owner / name)
        if command in OUT:
            out += [OUT[command], str(work / "out")]
        if command in ("open", "open-partial"):
            out += ["--quote-out", str(work / "quote-out")]
        if command == "encrypt":
            out += ["--key", str(work / "new.mdekey")]
        return work / role, [command.split("-")[0], *out]


def run_cli(home_dir: Path, argv: list[str]) -> tuple[int, str]:
    """``mde argv`` in-process with ``MDE_HOME=home_dir``: (exit status, stderr). An
    exception out of ``main`` would be a traceback: it propagates."""
    err = io.StringIO()
    with home(home_dir), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _cli_loader(ws: Workspace, command: str, slot: str | None, home_file: str | None = None):  # type: ignore[no-untyped-def]
    """A tally loader: runs the command with ``data`` in ``slot`` (or as ``home_file`` in the
    owner's home). Exit 2 with one error line counts as refused; 0 as loaded; anything else
    (a traceback, another status, a message without the prefix) as a failure."""

    def run(data: bytes) -> object:
        role_home, argv = ws.argv(command, slot, None if home_file else data)
        if home_file is not None:
            (role_home / home_file).write_bytes(data)
        code, err = run_cli(role_home, argv)
        if code == 2:
            assert err.startswith(f"mde {argv[0]}: error: ") and len(err) > 40, err
            assert "Traceback" not in err and 'File "' not in err, err
            raise mde.MDEError(err)
        assert code == 0, (code, err)
        return code

    return run


SLOTS = [
    (command, arg[1:-1]) for command, (_, args) in COMMANDS.items() for arg in args if "{" in arg
]


def test_the_genuine_files_pass_every_command(corpus: Corpus, tmp_path: Path) -> None:
    ws = Workspace(corpus, tmp_path)
    for command in COMMANDS:
        code, err = run_cli(*ws.argv(command, None, None))
        assert code == 0, (command, err)


@pytest.mark.parametrize("command, slot", SLOTS, ids=[f"{c}-{s}" for c, s in SLOTS])
def test_damaged_files_exit_2_with_a_message(  # type: ignore[no-untyped-def]
    corpus: Corpus, tally: Tally, tmp_path: Path, command: str, slot: str
):
    rng = np.random.default_rng([31, SLOTS.index((command, slot))])
    good = corpus.files[slot]
    # the request is tens of MB: a few cut or foreign ones (its mutations: test_steps.py)
    n_mutated = cases(0.08) if slot != "request.mdereq" else 0
    samples = [mutate(good, rng) for _ in range(n_mutated)] + [good[: len(good) // 2]]
    if slot in SENDER:  # crafted by the sender: signed with its real key
        env = Envelope.from_bytes(good, format_of(good), mde.MDEError)
        key = corpus.mo_key if SENDER[slot] == "mo" else corpus.do_key
        samples += [mutate_inside(env, rng, key) for _ in range(cases(0.12))]
    foreign = [d for n, d in sorted(corpus.files.items()) if n != slot and n != "request.mdereq"]
    n_foreign = min(len(foreign), cases(0.08, least=1))
    samples += [foreign[int(i)] for i in rng.choice(len(foreign), n_foreign, replace=False)]
    samples += [garbage(rng) for _ in range(cases(0.04, least=1))]
    ws = Workspace(corpus, tmp_path)
    before = len(tally.failures)
    out = tally.run(f"CLI mde {command} --{slot}", _cli_loader(ws, command, slot), samples)
    assert tally.failures[before:] == []
    assert out.refused >= len(samples) * 0.5


@pytest.mark.parametrize("home_file", ["identity.pem", "ledger"])
def test_a_damaged_home_exits_2_with_a_message(  # type: ignore[no-untyped-def]
    corpus: Corpus, tally: Tally, tmp_path: Path, home_file: str
):
    rng = np.random.default_rng([32, len(home_file)])
    ws = Workspace(corpus, tmp_path)
    before = len(tally.failures)
    for command, (role, _) in COMMANDS.items():
        if command == "price":
            continue  # prices a report: reads neither identity nor ledger
        name = home_file
        if home_file == "ledger":
            name = "owner-ledger.sqlite" if role == "mo" else "data-owner-ledger.sqlite"
        good = (corpus.mo if role == "mo" else corpus.do) / name
        samples = [mutate(good.read_bytes(), rng) for _ in range(cases(0.04, least=1))]
        samples += [garbage(rng) for _ in range(cases(0.02, least=1))]
        loader = _cli_loader(ws, command, None, home_file=name)
        tally.run(f"CLI mde {command} with a damaged {home_file}", loader, samples)
    assert tally.failures[before:] == []


def test_a_real_process_prints_no_traceback(corpus: Corpus, tmp_path: Path) -> None:
    ws = Workspace(corpus, tmp_path)
    role_home, argv = ws.argv("open", "score.mdeseal", corpus.files["score.mdeseal"][:-9])
    code = "import sys; from mde.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {"MDE_HOME": str(role_home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("mde open: error: ") and "Traceback" not in proc.stderr
