"""The integration registry and ``courriel integration add|list|remove``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from courriel.cli.main import _register, cli
from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.integrations.registry import (
    add_integration,
    get_by_name,
    list_integrations,
    list_receipts,
    remove_integration,
)
from courriel.storage.db import Database

from .conftest import NOW


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    _register()


def run(data_dir: Path, *args: str, stdin: str | None = None) -> Result:
    env = {"COURRIEL_HTTP__PUBLIC_URL": "https://mail.shop.test/"}
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], input=stdin, env=env)


async def test_registry(database: Database) -> None:
    added = await add_integration(database, "shopify", "my-shop-1", " s3cret\n", now=NOW)
    assert (added.kind, added.name, added.secret, added.source) == (
        "shopify",
        "my-shop-1",
        "s3cret",
        "shopify:my-shop-1",
    )
    assert "s3cret" not in repr(added)
    with pytest.raises(AlreadyExists):
        await add_integration(database, "woocommerce", "my-shop-1", "x", now=NOW)
    for kind, name, secret, field in (
        ("magento", "m", "x", "kind"),
        ("shopify", "Big Shop", "x", "name"),
        ("shopify", "a" * 51, "x", "name"),
        ("shopify", "", "x", "name"),
        ("shopify", "ok", "  ", "secret"),
    ):
        with pytest.raises(InvalidInput) as caught:
            await add_integration(database, kind, name, secret, now=NOW)
        assert caught.value.field == field
    assert (await get_by_name(database, "my-shop-1")).id == added.id
    assert [i.name for i in await list_integrations(database)] == ["my-shop-1"]
    assert await list_receipts(database, "my-shop-1") == []
    await remove_integration(database, "my-shop-1")
    with pytest.raises(NotFound):
        await remove_integration(database, "my-shop-1")
    with pytest.raises(NotFound):
        await get_by_name(database, "my-shop-1")


def test_cli_add_list_remove(tmp_path: Path) -> None:
    result = run(
        tmp_path, "integration", "add", "shopify", "jsmith", "--secret-stdin", stdin="k1\n"
    )
    assert result.exit_code == 0, (result.output, result.stderr)
    assert result.output.splitlines()[-1] == "https://mail.shop.test/hooks/shopify/jsmith"
    assert "k1" not in result.output
    result = run(tmp_path, "integration", "add", "woocommerce", "woo", "--secret-stdin", stdin="k2")
    assert result.output.splitlines()[-1] == "https://mail.shop.test/hooks/woocommerce/woo"
    listed = run(tmp_path, "integration", "list")
    assert listed.exit_code == 0
    assert "jsmith" in listed.output and "woocommerce" in listed.output
    assert "k1" not in listed.output and "k2" not in listed.output
    again = run(tmp_path, "integration", "add", "shopify", "jsmith", "--secret-stdin", stdin="k")
    assert again.exit_code == 1 and "exists already" in again.stderr
    bad = run(tmp_path, "integration", "add", "shopify", "Bad Name", "--secret-stdin", stdin="k")
    assert bad.exit_code == 1 and "name" in bad.stderr
    empty = run(tmp_path, "integration", "add", "shopify", "empty", "--secret-stdin", stdin="\n")
    assert empty.exit_code == 1 and "secret" in empty.stderr
    usage = run(tmp_path, "integration", "add", "shopify", "nostdin")
    assert usage.exit_code == 2
    kind = run(tmp_path, "integration", "add", "magento", "m", "--secret-stdin", stdin="k")
    assert kind.exit_code == 2
    removed = run(tmp_path, "integration", "remove", "jsmith")
    assert removed.exit_code == 0 and "removed" in removed.output
    gone = run(tmp_path, "integration", "remove", "jsmith")
    assert gone.exit_code == 1 and "no integration" in gone.stderr
