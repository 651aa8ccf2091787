"""``courriel queue list|show|retry|drop``: look at and act on the outbound queue."""

from __future__ import annotations

from datetime import datetime

import click

from courriel.cli.common import CliContext, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.delivery.queue import QueueEntry, list_queue
from courriel.delivery.queue_admin import describe_drop, drop_message, retry_due, show_message
from courriel.storage.models import utcnow

__all__ = ["COMMANDS", "queue"]


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _row(entry: QueueEntry) -> tuple[str, ...]:
    queued = [r for r in entry.recipients if r.status == "queued"]
    next_attempt = min((r.next_attempt_at for r in queued), default=None)
    replies = [f"{r.recipient}: {r.last_reply}" for r in entry.recipients if r.last_reply]
    return (
        str(entry.id),
        f"<{entry.sender}>",
        "\n".join(f"{r.recipient} ({r.status})" for r in entry.recipients),
        _when(next_attempt) if next_attempt is not None else "-",
        str(max((r.attempts for r in entry.recipients), default=0)),
        "\n".join(replies) or "-",
    )


@click.group()
def queue() -> None:
    """Inspect and manage the outbound delivery queue."""


@queue.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List queued messages with each recipient's state."""
    async with cli_ctx.services() as services:
        entries = await list_queue(services.db)
    print_table(
        "Queued messages",
        ("Id", "Sender", "Recipients (status)", "Next attempt", "Attempts", "Last reply"),
        (_row(e) for e in entries),
    )


@queue.command("show")
@click.argument("message_id", metavar="ID", type=int)
@pass_cli
@run_async
async def show(cli_ctx: CliContext, message_id: int) -> None:
    """Show message ID, its recipients and every delivery attempt."""
    async with cli_ctx.services() as services:
        detail = await show_message(services.db, message_id)
    entry = detail.entry
    click.echo(f"message {entry.id}: sender <{entry.sender}>, {entry.size} octets")
    click.echo(f"queued {_when(entry.created_at)}, priority {entry.priority}")
    print_table(
        "Recipients",
        ("Recipient", "Status", "Attempts", "Next attempt", "Last reply"),
        (
            (r.recipient, r.status, str(r.attempts), _when(r.next_attempt_at), r.last_reply)
            for r in entry.recipients
        ),
    )
    print_table(
        "Attempts",
        ("Time", "Recipient", "MX host", "TLS", "Code", "Reply", "Outcome"),
        (
            (
                _when(a.attempted_at),
                a.recipient,
                a.mx_host or "-",
                ("verified" if a.tls_verified else "yes") if a.tls else "no",
                str(a.code) if a.code else "-",
                a.reply,
                a.outcome,
            )
            for a in detail.attempts
        ),
    )


@queue.command("retry")
@click.argument("message_id", metavar="ID", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Retry every queued message.")
@pass_cli
@run_async
async def retry(cli_ctx: CliContext, message_id: int | None, all_: bool) -> None:
    """Try message ID (or --all) again now instead of waiting for its next attempt."""
    if (message_id is None) == (not all_):
        raise click.UsageError("give either a message ID or --all")
    async with cli_ctx.services() as services:
        count = await retry_due(services.db, message_id=message_id, now=utcnow())
    what = "every queued message" if all_ else f"message {message_id}"
    click.echo(f"{count} recipient(s) of {what} due now")


@queue.command("drop")
@click.argument("message_id", metavar="ID", type=int)
@pass_cli
@run_async
async def drop(cli_ctx: CliContext, message_id: int) -> None:
    """Delete message ID from the queue without delivering it (logged)."""
    async with cli_ctx.services() as services:
        entry = await drop_message(services.db, services.blobs, message_id)
    click.echo(describe_drop(entry))


COMMANDS = [queue]
