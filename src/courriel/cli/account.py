"""``courriel account add|list|passwd|remove``: mailbox accounts.

Passwords are read from stdin (``--password-stdin``), never from the command line,
where other users could see them in the process list.
"""

from __future__ import annotations

import click

from courriel.cli.common import (
    CliContext,
    pass_cli,
    password_stdin_option,
    read_password,
    run_async,
)
from courriel.cli.tables import print_table
from courriel.errors import InvalidInput

__all__ = ["COMMANDS", "account"]


@click.group()
def account() -> None:
    """Manage mailbox accounts."""


@account.command("add")
@click.argument("address")
@password_stdin_option
@pass_cli
def add(cli_ctx: CliContext, address: str, password_stdin: bool) -> None:
    """Create the account ADDRESS (its domain must be local)."""
    _add(cli_ctx, address, read_password(password_stdin))


@run_async
async def _add(cli_ctx: CliContext, address: str, password: str) -> None:
    if not password:
        raise InvalidInput("the password read from stdin is empty")
    async with cli_ctx.services() as services:
        info = await services.mailstore.add_account(address, password)
    click.echo(f"account {info.address} added")


@account.command("list")
@click.option("--domain", default=None, help="Only the accounts of this domain.")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext, domain: str | None) -> None:
    """List accounts."""
    async with cli_ctx.services() as services:
        accounts = await services.mailstore.list_accounts(domain)
    print_table(
        "Accounts",
        ("Address", "Domain", "Created"),
        ((a.address, a.domain, a.created_at.strftime("%Y-%m-%d %H:%M")) for a in accounts),
    )


@account.command("passwd")
@click.argument("address")
@password_stdin_option
@pass_cli
def passwd(cli_ctx: CliContext, address: str, password_stdin: bool) -> None:
    """Set the password of ADDRESS."""
    _passwd(cli_ctx, address, read_password(password_stdin))


@run_async
async def _passwd(cli_ctx: CliContext, address: str, password: str) -> None:
    if not password:
        raise InvalidInput("the password read from stdin is empty")
    async with cli_ctx.services() as services:
        await services.mailstore.set_password(address, password)
    click.echo(f"password of {address} changed")


@account.command("remove")
@click.argument("address")
@pass_cli
@run_async
async def remove(cli_ctx: CliContext, address: str) -> None:
    """Remove ADDRESS with all its mail."""
    async with cli_ctx.services() as services:
        await services.mailstore.remove_account(address)
    click.echo(f"account {address} removed")


COMMANDS = [account]
