"""``courriel tracker add-site|list|remove-site`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.cli.main import _register, cli


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], env={})


def test_add_list_remove(tmp_path: Path) -> None:
    assert run(tmp_path, "tracker", "list").output.strip() == "no tracker sites"
    added = run(tmp_path, "tracker", "add-site", "Shop", "--origin", "https://Shop.example/")
    assert added.exit_code == 0, added.stderr
    key = added.output.strip().splitlines()[-1]
    assert key.startswith("pk_") and len(key) == 35
    assert "https://shop.example" in added.output
    listed = run(tmp_path, "tracker", "list")
    assert key in listed.output and "https://shop.example" in listed.output

    again = run(tmp_path, "tracker", "add-site", "shop")
    assert again.exit_code == 1 and "exists" in again.stderr
    bad = run(tmp_path, "tracker", "add-site", "other", "--origin", "shop.example/path")
    assert bad.exit_code == 1 and "origin" in bad.stderr
    bad_name = run(tmp_path, "tracker", "add-site", "no spaces")
    assert bad_name.exit_code == 1 and "site name" in bad_name.stderr

    assert run(tmp_path, "tracker", "remove-site", "shop").exit_code == 0
    gone = run(tmp_path, "tracker", "remove-site", "shop")
    assert gone.exit_code == 1 and "no tracker site" in gone.stderr
