"""Fixtures of the fuzz tests: the corpus (made once per session) and the tally of outcomes,
printed at the end of a run with ``MDE_FUZZ_CASES`` set (the >= 10,000-case check)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.fuzz.harness import CASES, TALLY, Corpus, Tally, build_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, digits: Any, model: Any) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("fuzz-corpus"), digits, model)


@pytest.fixture(scope="session")
def tally() -> Tally:
    return TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.rows and "MDE_FUZZ_CASES" in os.environ:
        terminalreporter.write_sep("=", f"fuzz outcomes (MDE_FUZZ_CASES={CASES})")
        terminalreporter.write_line(TALLY.table())
