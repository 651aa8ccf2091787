"""``courriel template add|update|list|show|delete|preview``: email templates from the shell.

A template file is MJML when its name ends in ``.mjml`` (else HTML), unless ``--kind``
says otherwise. A file that does not compile is refused as ``FILE: line L, column C:
message`` on stderr with exit status 1, and nothing is stored.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import click

from courriel.cli.common import CliContext, fail, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.errors import InvalidInput
from courriel.marketing.templates.preview import preview_template
from courriel.marketing.templates.service import (
    add_template,
    delete_template,
    get_template_by_name,
    list_templates,
    update_template,
)

__all__ = ["COMMANDS", "template"]

_KIND = click.Choice(["mjml", "html"])


@click.group()
def template() -> None:
    """Manage email templates (MJML or HTML with Jinja personalisation)."""


def _read(path: Path, kind: str | None) -> tuple[str, str]:
    try:
        source = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read: {exc}")
        raise  # pragma: no cover - fail() exits
    return source, kind or ("mjml" if path.suffix.lower() == ".mjml" else "html")


def _source_error(path: Path, exc: InvalidInput) -> None:
    fail(f"{path}: {exc}" if exc.field == "source" else str(exc))


@template.command("add")
@click.argument("name")
@click.option("--file", "file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=_KIND, help="mjml or html (default: from the file's extension).")
@pass_cli
@run_async
async def add(cli_ctx: CliContext, name: str, file: Path, kind: str | None) -> None:
    """Add the template NAME from FILE."""
    source, real_kind = _read(file, kind)
    async with cli_ctx.services() as services, services.db.write() as conn:
        try:
            made = await add_template(
                conn, name=name, kind=real_kind, source=source, now=datetime.now(UTC)
            )
        except InvalidInput as exc:
            _source_error(file, exc)
            return
    click.echo(f"template {made.name} added ({made.kind})")
    click.echo(str(made.id))


@template.command("update")
@click.argument("name")
@click.option("--file", "file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=_KIND, help="mjml or html (default: from the file's extension).")
@pass_cli
@run_async
async def update(cli_ctx: CliContext, name: str, file: Path, kind: str | None) -> None:
    """Replace the source of template NAME with FILE."""
    source, real_kind = _read(file, kind)
    async with cli_ctx.services() as services, services.db.write() as conn:
        found = await get_template_by_name(conn, name)
        try:
            await update_template(
                conn, found.id, source=source, kind=real_kind, now=datetime.now(UTC)
            )
        except InvalidInput as exc:
            _source_error(file, exc)
    click.echo(f"template {found.name} updated")


@template.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List the templates."""
    rows = []
    async with cli_ctx.services() as services, services.db.read() as conn:
        after = 0
        while page := await list_templates(conn, after, 1000):
            rows.extend(page)
            after = page[-1].id
    print_table(
        "Templates",
        ("Id", "Name", "Kind", "Updated"),
        ((str(t.id), t.name, t.kind, t.updated_at.strftime("%Y-%m-%d %H:%M")) for t in rows),
    )


@template.command("show")
@click.argument("name")
@pass_cli
@run_async
async def show(cli_ctx: CliContext, name: str) -> None:
    """Print the source of template NAME."""
    async with cli_ctx.services() as services, services.db.read() as conn:
        found = await get_template_by_name(conn, name)
    click.echo(found.source, nl=not found.source.endswith("\n"))


@template.command("delete")
@click.argument("name")
@pass_cli
@run_async
async def delete(cli_ctx: CliContext, name: str) -> None:
    """Delete template NAME (refused while a campaign uses it)."""
    async with cli_ctx.services() as services, services.db.write() as conn:
        found = await get_template_by_name(conn, name)
        await delete_template(conn, found.id)
    click.echo(f"template {found.name} deleted")


@template.command("preview")
@click.argument("name")
@click.option("--contact", "email", metavar="EMAIL", help="Render with this contact's data.")
@click.option("--subject", default="", help="A subject to render along (Jinja too).")
@click.option("--text", "as_text", is_flag=True, help="Print the plain-text part, not the HTML.")
@pass_cli
@run_async
async def preview(
    cli_ctx: CliContext, name: str, email: str | None, subject: str, as_text: bool
) -> None:
    """Render template NAME with a contact's data (or a sample) and sample products."""
    async with cli_ctx.services() as services, services.db.read() as conn:
        config = services.loaded.config
        shop = {k: v for k, v in dataclasses.asdict(config.shop).items()}
        found = await get_template_by_name(conn, name)
        rendered = await preview_template(
            conn,
            found,
            email=email,
            subject=subject,
            shop=shop if shop.get("name") else None,
            public_url=config.http.public_url or "https://mail.example",
        )
    if subject:
        click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.text if as_text else rendered.html)


COMMANDS = [template]
