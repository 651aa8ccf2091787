"""``courriel apikey create|list|revoke``: keys of the REST API (``Authorization: Bearer``).

``create`` prints the key alone on its last line, so a script can take ``tail -n 1``; the
key is shown only then (the database keeps its SHA-256).
"""

from __future__ import annotations

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.marketing.apikeys import SCOPES, create_key, list_keys, revoke_key

__all__ = ["COMMANDS", "apikey"]


_SCOPE_HELP = "Grant SCOPE (repeatable; default: * = every scope). Scopes: " + ", ".join(
    sorted(SCOPES)
)


@click.group()
def apikey() -> None:
    """Manage API keys of the REST API (/api/v1)."""


@apikey.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help=_SCOPE_HELP,
)
@pass_cli
@run_async
async def create(cli_ctx: CliContext, name: str, scopes: tuple[str, ...]) -> None:
    """Make a key called NAME; prints the key alone on the last line (shown only once)."""
    async with cli_ctx.services() as services:
        info, secret = await create_key(services.db, name, scopes or ("*",))
    click.echo(f"API key {info.name} created with scopes: {' '.join(sorted(info.scopes))}")
    click.echo("Store it now: it is not shown again.")
    click.echo(secret)


@apikey.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List keys (name, prefix, scopes, times); never the keys themselves."""
    async with cli_ctx.services() as services:
        keys = await list_keys(services.db)

    def when(value: object) -> str:
        return "-" if value is None else str(value)

    rows = (
        (
            k.name,
            k.prefix + "…",
            " ".join(sorted(k.scopes)),
            when(k.created_at),
            when(k.last_used_at),
            "revoked" if k.revoked_at else "live",
        )
        for k in keys
    )
    print_table("API keys", ("Name", "Prefix", "Scopes", "Created", "Last used", "State"), rows)


@apikey.command("revoke")
@click.argument("name")
@pass_cli
@run_async
async def revoke(cli_ctx: CliContext, name: str) -> None:
    """Revoke the key called NAME (it stops working at once)."""
    async with cli_ctx.services() as services:
        changed = await revoke_key(services.db, name)
    click.echo(f"API key {name} revoked" if changed else f"API key {name} was revoked already")


COMMANDS = [apikey]
