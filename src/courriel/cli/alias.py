"""``courriel alias add|list|remove``: aliases and catch-alls (``@domain``)."""

from __future__ import annotations

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.cli.tables import print_table

__all__ = ["COMMANDS", "alias"]


@click.group()
def alias() -> None:
    """Manage aliases (ALIAS is x@domain, or @domain for a catch-all)."""


@alias.command("add")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("targets", metavar="TARGET...", nargs=-1, required=True)
@pass_cli
@run_async
async def add(cli_ctx: CliContext, alias_address: str, targets: tuple[str, ...]) -> None:
    """Deliver mail for ALIAS to each TARGET (local accounts or remote addresses)."""
    async with cli_ctx.services() as services:
        info = await services.mailstore.add_alias(alias_address, targets)
    click.echo(f"alias {info.alias} -> {', '.join(info.targets)}")


@alias.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List aliases and their targets."""
    async with cli_ctx.services() as services:
        aliases = await services.mailstore.list_aliases()
    print_table("Aliases", ("Alias", "Targets"), ((a.alias, ", ".join(a.targets)) for a in aliases))


@alias.command("remove")
@click.argument("alias_address", metavar="ALIAS")
@click.argument("target", required=False)
@pass_cli
@run_async
async def remove(cli_ctx: CliContext, alias_address: str, target: str | None) -> None:
    """Remove ALIAS, or only its TARGET."""
    async with cli_ctx.services() as services:
        await services.mailstore.remove_alias(alias_address, target)
    what = alias_address if target is None else f"{target} from {alias_address}"
    click.echo(f"removed {what}")


COMMANDS = [alias]
