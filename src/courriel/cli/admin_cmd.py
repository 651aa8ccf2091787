"""``courriel admin add|list|set-role|passwd|remove``: users of the web dashboard.

Passwords are read from stdin (``--password-stdin``), never from the command line. Roles:
owner (everything), marketer (the marketing pages), viewer (reads them); ``add`` needs
``--role`` (no default, so nobody becomes an owner by omission); see docs/dashboard.md.
``passwd`` ends every session of the user (the password may have been changed because
one was stolen).

Imports only the users and sessions modules of the dashboard (its package collects page
routes lazily), so these commands do not load Litestar's page handlers or Jinja.
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
from courriel.mailstore.passwords import Passwords
from courriel.storage.models import utcnow
from courriel.web.dashboard.admins import (
    ROLES,
    create_admin,
    list_admins,
    remove_admin,
    set_password,
    set_role,
)
from courriel.web.dashboard.sessions import end_sessions

__all__ = ["COMMANDS", "admin"]


@click.group()
def admin() -> None:
    """Manage the users of the web dashboard."""


@admin.command("add")
@click.argument("email")
@password_stdin_option
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="What the user may do (no default: an owner runs everything).",
)
@pass_cli
def add(cli_ctx: CliContext, email: str, password_stdin: bool, role: str) -> None:
    """Add the dashboard user EMAIL (password: 10 characters or more)."""
    _add(cli_ctx, email, read_password(password_stdin), role)


@run_async
async def _add(cli_ctx: CliContext, email: str, password: str, role: str) -> None:
    async with cli_ctx.services() as services:
        user = await create_admin(
            services.db, Passwords(), email=email, password=password, role=role, now=utcnow()
        )
    click.echo(f"dashboard user {user.email} added ({user.role})")


@admin.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List the dashboard users."""
    async with cli_ctx.services() as services:
        users = await list_admins(services.db)
    print_table(
        "Dashboard users",
        ("Email", "Role", "Created", "Last login"),
        (
            (
                u.email,
                u.role,
                u.created_at.strftime("%Y-%m-%d %H:%M"),
                u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
            )
            for u in users
        ),
    )


@admin.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@pass_cli
@run_async
async def set_role_(cli_ctx: CliContext, email: str, role: str) -> None:
    """Give EMAIL another ROLE (the last owner keeps theirs)."""
    async with cli_ctx.services() as services:
        user = await set_role(services.db, email, role)
    click.echo(f"{user.email} is now {user.role}")


@admin.command("passwd")
@click.argument("email")
@password_stdin_option
@pass_cli
def passwd(cli_ctx: CliContext, email: str, password_stdin: bool) -> None:
    """Set the password of the dashboard user EMAIL and end all their sessions."""
    _passwd(cli_ctx, email, read_password(password_stdin))


@run_async
async def _passwd(cli_ctx: CliContext, email: str, password: str) -> None:
    async with cli_ctx.services() as services:
        user = await set_password(services.db, Passwords(), email, password)
        ended = await end_sessions(services.db, user.id)
    click.echo(f"password of {user.email} changed; {ended} session(s) ended")


@admin.command("remove")
@click.argument("email")
@pass_cli
@run_async
async def remove(cli_ctx: CliContext, email: str) -> None:
    """Remove the dashboard user EMAIL and end their sessions."""
    async with cli_ctx.services() as services:
        await remove_admin(services.db, email)
    click.echo(f"dashboard user {email.strip().lower()} removed")


COMMANDS = [admin]
