"""``courriel admin …``: dashboard users through click's CliRunner on a fresh data folder."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from courriel.app import open_services
from courriel.cli.main import _register, cli
from courriel.mailstore.passwords import Passwords
from courriel.storage.models import admin_sessions, utcnow
from courriel.web.dashboard.admins import list_admins, verify_login
from courriel.web.dashboard.sessions import start_session


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


def _sessions(data: Path, email: str, *, start: int = 0) -> int:
    """Start ``start`` sessions for ``email``; how many of its sessions are live."""

    async def count() -> int:
        async with open_services(data, {}) as services:
            user = next(u for u in await list_admins(services.db) if u.email == email)
            for _ in range(start):
                await start_session(services.db, user, now=utcnow())
            async with services.db.read() as conn:
                found = await conn.scalar(
                    select(func.count()).where(admin_sessions.c.admin_id == user.id)
                )
        return int(found or 0)

    return asyncio.run(count())


def test_the_cli_loads_no_dashboard_page_module() -> None:
    """``courriel admin`` imports the users and sessions modules, not Litestar's pages."""
    code = (
        "import sys, courriel.cli.admin_cmd\n"
        "pages = sorted(m for m in sys.modules if m.startswith('courriel.web.dashboard.')"
        " and m.rsplit('.', 1)[1] not in ('admins', 'sessions'))\n"
        "print(pages)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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
    assert _sessions(tmp_path, "mk@shop.test", start=2) == 2
    changed = ok(
        run(
            tmp_path,
            "admin",
            "passwd",
            "mk@shop.test",
            "--password-stdin",
            stdin="a third passphrase\n",
        )
    )
    assert "2 session(s) ended" in changed
    assert _sessions(tmp_path, "mk@shop.test") == 0  # a stolen session dies with the password
    assert _login(tmp_path, "mk@shop.test", "another passphrase") is None
    assert _login(tmp_path, "mk@shop.test", "a third passphrase") == "viewer"
    ok(run(tmp_path, "admin", "remove", "mk@shop.test"))
    assert "mk@shop.test" not in ok(run(tmp_path, "admin", "list"))


def test_admin_add_refuses_bad_input(tmp_path: Path) -> None:
    owner = ("--password-stdin", "--role", "owner")
    assert "at least 10 characters" in failed(
        run(tmp_path, "admin", "add", "a@shop.test", *owner, stdin="short\n")
    )
    assert "not an email address" in failed(
        run(tmp_path, "admin", "add", "nobody", *owner, stdin="a long passphrase\n")
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
    failed(run(tmp_path, "admin", "add", "a@shop.test", "--role", "viewer"), code=2)  # no stdin
    no_role = run(
        tmp_path, "admin", "add", "a@shop.test", "--password-stdin", stdin="a long passphrase\n"
    )
    assert "--role" in failed(no_role, code=2)  # no default role: nobody is an owner by omission
    assert "a@shop.test" not in ok(run(tmp_path, "admin", "list"))
    viewer = ("--password-stdin", "--role", "viewer")
    ok(run(tmp_path, "admin", "add", "a@shop.test", *viewer, stdin="a long passphrase\n"))
    assert "already exists" in failed(
        run(tmp_path, "admin", "add", "A@shop.test", *viewer, stdin="a long passphrase\n")
    )
