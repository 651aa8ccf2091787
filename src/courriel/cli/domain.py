"""``courriel domain add|list|remove``: the domains whose mail is delivered here."""

from __future__ import annotations

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.cli.tables import print_table

__all__ = ["COMMANDS", "domain"]


@click.group()
def domain() -> None:
    """Manage local domains."""


@domain.command("add")
@click.argument("name")
@pass_cli
@run_async
async def add(cli_ctx: CliContext, name: str) -> None:
    """Accept mail for NAME."""
    async with cli_ctx.services() as services:
        info = await services.mailstore.add_domain(name)
    click.echo(f"domain {info.name} added")


@domain.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List local domains."""
    async with cli_ctx.services() as services:
        domains = await services.mailstore.list_domains()
    print_table(
        "Domains",
        ("Domain", "Created"),
        ((d.name, d.created_at.strftime("%Y-%m-%d %H:%M")) for d in domains),
    )


@domain.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove its accounts, their mail, and aliases.")
@pass_cli
@run_async
async def remove(cli_ctx: CliContext, name: str, force: bool) -> None:
    """Stop accepting mail for NAME (refused while it has accounts, unless --force)."""
    async with cli_ctx.services() as services:
        await services.mailstore.remove_domain(name, force=force)
    click.echo(f"domain {name} removed")


COMMANDS = [domain]
