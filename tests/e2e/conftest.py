"""A data folder prepared through the real CLI, for subprocess tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.testing.subprocess_node import run_cli

PASSWORD = "s3cret-Pa55"


@pytest.fixture
def data_dir(tmp_path: Path, db_url: str) -> Path:
    folder = tmp_path / "data"
    for args, stdin in (
        (["domain", "add", "shop.test"], ""),
        (["account", "add", "alice@shop.test", "--password-stdin"], PASSWORD + "\n"),
    ):
        result = run_cli(folder, args, stdin=stdin, database_url=db_url)
        assert result.returncode == 0, result.stderr
    return folder
