"""``courriel admin …``: dashboard users through click's CliRunner on a fresh data folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.app import open_services
from courriel.cli.main import _register, cli
from courriel.mailstore.passwords import Passwords
from courriel.storage.models import utcnow
from courriel.web.dashboard.admins import verify_login


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], input=stdin, env={})


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr)
    return result.output


def failed(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.output, result.stderr)
    return result.stderr


def _login(data: Path, email: str, password: str) -> str | None:
    async def check() -> str | None:
        async with open_services(data, {}) as services:
            user = await verify_login(
                services.db, Passwords(), email=email, password=password, now=utcnow()
            )
        return user.role if user else None

    return asyncio.run(check())


def test_admin_add_list_role_passwd_remove(tmp_path: Path) -> None:
    added = run(
        tmp_path,
        "admin",
        "add",
        "Owner@Shop.test",
        "--password-stdin",
        "--role",
        "owner",
        stdin="a long passphrase\n",
    )
    assert "dashboard user owner@shop.test added (owner)" in ok(added)
    assert _login(tmp_path, "owner@shop.test", "a long passphrase") == "owner"
    ok(
        run(
            tmp_path,
            "admin",
            "add",
            "mk@shop.test",
            "--password-stdin",
            "--role",
            "marketer",
            stdin="another passphrase\n",
        )
    )
    listing = ok(run(tmp_path, "admin", "list"))
    owner_line = next(line for line in listing.splitlines() if "owner@shop.test" in line)
    assert "never" not in owner_line  # logged in above
    mk_line = next(line for line in listing.splitlines() if "mk@shop.test" in line)
    assert "marketer" in mk_line and "never" in mk_line
    assert "is now viewer" in ok(run(tmp_path, "admin", "set-role", "mk@shop.test", "viewer"))
    assert "last owner" in failed(run(tmp_path, "admin", "set-role", "owner@shop.test", "viewer"))
    assert "last owner" in failed(run(tmp_path, "admin", "remove", "owner@shop.test"))
    ok(
        run(
            tmp_path,
            "admin",
            "passwd",
            "mk@shop.test",
            "--password-stdin",
            stdin="a third passphrase\n",
        )
    )
    assert _login(tmp_path, "mk@shop.test", "another passphrase") is None
    assert _login(tmp_path, "mk@shop.test", "a third passphrase") == "viewer"
    ok(run(tmp_path, "admin", "remove", "mk@shop.test"))
    assert "mk@shop.test" not in ok(run(tmp_path, "admin", "list"))


def test_admin_add_refuses_bad_input(tmp_path: Path) -> None:
    assert "at least 10 characters" in failed(
        run(tmp_path, "admin", "add", "a@shop.test", "--password-stdin", stdin="short\n")
    )
    assert "not an email address" in failed(
        run(tmp_path, "admin", "add", "nobody", "--password-stdin", stdin="a long passphrase\n")
    )
    failed(
        run(
            tmp_path,
            "admin",
            "add",
            "a@shop.test",
            "--role",
            "boss",
            "--password-stdin",
            stdin="a long passphrase\n",
        ),
        code=2,
    )
    failed(run(tmp_path, "admin", "add", "a@shop.test"), code=2)  # no --password-stdin
    ok(
        run(
            tmp_path, "admin", "add", "a@shop.test", "--password-stdin", stdin="a long passphrase\n"
        )
    )
    assert "already exists" in failed(
        run(
            tmp_path, "admin", "add", "A@shop.test", "--password-stdin", stdin="a long passphrase\n"
        )
    )
