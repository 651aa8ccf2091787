"""``courriel lists add|list``: the lists contacts subscribe to."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.marketing.lists import create_list, list_lists

__all__ = ["COMMANDS", "lists"]


@click.group()
def lists() -> None:
    """Manage marketing lists."""


@lists.command("add")
@click.argument("name")
@click.option(
    "--double-opt-in",
    is_flag=True,
    help="New members get a confirmation mail and are subscribed once they follow its link.",
)
@pass_cli
@run_async
async def add(cli_ctx: CliContext, name: str, double_opt_in: bool) -> None:
    """Create the list NAME."""
    async with cli_ctx.services() as services, services.db.write() as conn:
        created = await create_list(
            conn, name=name, double_opt_in=double_opt_in, now=datetime.now(UTC)
        )
    kind = " (double opt-in)" if created.double_opt_in else ""
    click.echo(f"list {created.name} added{kind}")


@lists.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List the lists with their member counts."""
    async with cli_ctx.services() as services, services.db.read() as conn:
        found = await list_lists(conn)
    print_table(
        "Lists",
        ("Name", "Double opt-in", "Subscribed", "Pending", "Created"),
        (
            (
                item.name,
                "yes" if item.double_opt_in else "no",
                str(item.subscribed),
                str(item.pending),
                item.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for item in found
        ),
    )


COMMANDS = [lists]
