"""The architecture rules of issue 13, checked on the source (the layer contract itself is
checked by import-linter in CI: `lint-imports`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = [p for pkg in ("mde", "pricing", "adapters") for p in sorted((ROOT / pkg).rglob("*.py"))]


def _package(path: Path) -> str:
    """Dotted name of the package that holds ``path`` (``mde.owner`` for mde/owner/open.py)."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def test_the_library_files_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in LIBRARY}
    assert {"mde/owner/model_owner.py", "mde/wire/envelope.py", "pricing/functions.py"} <= names


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_library_file_is_longer_than_350_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 350, path


def test_no_class_reads_its_contract_through_getattr_or_hasattr_on_self() -> None:
    # a literal attribute name read off self is a contract with a subclass or a caller
    pattern = re.compile(r"\b(getattr|hasattr)\(self, *[\"']")
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in LIBRARY
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def private_imports(source: str, package: str) -> list[str]:
    """``from X import _name`` statements in ``source`` (a module of ``package``) where X is
    outside ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            private = [
                a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
            ]
            inside = node.module == package or node.module.startswith(package + ".")
            if private and not inside:
                found.append(f"from {node.module} import {', '.join(private)}")
    return found


def test_no_module_imports_a_private_name_from_another_package() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}: {imp}"
        for p in LIBRARY
        for imp in private_imports(p.read_text(), _package(p))
    ]
    assert offenders == []


def test_the_private_import_check_catches_a_planted_one() -> None:
    planted = (
        "from mde.owner.session import Session, _helper\nfrom mde.data_owner.base import _ok\n"
    )
    assert private_imports(planted, "mde.data_owner") == ["from mde.owner.session import _helper"]
