"""The linters are part of the suite: ruff, mypy --strict and the import-linter layers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool
    if not exe.exists():
        found = shutil.which(tool)
        if found is None:
            pytest.fail(
                f"{tool} is not installed; install the test extras: pip install -e '.[test]'"
            )
        exe = Path(found)
    return subprocess.run(
        [str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_ruff() -> None:
    result = _run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    result = _run("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
