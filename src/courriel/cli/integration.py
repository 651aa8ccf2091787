"""``courriel integration add|list|remove``: the shops that send webhooks to courriel.

The webhook secret is read from stdin (``--secret-stdin``), never from the command line,
where other users could see it in the process list; it is never printed back.
"""

from __future__ import annotations

import click

from courriel.cli.common import (
    CliContext,
    pass_cli,
    read_stdin_line,
    run_async,
    stdin_option,
)
from courriel.cli.tables import print_table
from courriel.integrations.registry import (
    KINDS,
    add_integration,
    list_integrations,
    remove_integration,
)
from courriel.storage.models.base import utcnow

__all__ = ["COMMANDS", "integration"]


@click.group()
def integration() -> None:
    """Connect shops (Shopify, WooCommerce) whose webhooks feed contacts and orders."""


@integration.command("add")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@stdin_option("--secret-stdin", "the webhook signing secret")
@pass_cli
def add(cli_ctx: CliContext, kind: str, name: str, secret_stdin: bool) -> None:
    """Connect the shop NAME; prints its webhook address alone on the last line.

    NAME is 1 to 50 characters of a-z, 0-9 and '-'. The secret is the key the shop signs
    webhooks with (Shopify: the app's client secret or the one shown under Notifications →
    Webhooks; WooCommerce: the webhook's Secret field).
    """
    _add(cli_ctx, kind, name, read_stdin_line(secret_stdin, "--secret-stdin", "the secret"))


@run_async
async def _add(cli_ctx: CliContext, kind: str, name: str, secret: str) -> None:
    async with cli_ctx.services() as services:
        added = await add_integration(services.db, kind, name, secret, now=utcnow())
        base = services.loaded.config.http.public_url.rstrip("/")
    click.echo(f"integration {added.name} ({added.kind}) added; its webhook address:")
    click.echo(f"{base}{added.hook_path()}")


@integration.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List the connected shops and their webhook addresses."""
    async with cli_ctx.services() as services:
        found = await list_integrations(services.db)
        base = services.loaded.config.http.public_url.rstrip("/")
    print_table(
        "Integrations",
        ("Name", "Kind", "Webhook address", "Added"),
        (
            (i.name, i.kind, f"{base}{i.hook_path()}", i.created_at.strftime("%Y-%m-%d %H:%M"))
            for i in found
        ),
    )


@integration.command("remove")
@click.argument("name")
@pass_cli
@run_async
async def remove(cli_ctx: CliContext, name: str) -> None:
    """Disconnect the shop NAME (its orders and products stay)."""
    async with cli_ctx.services() as services:
        await remove_integration(services.db, name)
    click.echo(f"integration {name} removed")


COMMANDS = [integration]
