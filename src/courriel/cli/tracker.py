"""``courriel tracker add-site|list|remove-site``: storefronts that use the JS tracker.

``add-site`` prints the site's public key alone on its last line, for scripts: it goes in
the storefront snippet's ``data-site`` attribute (see docs/tracker.md).
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.integrations.tracker import add_site, list_sites, remove_site

__all__ = ["COMMANDS", "tracker"]


@click.group()
def tracker() -> None:
    """Manage the storefronts of the on-site tracker."""


@tracker.command("add-site")
@click.argument("name")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="URL",
    help="An allowed page origin, e.g. https://shop.example (repeatable; none: any).",
)
@pass_cli
@run_async
async def add_site_cmd(cli_ctx: CliContext, name: str, origins: tuple[str, ...]) -> None:
    """Register the storefront NAME and print its public site key."""
    async with cli_ctx.services() as services:
        site = await add_site(services.db, name, origins=origins, now=datetime.now(UTC))
    allowed = ", ".join(site.origins) if site.origins else "any origin"
    click.echo(f"tracker site {site.name} added ({allowed})")
    click.echo(site.public_key)


@tracker.command("list")
@pass_cli
@run_async
async def list_cmd(cli_ctx: CliContext) -> None:
    """List the tracker sites and their public keys."""
    async with cli_ctx.services() as services:
        sites = await list_sites(services.db)
    print_table(
        "Tracker sites",
        ("Site", "Public key", "Origins", "Created"),
        (
            (
                s.name,
                s.public_key,
                " ".join(s.origins) or "any",
                s.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for s in sites
        ),
    )


@tracker.command("remove-site")
@click.argument("name")
@pass_cli
@run_async
async def remove_site_cmd(cli_ctx: CliContext, name: str) -> None:
    """Remove the storefront NAME: its key stops working (its events stay)."""
    async with cli_ctx.services() as services:
        await remove_site(services.db, name)
    click.echo(f"tracker site {name} removed")


COMMANDS = [tracker]
