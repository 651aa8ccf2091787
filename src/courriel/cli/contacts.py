"""``courriel contacts import|export|export-data|forget``: marketing contacts from the shell.

``import`` streams a CSV file of any size (see :mod:`courriel.marketing.csvio` for the
columns) with a progress bar on stderr; at the end it prints a summary and every refused
row (``line 12: phone: …``) on stderr. Its exit status is 0 when at least one row was
taken (or the file had no rows), 1 when the file is unusable or every row was refused.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from courriel.cli.common import CliContext, fail, pass_cli, run_async
from courriel.marketing.csvexport import export_contacts
from courriel.marketing.csvio import ImportReport, import_contacts
from courriel.marketing.gdpr import export_person, forget
from courriel.marketing.types import CONSENT_STATUSES

__all__ = ["COMMANDS", "contacts"]


@click.group()
def contacts() -> None:
    """Manage marketing contacts."""


def _progress() -> Progress:
    # On stderr, so that stdout stays clean; rich draws nothing when stderr is not a
    # terminal, which keeps logs and test output readable.
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )


async def _import(
    cli_ctx: CliContext, path: Path, list_name: str | None, consent: str | None
) -> ImportReport:
    async with cli_ctx.services() as services:
        with (
            path.open(encoding="utf-8-sig", newline="") as stream,
            _progress() as progress,
        ):
            task = progress.add_task(f"importing {path.name}", total=None)
            return await import_contacts(
                services.db,
                stream,
                list_name=list_name,
                consent=consent,
                now=datetime.now(UTC),
                progress=lambda rows: progress.update(task, completed=rows),
            )


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_name", metavar="NAME", help="Add every contact to this list.")
@click.option(
    "--consent",
    type=click.Choice(CONSENT_STATUSES),
    help="Email consent for rows without an email_consent cell (default: leave it).",
)
@pass_cli
@run_async
async def import_(
    cli_ctx: CliContext, file: Path, list_name: str | None, consent: str | None
) -> None:
    """Import contacts from FILE (CSV with a header row; an email column is required)."""
    try:
        report = await _import(cli_ctx, file, list_name, consent)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
        return
    except UnicodeDecodeError as exc:
        fail(f"{file} is not UTF-8 text (byte {exc.start}); rows before it were imported")
        return
    taken = report.imported + report.updated + report.unchanged
    click.echo(
        f"{taken} rows imported: {report.imported} new, {report.updated} updated, "
        f"{report.unchanged} unchanged; {len(report.errors)} refused",
        err=True,
    )
    for error in report.errors:
        click.echo(str(error), err=True)
    if report.errors and not taken:
        sys.exit(1)


@contacts.command("export")
@click.option("--list", "list_name", metavar="NAME", help="Only the members of this list.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of stdout.",
)
@pass_cli
@run_async
async def export(cli_ctx: CliContext, list_name: str | None, output: Path | None) -> None:
    """Export contacts as CSV (the import's format: it imports back)."""
    async with cli_ctx.services() as services:
        if output is None:
            count = await export_contacts(services.db, sys.stdout, list_name=list_name)
            sys.stdout.flush()
        else:
            try:
                with output.open("w", encoding="utf-8", newline="") as out:
                    count = await export_contacts(services.db, out, list_name=list_name)
            except OSError as exc:
                fail(f"cannot write {output}: {exc.strerror or exc}")
                return
    click.echo(f"{count} contacts exported", err=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


@contacts.command("export-data")
@click.argument("email")
@pass_cli
@run_async
async def export_data(cli_ctx: CliContext, email: str) -> None:
    """Print everything stored about EMAIL as JSON (GDPR access request)."""
    async with cli_ctx.services() as services:
        person = await export_person(services.db, email)
    click.echo(json.dumps(person, indent=2, ensure_ascii=False, default=_json_default))


@contacts.command("forget")
@click.argument("email")
@pass_cli
@run_async
async def forget_(cli_ctx: CliContext, email: str) -> None:
    """Erase EMAIL's contact, consent, orders and events; never import it again (GDPR)."""
    async with cli_ctx.services() as services:
        found = await forget(services.db, email, now=datetime.now(UTC))
    if found:
        click.echo(f"{email} erased; its address hash is kept so it is never added again")
    else:
        click.echo(f"no contact has {email}; its address hash is kept so it is never added")


COMMANDS = [contacts]
