"""ruff and mypy stay clean: they are part of the test suite, not a habit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return found


def test_ruff_is_clean() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "bot", "tests", "bench", "examples", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_leaves_the_tree_as_it_is() -> None:
    proc = subprocess.run(
        [
            _tool("ruff"),
            "format",
            "--check",
            "bot",
            "tests",
            "bench",
            "examples",
            "scripts",
            "noxfile.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--strict", "bot"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean_over_the_tests_and_tools() -> None:
    """pyproject.toml's settings: strict, except that a test or benchmark may go
    unannotated; its body is checked all the same."""
    proc = subprocess.run(
        [_tool("mypy"), "tests", "bench", "examples", "scripts", "noxfile.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
