"""``courriel db upgrade``: apply the database migrations (also done at every start)."""

from __future__ import annotations

import click
from sqlalchemy import text

from courriel.cli.common import CliContext, pass_cli, run_async

__all__ = ["COMMANDS", "db"]


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command()
@pass_cli
@run_async
async def upgrade(cli_ctx: CliContext) -> None:
    """Apply every pending migration; safe to run while courriel serve runs."""
    async with cli_ctx.services() as services:
        await services.db.upgrade()
        async with services.db.read() as conn:
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    click.echo(f"database schema is at revision {revision}")


COMMANDS = [db]
