"""``courriel apikey`` through click's CliRunner on a fresh data folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.app import open_services
from courriel.cli.main import _register, cli
from courriel.marketing.apikeys import verify_key


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], env={})


def _verify(data_dir: Path, key: str) -> frozenset[str] | None:
    async def check() -> frozenset[str] | None:
        async with open_services(data_dir, {}) as services:
            info = await verify_key(services.db, key)
        return None if info is None else info.scopes

    return asyncio.run(check())


def test_apikey_create_list_revoke(tmp_path: Path) -> None:
    made = run(
        tmp_path, "apikey", "create", "shop", "--scope", "contacts:read", "--scope", "events:write"
    )
    assert made.exit_code == 0, (made.output, made.stderr)
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("ck_") and " " not in key
    assert _verify(tmp_path, key) == {"contacts:read", "events:write"}

    everything = run(tmp_path, "apikey", "create", "admin")
    admin_key = everything.output.strip().splitlines()[-1]
    assert _verify(tmp_path, admin_key) == {"*"}

    listed = run(tmp_path, "apikey", "list")
    assert listed.exit_code == 0
    assert "shop" in listed.output and key[:10] in listed.output
    assert key not in listed.output

    revoked = run(tmp_path, "apikey", "revoke", "shop")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert _verify(tmp_path, key) is None
    assert "revoked already" in run(tmp_path, "apikey", "revoke", "shop").output


def test_apikey_errors(tmp_path: Path) -> None:
    assert run(tmp_path, "apikey", "create", "a").exit_code == 0
    duplicate = run(tmp_path, "apikey", "create", "a")
    assert duplicate.exit_code == 1 and "exists already" in duplicate.stderr
    bad_scope = run(tmp_path, "apikey", "create", "b", "--scope", "root")
    assert bad_scope.exit_code == 1 and "unknown scope 'root'" in bad_scope.stderr
    unknown = run(tmp_path, "apikey", "revoke", "nobody")
    assert unknown.exit_code == 1 and "no API key named" in unknown.stderr
    assert run(tmp_path, "apikey", "create").exit_code == 2
