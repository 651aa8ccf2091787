"""``courriel campaign create|send|pause|resume|cancel|list|show|report``: campaigns from the shell.

The CLI only changes a campaign's state; the campaign sender of a node running the
delivery role (``courriel serve``) does the sending. ``send --wait`` follows the progress
read from the database and says so when nothing moves for a while.

An audience names a list, else a segment; when both exist with that name the operator
writes ``list:NAME`` or ``segment:NAME``. Errors name the option they are about
(``--from: …``) on stderr, with exit status 1, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.cli.common import CliContext, fail, pass_cli, run_async
from courriel.cli.tables import print_table
from courriel.config.durations import parse_duration
from courriel.errors import InvalidInput, NotFound
from courriel.marketing.campaigns import service
from courriel.marketing.campaigns.report import CampaignReport, Counts, campaign_report
from courriel.marketing.campaigns.service import AB_DEFAULTS, AbSettings, Campaign, Metric
from courriel.marketing.lists import find_list
from courriel.marketing.templates.service import get_template_by_name
from courriel.storage.models.marketing import segments

__all__ = ["COMMANDS", "campaign", "option_of"]

POLL_SECONDS = 0.5  # how often ``send --wait`` reads the progress
HINT_SECONDS = 10.0  # without progress for this long, ``send --wait`` prints a hint
_DONE = frozenset({"sent", "cancelled"})

# Service field names as the CLI options that set them.
_OPTIONS = {
    "name": "--name",
    "from_address": "--from",
    "from_name": "--from-name",
    "reply_to": "--reply-to",
    "preheader": "--preheader",
    "variants": "--subject-b/--template-b",
    "variants/0/subject": "--subject",
    "variants/0/template": "--template",
    "variants/1/subject": "--subject-b",
    "variants/1/template": "--template-b",
    "ab/sample_percent": "--ab-sample",
    "ab/wait_seconds": "--ab-wait",
    "ab/metric": "--ab-metric",
    "audience": "--audience",
}


def option_of(field: str | None) -> str:
    """The CLI option (or setting) an InvalidInput ``field`` is about."""
    if field is None:
        return "error"
    if field.startswith("audience/"):
        return "--audience"
    return _OPTIONS.get(field, field)


@contextmanager
def _named_fields() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        fail(f"{option_of(exc.field)}: {exc}")


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO-8601 time with its UTC offset (``Z`` allowed)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: not an ISO-8601 time, e.g. 2026-11-27T08:00:00+01:00")
        raise  # pragma: no cover - fail() exits
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        fail(f"{option}: give the UTC offset, e.g. 2026-11-27T08:00:00Z")
    return parsed.astimezone(UTC)


async def resolve_audience(conn: AsyncConnection, text: str) -> tuple[str, int]:
    """``NAME``, ``list:NAME`` or ``segment:NAME`` as an audience entry.

    Raises:
        InvalidInput: nothing has that name, or both a list and a segment do (field
            ``audience``).
    """
    kind, _, rest = text.partition(":")
    if kind in ("list", "segment") and rest:
        wanted, name = kind, rest.strip()
    else:
        wanted, name = None, text.strip()
    found_list = await find_list(conn, name) if wanted in (None, "list") else None
    found_segment = None
    if wanted in (None, "segment"):
        found_segment = await conn.scalar(select(segments.c.id).where(segments.c.name == name))
    if found_list is not None and found_segment is not None:
        raise InvalidInput(
            f"{name!r} is both a list and a segment: write list:{name} or segment:{name}",
            field="audience",
        )
    if found_list is not None:
        return "list", found_list.id
    if found_segment is not None:
        return "segment", int(found_segment)
    what = wanted or "list or segment"
    raise InvalidInput(f"no {what} named {name!r}", field="audience")


@click.group()
def campaign() -> None:
    """Create, send and follow email campaigns."""


def _ab(
    sample: int | None, wait: str | None, metric: str | None, variants: int
) -> AbSettings | None:
    if variants < 2:
        if sample is not None or wait is not None or metric is not None:
            fail("--subject-b/--template-b: an A/B test needs a second subject or template")
        return None
    seconds = AB_DEFAULTS.wait_seconds
    if wait is not None:
        try:
            seconds = int(parse_duration(wait).total_seconds())
        except InvalidInput as exc:
            fail(f"--ab-wait: {exc}")
            raise  # pragma: no cover - fail() exits
    chosen: Metric = AB_DEFAULTS.metric
    if metric in ("clicks", "revenue"):
        chosen = "revenue" if metric == "revenue" else "clicks"
    return AbSettings(
        sample_percent=AB_DEFAULTS.sample_percent if sample is None else sample,
        wait_seconds=seconds,
        metric=chosen,
    )


@campaign.command("create")
@click.option("--name", required=True, help="The campaign's name (for you, not the recipients).")
@click.option("--template", "template_name", required=True, help="The template's name.")
@click.option("--subject", required=True, help="The subject (Jinja allowed).")
@click.option(
    "--audience",
    "audiences",
    required=True,
    multiple=True,
    help="A list or segment name (repeatable); list:NAME or segment:NAME when both exist.",
)
@click.option("--from", "from_address", required=True, help="From: address on courriel's domain.")
@click.option("--from-name", help="From: display name.")
@click.option("--reply-to", help="Reply-To: address.")
@click.option("--preheader", help="The preview text shown after the subject.")
@click.option("--subject-b", help="A/B test: the second subject.")
@click.option("--template-b", help="A/B test: the second template's name.")
@click.option(
    "--ab-sample",
    type=int,
    help=f"A/B test: percent of the audience tested ({AB_DEFAULTS.sample_percent}).",
)
@click.option(
    "--ab-wait",
    help=f"A/B test: wait before picking the winner ({AB_DEFAULTS.wait_seconds // 3600}h).",
)
@click.option(
    "--ab-metric",
    type=click.Choice(["clicks", "revenue"]),
    help=f"Winner by ({AB_DEFAULTS.metric}).",
)
@click.option("--at", "at", help="Send at this ISO-8601 time when sent (default: at once).")
@pass_cli
@run_async
async def create(  # noqa: PLR0917 (one parameter per option)
    cli_ctx: CliContext,
    name: str,
    template_name: str,
    subject: str,
    audiences: tuple[str, ...],
    from_address: str,
    from_name: str | None,
    reply_to: str | None,
    preheader: str | None,
    subject_b: str | None,
    template_b: str | None,
    ab_sample: int | None,
    ab_wait: str | None,
    ab_metric: str | None,
    at: str | None,
) -> None:
    """Create a draft campaign; its id is printed alone on the last line."""
    scheduled = _when(at, "--at")
    async with cli_ctx.services() as services, services.db.write() as conn:
        with _named_fields():
            variants = await _variants(conn, (subject, template_name), (subject_b, template_b))
            ab = _ab(ab_sample, ab_wait, ab_metric, len(variants))
            audience = [await resolve_audience(conn, item) for item in audiences]
            made = await service.create_campaign(
                conn,
                name=name,
                variants=variants,
                audience=audience,
                from_address=from_address,
                from_name=from_name,
                reply_to=reply_to,
                preheader=preheader,
                scheduled_at=scheduled,
                ab=ab,
                now=_now(),
            )
    click.echo(f"campaign {made.name!r} created as a draft ({len(made.variants)} variant(s))")
    click.echo(str(made.id))


async def _variants(
    conn: AsyncConnection, first: tuple[str, str], second: tuple[str | None, str | None]
) -> list[tuple[str, int]]:
    """(subject, template id) of variant A, and of B when a B subject or template is given."""
    template_a = await _template_id(conn, first[1], "--template")
    variants = [(first[0], template_a)]
    subject_b, template_b = second
    if subject_b is not None or template_b is not None:
        template = (
            await _template_id(conn, template_b, "--template-b") if template_b else template_a
        )
        variants.append((subject_b or first[0], template))
    return variants


async def _template_id(conn: AsyncConnection, name: str, option: str) -> int:
    try:
        return (await get_template_by_name(conn, name)).id
    except NotFound:
        fail(f"{option}: no template named {name!r}")
        raise  # pragma: no cover - fail() exits


async def _change(
    cli_ctx: CliContext, verb: str, campaign_id: int, at: datetime | None
) -> Campaign:
    async with cli_ctx.services() as services, services.db.write() as conn:
        with _named_fields():
            now = _now()
            if verb == "send":
                return await service.send_campaign(
                    conn,
                    campaign_id,
                    at=at,
                    now=now,
                    shop_address=services.loaded.config.shop.address,
                )
            change = {"pause": service.pause, "resume": service.resume, "cancel": service.cancel}
            return await change[verb](conn, campaign_id, now=now)
    raise AssertionError("unreachable")  # pragma: no cover


@campaign.command("send")
@click.argument("campaign_id", metavar="ID", type=int)
@click.option("--at", "at", help="Send at this ISO-8601 time (default: the one given at create).")
@click.option("--wait", is_flag=True, help="Show a progress bar until the campaign is sent.")
@pass_cli
@run_async
async def send(cli_ctx: CliContext, campaign_id: int, at: str | None, wait: bool) -> None:
    """Schedule campaign ID for sending (a node's campaign sender sends it)."""
    changed = await _change(cli_ctx, "send", campaign_id, _when(at, "--at"))
    when = changed.scheduled_at.isoformat() if changed.scheduled_at else "now"
    click.echo(f"campaign {changed.id} scheduled for {when}")
    if wait:
        await _wait(cli_ctx, campaign_id)


async def _wait(cli_ctx: CliContext, campaign_id: int) -> None:
    """Follow sent/recipients from the database until the campaign is sent or cancelled."""
    console = Console(file=sys.stdout)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    async with cli_ctx.services() as services:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("scheduled", total=None)
            last, moved, hinted = (-1, -1), time.monotonic(), False
            while True:
                async with services.db.read() as conn:
                    now = await service.progress(conn, campaign_id)
                bar.update(
                    task, description=now.status, completed=now.sent, total=now.recipients or None
                )
                if now.status in _DONE:
                    break
                if (now.recipients, now.sent) != last:
                    last, moved = (now.recipients, now.sent), time.monotonic()
                elif not hinted and time.monotonic() - moved >= HINT_SECONDS:
                    hinted = True
                    bar.console.print(
                        f"no progress for {HINT_SECONDS:.0f} s: a node running the delivery "
                        "role ('courriel serve') sends campaigns; is one running on this database?"
                    )
                await asyncio.sleep(POLL_SECONDS)
    click.echo(f"campaign {campaign_id} {now.status}: {now.sent} of {now.recipients} sent")


def _state_command(verb: str, help_text: str) -> click.Command:
    @click.argument("campaign_id", metavar="ID", type=int)
    @pass_cli
    @run_async
    async def command(cli_ctx: CliContext, campaign_id: int) -> None:
        changed = await _change(cli_ctx, verb, campaign_id, None)
        click.echo(f"campaign {changed.id} {changed.status}")

    command.__doc__ = help_text
    return campaign.command(verb)(command)


pause = _state_command("pause", "Pause campaign ID after the batch in flight.")
resume = _state_command("resume", "Resume paused campaign ID where it stopped.")
cancel = _state_command("cancel", "Cancel campaign ID for good (copies sent stay sent).")


@campaign.command("list")
@pass_cli
@run_async
async def list_(cli_ctx: CliContext) -> None:
    """List the campaigns."""
    rows: list[Campaign] = []
    async with cli_ctx.services() as services, services.db.read() as conn:
        while page := await service.list_campaigns(conn, after_id=rows[-1].id if rows else 0):
            rows.extend(page)
    print_table(
        "Campaigns",
        ("Id", "Name", "Status", "Variants", "Scheduled", "Created"),
        (
            (
                str(c.id),
                c.name,
                c.status,
                str(len(c.variants)),
                _short(c.scheduled_at),
                _short(c.created_at),
            )
            for c in rows
        ),
    )


def _short(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@campaign.command("show")
@click.argument("campaign_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the campaign as JSON.")
@pass_cli
@run_async
async def show(cli_ctx: CliContext, campaign_id: int, as_json: bool) -> None:
    """Show campaign ID with its variants and progress."""
    async with cli_ctx.services() as services, services.db.read() as conn:
        found = await service.get_campaign(conn, campaign_id)
        done = await service.progress(conn, campaign_id)
    if as_json:
        click.echo(json.dumps({**found.to_dict(), "progress": done.to_dict()}, indent=2))
        return
    data = found.to_dict()
    for key in ("id", "name", "status", "from_address", "from_name", "reply_to", "preheader"):
        click.echo(f"{key}: {data[key] if data[key] is not None else ''}")
    click.echo("audience: " + ", ".join(f"{kind} {ident}" for kind, ident in found.audience))
    for variant in found.variants:
        click.echo(f"variant {variant.label}: {variant.subject!r} (template {variant.template_id})")
    if found.ab is not None:
        ab = found.ab
        click.echo(
            f"A/B: {ab.sample_percent}% sample, winner by {ab.metric} after {ab.wait_seconds} s"
        )
    for key in ("scheduled_at", "started_at", "finished_at", "test_ends_at"):
        if data[key] is not None:
            click.echo(f"{key}: {data[key]}")
    click.echo(f"progress: {done.sent} of {done.recipients} sent, {done.pending} pending")


_REPORT_COLUMNS = (
    ("Recipients", "recipients"),
    ("Sent", "sent"),
    ("Delivered", "delivered"),
    ("Bounced", "bounced"),
    ("Unique opens", "unique_opens"),
    ("Unique clicks", "unique_clicks"),
    ("Unsubscribes", "unsubscribes"),
    ("Complaints", "complaints"),
    ("Orders", "orders"),
    ("Revenue", "revenue_minor"),
)


def _counts_row(counts: Counts, currency: str) -> list[str]:
    cells = [counts.label]
    for _title, name in _REPORT_COLUMNS:
        value = int(getattr(counts, name))
        cells.append(
            f"{value / 100:.2f} {currency}".strip() if name == "revenue_minor" else str(value)
        )
    return cells


@campaign.command("report")
@click.argument("campaign_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_cli
@run_async
async def report(cli_ctx: CliContext, campaign_id: int, as_json: bool) -> None:
    """Report campaign ID: per variant and in total, and its most clicked links."""
    async with cli_ctx.services() as services, services.db.read() as conn:
        found: CampaignReport = await campaign_report(conn, campaign_id)
        currency = services.loaded.config.shop.currency
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2))
        return
    click.echo(f"campaign {found.campaign_id} {found.name!r}: {found.status}")
    rows = [_counts_row(v, currency) for v in found.variants]
    if len(found.variants) > 1:
        rows.append(_counts_row(found.total, currency))
    print_table("Report", ("Variant", *(t for t, _ in _REPORT_COLUMNS)), rows)
    print_table(
        "Top links",
        ("URL", "Clicks", "Unique clicks"),
        ((link.url, str(link.clicks), str(link.unique_clicks)) for link in found.links),
    )


COMMANDS = [campaign]
