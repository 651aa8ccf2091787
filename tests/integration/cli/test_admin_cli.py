"""Admin commands through click's CliRunner on a fresh data folder (created and migrated)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.app import open_services
from courriel.cli.main import _register, cli


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, ["--data-dir", str(data_dir), *args], input=stdin, env={})


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr)
    return result.output


def failed(result: Result) -> str:
    assert result.exit_code == 1, (result.output, result.stderr)
    assert "error" in result.stderr
    return result.stderr


def test_db_upgrade_on_fresh_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert "database schema is at revision 0" in ok(run(data, "db", "upgrade"))
    assert (data / "courriel.db").exists()
    assert "database schema is at revision 0" in ok(run(data, "db", "upgrade"))


def test_domain_commands(tmp_path: Path) -> None:
    assert ok(run(tmp_path, "domain", "list")).strip() == "no domains"
    assert "domain example.test added" in ok(run(tmp_path, "domain", "add", "Example.TEST"))
    failed(run(tmp_path, "domain", "add", "example.test"))
    failed(run(tmp_path, "domain", "add", "not a domain"))
    assert "example.test" in ok(run(tmp_path, "domain", "list"))
    ok(run(tmp_path, "account", "add", "a@example.test", "--password-stdin", stdin="pw\n"))
    assert "account" in failed(run(tmp_path, "domain", "remove", "example.test"))
    ok(run(tmp_path, "domain", "remove", "example.test", "--force"))
    failed(run(tmp_path, "domain", "remove", "example.test"))
    assert ok(run(tmp_path, "account", "list")).strip() == "no accounts"


def test_account_commands(tmp_path: Path) -> None:
    ok(run(tmp_path, "domain", "add", "example.test"))
    ok(run(tmp_path, "domain", "add", "other.test"))
    added = run(
        tmp_path, "account", "add", "Alice@example.test", "--password-stdin", stdin="s3cret\n"
    )
    assert "account alice@example.test added" in ok(added)
    ok(run(tmp_path, "account", "add", "bob@other.test", "--password-stdin", stdin="pw\n"))
    failed(run(tmp_path, "account", "add", "c@example.test", "--password-stdin", stdin="\n"))
    failed(run(tmp_path, "account", "add", "c@example.test", "--password-stdin", stdin=""))
    failed(run(tmp_path, "account", "add", "c@nowhere.test", "--password-stdin", stdin="pw\n"))
    assert run(tmp_path, "account", "add", "c@example.test").exit_code == 2
    listed = ok(run(tmp_path, "account", "list"))
    assert "alice@example.test" in listed and "bob@other.test" in listed
    only = ok(run(tmp_path, "account", "list", "--domain", "other.test"))
    assert "bob@other.test" in only and "alice@example.test" not in only
    ok(run(tmp_path, "account", "passwd", "alice@example.test", "--password-stdin", stdin="new\n"))
    failed(
        run(tmp_path, "account", "passwd", "ghost@example.test", "--password-stdin", stdin="x\n")
    )
    ok(run(tmp_path, "account", "remove", "alice@example.test"))
    failed(run(tmp_path, "account", "remove", "alice@example.test"))


def test_passwd_changes_the_password(tmp_path: Path) -> None:
    ok(run(tmp_path, "domain", "add", "example.test"))
    ok(run(tmp_path, "account", "add", "a@example.test", "--password-stdin", stdin="old\n"))
    ok(run(tmp_path, "account", "passwd", "a@example.test", "--password-stdin", stdin="new\r\n"))

    async def check() -> tuple[bool, bool]:
        async with open_services(tmp_path, {}, {}) as services:
            old = await services.mailstore.authenticate("a@example.test", "old")
            new = await services.mailstore.authenticate("a@example.test", "new")
        return old is None, new is not None

    # The CLI runs its own event loop, so this test is synchronous too.
    assert asyncio.run(check()) == (True, True)


def test_alias_commands(tmp_path: Path) -> None:
    ok(run(tmp_path, "domain", "add", "example.test"))
    ok(run(tmp_path, "account", "add", "a@example.test", "--password-stdin", stdin="pw\n"))
    assert ok(run(tmp_path, "alias", "list")).strip() == "no aliases"
    out = ok(run(tmp_path, "alias", "add", "team@example.test", "a@example.test", "x@remote.test"))
    assert "team@example.test -> a@example.test, x@remote.test" in out
    ok(run(tmp_path, "alias", "add", "@example.test", "a@example.test"))
    assert run(tmp_path, "alias", "add", "lonely@example.test").exit_code == 2
    failed(run(tmp_path, "alias", "add", "x@remote.test", "a@example.test"))
    listed = ok(run(tmp_path, "alias", "list"))
    assert "team@example.test" in listed and "@example.test" in listed
    ok(run(tmp_path, "alias", "remove", "team@example.test", "x@remote.test"))
    ok(run(tmp_path, "alias", "remove", "team@example.test"))
    failed(run(tmp_path, "alias", "remove", "team@example.test"))
    assert "team@example.test" not in ok(run(tmp_path, "alias", "list"))
