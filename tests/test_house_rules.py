"""The house rules a reader relies on (docs/architecture.md): small modules and functions, each
module saying what it is for, and a repository that explains itself."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "tracking", "api", "orchestration")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def product_modules() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


MODULES = product_modules()


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_a_module_says_what_it_is_for_in_its_first_line(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{_name(path)} has no module docstring"
    assert len(docstring.splitlines()[0]) > 10


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_product_module_is_too_long(path: Path) -> None:
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{_name(path)}: {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_too_long(path: Path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert long == [], f"{_name(path)}: {', '.join(long)}"


def test_no_file_points_at_documents_outside_the_repository() -> None:
    outside = ["CONTRACT" + ".md", "../" + "shared", "shared/" + "spec", "shared/" + "reference"]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if name.endswith(".lock") or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}: {needle}" for needle in outside if needle in text]
    assert found == []
