"""Campaigns: creation, validation, reading, and the state machine operators drive.

Owns the ``campaigns``, ``campaign_variants`` and (creation of) ``campaign_stats`` rows.
States::

    draft --send--> scheduled --(sender: audience frozen)--> sending --> sent
                                                             sending <-> testing (A/B wait)
    scheduled | sending | testing --pause--> paused --resume--> scheduled | sending

Resuming goes back to ``scheduled`` (the sender then freezes) unless the audience is
completely frozen: a freeze interrupted by a crash and then paused is finished on resume.
    draft | scheduled | sending | testing | paused --cancel--> cancelled

Invariants:
- Every function runs in the caller's transaction (an ``AsyncConnection``): a refused
  change writes nothing.
- A wrong transition is :class:`InvalidInput` on field "status" naming the current state.
- A campaign's From: domain is one of courriel's own domains, so its copies are DKIM-signed
  and bounces come back to the VERP address on it.
- Every variant has a ``campaign_stats`` row from creation on, so counters only UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.campaigns.audience import freeze_unfinished
from courriel.marketing.normalise import normalise_email
from courriel.storage.models.campaigns import (
    campaign_recipients,
    campaign_stats,
    campaign_variants,
    campaigns,
    templates,
)
from courriel.storage.models.mail import domains
from courriel.storage.models.marketing import lists, segments

__all__ = [
    "AB_DEFAULTS",
    "AB_MAX_WAIT_SECONDS",
    "AbSettings",
    "Campaign",
    "Progress",
    "Variant",
    "cancel",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "pause",
    "progress",
    "resume",
    "send_campaign",
]

AudienceKind = Literal["list", "segment"]
Metric = Literal["clicks", "revenue"]
LABELS = "ABCDEFGHIJ"  # at most ten variants
_PAUSABLE = frozenset({"scheduled", "sending", "testing"})
_CANCELLABLE = frozenset({"draft", "scheduled", "sending", "testing", "paused"})


@dataclass(frozen=True, slots=True, kw_only=True)
class AbSettings:
    """An A/B test: a sample gets the variants, the winner goes to the rest."""

    sample_percent: int  # 1..99 of the audience receive a variant during the test
    wait_seconds: int  # from the sample's last copy to picking the winner
    metric: Metric  # "clicks" (unique clicks) or "revenue" (attributed revenue)

    def to_dict(self) -> dict[str, Any]:
        """As stored in ``campaigns.ab``."""
        return {
            "sample_percent": self.sample_percent,
            "wait_seconds": self.wait_seconds,
            "metric": self.metric,
        }


# What an A/B test uses for a setting left out, the one definition the API's DTO, the CLI's
# options and the dashboard's wizard all read: a 20 % sample, the winner picked 4 hours
# after its last copy, by unique clicks.
AB_DEFAULTS = AbSettings(sample_percent=20, wait_seconds=4 * 3600, metric="clicks")
# The longest wait before picking a winner (30 days): a test is about one send, and the
# sender adds the wait to a datetime, which cannot hold an unbounded number of seconds.
AB_MAX_WAIT_SECONDS = 30 * 86_400


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One version of a campaign (subject and template)."""

    id: int
    label: str
    subject: str
    template_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """A campaign as stored."""

    id: int
    name: str
    status: str
    from_address: str
    from_name: str | None
    reply_to: str | None
    preheader: str | None
    audience: tuple[tuple[AudienceKind, int], ...]
    variants: tuple[Variant, ...]
    ab: AbSettings | None
    scheduled_at: datetime | None
    started_at: datetime | None  # audience frozen
    finished_at: datetime | None
    winner_variant_id: int | None
    test_ends_at: datetime | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the API."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "from_address": self.from_address,
            "from_name": self.from_name,
            "reply_to": self.reply_to,
            "preheader": self.preheader,
            "audience": [{"kind": kind, "id": ident} for kind, ident in self.audience],
            "variants": [
                {"id": v.id, "label": v.label, "subject": v.subject, "template_id": v.template_id}
                for v in self.variants
            ],
            "ab": None if self.ab is None else self.ab.to_dict(),
            "scheduled_at": _iso(self.scheduled_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "winner_variant_id": self.winner_variant_id,
            "test_ends_at": _iso(self.test_ends_at),
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """How far a campaign got."""

    status: str
    recipients: int  # frozen so far
    sent: int
    pending: int  # frozen, not yet sent nor skipped

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "status": self.status,
            "recipients": self.recipients,
            "sent": self.sent,
            "pending": self.pending,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- creation ---------------------------------------------------------------------------


async def create_campaign(
    conn: AsyncConnection,
    *,
    name: str,
    variants: Sequence[tuple[str, int]],
    audience: Sequence[tuple[str, int]],
    from_address: str,
    from_name: str | None = None,
    reply_to: str | None = None,
    preheader: str | None = None,
    scheduled_at: datetime | None = None,
    ab: AbSettings | None = None,
    now: datetime,
) -> Campaign:
    """Create a draft campaign with its variants (A, B, …) and their report rows.

    Args:
        variants: (subject, template id) per variant; exactly one without ``ab``.
        audience: ("list" | "segment", id) entries; contacts in any of them.
        scheduled_at: when ``send_campaign`` without ``at`` should send (default: at once).

    Raises:
        InvalidInput: a bad field (named), an unknown template/list/segment, a From:
            address outside courriel's domains.
    """
    name = _text(name, "name", 255, required=True) or ""
    address = await _from_address(conn, from_address)
    reply = normalise_email(reply_to, field="reply_to") if reply_to else None
    await _check_variants(conn, variants, ab)
    entries = await _check_audience(conn, audience)
    result = await conn.execute(
        insert(campaigns)
        .values(
            name=name,
            from_address=address,
            from_name=_text(from_name, "from_name", 255),
            reply_to=reply,
            preheader=_text(preheader, "preheader", 255),
            audience=[{"kind": kind, "id": ident} for kind, ident in entries],
            status="draft",
            scheduled_at=scheduled_at,
            ab=None if ab is None else ab.to_dict(),
            created_at=now,
            updated_at=now,
        )
        .returning(campaigns.c.id)
    )
    campaign_id = int(result.scalar_one())
    for label, (subject, template_id) in zip(LABELS, variants, strict=False):
        inserted = await conn.execute(
            insert(campaign_variants)
            .values(campaign_id=campaign_id, label=label, subject=subject, template_id=template_id)
            .returning(campaign_variants.c.id)
        )
        await conn.execute(
            insert(campaign_stats).values(
                campaign_id=campaign_id, variant_id=int(inserted.scalar_one())
            )
        )
    return await get_campaign(conn, campaign_id)


def _text(value: str | None, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{field} is 1 to {limit} characters", field=field)
    if any(c in value for c in "\r\n\0"):
        raise InvalidInput(f"{field} must be one line", field=field)
    return value.strip()


async def _from_address(conn: AsyncConnection, value: str) -> str:
    address = normalise_email(value, field="from_address")
    domain = address.rpartition("@")[2]
    known = await conn.scalar(select(domains.c.id).where(domains.c.name == domain))
    if known is None:
        raise InvalidInput(
            f"{domain} is not one of courriel's domains (add it with 'courriel domain add'): "
            "campaign mail is DKIM-signed and receives its bounces there",
            field="from_address",
        )
    return address


async def _check_variants(
    conn: AsyncConnection, variants: Sequence[tuple[str, int]], ab: AbSettings | None
) -> None:
    wanted = (2, len(LABELS)) if ab is not None else (1, 1)
    if not wanted[0] <= len(variants) <= wanted[1]:
        what = f"2 to {len(LABELS)} variants" if ab else "one variant (A/B settings for more)"
        raise InvalidInput(f"a campaign has {what}", field="variants")
    if ab is not None:
        _check_ab(ab)
    for index, (subject, template_id) in enumerate(variants):
        _text(subject, f"variants/{index}/subject", 998, required=True)
        found = await conn.scalar(select(templates.c.id).where(templates.c.id == template_id))
        if found is None:
            raise InvalidInput(f"no template {template_id}", field=f"variants/{index}/template")


def _check_ab(ab: AbSettings) -> None:
    if not 1 <= ab.sample_percent <= 99:
        raise InvalidInput("the A/B sample is 1 to 99 percent", field="ab/sample_percent")
    if not 0 <= ab.wait_seconds <= AB_MAX_WAIT_SECONDS:
        raise InvalidInput(
            f"the A/B wait is 0 to {AB_MAX_WAIT_SECONDS // 86_400} days", field="ab/wait_seconds"
        )
    if ab.metric not in ("clicks", "revenue"):
        raise InvalidInput("the A/B metric is clicks or revenue", field="ab/metric")


async def _check_audience(
    conn: AsyncConnection, audience: Sequence[tuple[str, int]]
) -> list[tuple[AudienceKind, int]]:
    if not audience:
        raise InvalidInput("a campaign needs at least one list or segment", field="audience")
    entries: list[tuple[AudienceKind, int]] = []
    for index, (kind, ident) in enumerate(audience):
        table = lists if kind == "list" else segments if kind == "segment" else None
        if table is None:
            raise InvalidInput("audience entries are lists or segments", field=f"audience/{index}")
        if await conn.scalar(select(table.c.id).where(table.c.id == ident)) is None:
            raise InvalidInput(f"no {kind} {ident}", field=f"audience/{index}")
        entry: tuple[AudienceKind, int] = ("list" if kind == "list" else "segment", int(ident))
        if entry not in entries:
            entries.append(entry)
    return entries


# -- reading ----------------------------------------------------------------------------


async def get_campaign(conn: AsyncConnection, campaign_id: int) -> Campaign:
    """One campaign with its variants. Raises NotFound."""
    row = (
        (await conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no campaign {campaign_id}")
    variants = await _variants(conn, [campaign_id])
    return _campaign(row, variants.get(campaign_id, ()))


async def list_campaigns(
    conn: AsyncConnection, *, after_id: int = 0, limit: int = 100
) -> list[Campaign]:
    """One page of campaigns by id, after ``after_id``."""
    rows = (
        (
            await conn.execute(
                select(campaigns)
                .where(campaigns.c.id > after_id)
                .order_by(campaigns.c.id)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    variants = await _variants(conn, [row["id"] for row in rows])
    return [_campaign(row, variants.get(row["id"], ())) for row in rows]


async def _variants(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[Variant, ...]]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(campaign_variants)
        .where(campaign_variants.c.campaign_id.in_(ids))
        .order_by(campaign_variants.c.label)
    )
    found: dict[int, list[Variant]] = {}
    for row in rows.mappings():
        found.setdefault(row["campaign_id"], []).append(
            Variant(
                id=row["id"],
                label=row["label"],
                subject=row["subject"],
                template_id=row["template_id"],
            )
        )
    return {key: tuple(value) for key, value in found.items()}


def _campaign(row: RowMapping, variants: tuple[Variant, ...]) -> Campaign:
    ab = row["ab"]
    return Campaign(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        from_address=row["from_address"],
        from_name=row["from_name"],
        reply_to=row["reply_to"],
        preheader=row["preheader"],
        audience=tuple(
            ("list" if item["kind"] == "list" else "segment", int(item["id"]))
            for item in row["audience"]
        ),
        variants=variants,
        ab=None if ab is None else AbSettings(**ab),
        scheduled_at=row["scheduled_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        winner_variant_id=row["winner_variant_id"],
        test_ends_at=row["test_ends_at"],
        created_at=row["created_at"],
    )


async def progress(conn: AsyncConnection, campaign_id: int) -> Progress:
    """Recipients frozen, copies sent and recipients pending. Raises NotFound."""
    status = await conn.scalar(select(campaigns.c.status).where(campaigns.c.id == campaign_id))
    if status is None:
        raise NotFound(f"no campaign {campaign_id}")
    totals = (
        await conn.execute(
            select(
                func.coalesce(func.sum(campaign_stats.c.recipients), 0),
                func.coalesce(func.sum(campaign_stats.c.sent), 0),
            ).where(campaign_stats.c.campaign_id == campaign_id)
        )
    ).one()
    # An index range of ix_campaign_recipients_todo (campaign, status).
    pending = await conn.scalar(
        select(func.count()).where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.status == "pending",
        )
    )
    return Progress(
        status=status, recipients=int(totals[0]), sent=int(totals[1]), pending=int(pending or 0)
    )


# -- the state machine ------------------------------------------------------------------


async def _transition(
    conn: AsyncConnection,
    campaign_id: int,
    allowed: frozenset[str],
    verb: str,
    values: dict[str, Any],
) -> Campaign:
    campaign = await get_campaign(conn, campaign_id)
    if campaign.status not in allowed:
        raise InvalidInput(f"cannot {verb} a campaign that is {campaign.status}", field="status")
    changed = await conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id, campaigns.c.status == campaign.status)
        .values(values)
    )
    if changed.rowcount != 1:  # the sender (or another request) moved it since the read
        raise InvalidInput("the campaign changed state meanwhile; try again", field="status")
    return await get_campaign(conn, campaign_id)


async def send_campaign(
    conn: AsyncConnection,
    campaign_id: int,
    *,
    at: datetime | None = None,
    now: datetime,
    shop_address: str,
) -> Campaign:
    """Schedule a draft: sent at ``at``, else at its ``scheduled_at``, else now.

    Raises:
        InvalidInput: not a draft; ``shop_address`` empty (CAN-SPAM needs a postal address
            in every footer: set shop.address).
        NotFound: no such campaign.
    """
    if not shop_address.strip():
        raise InvalidInput(
            "set shop.address first: every campaign's footer carries the postal address (CAN-SPAM)",
            field="shop.address",
        )
    current = await get_campaign(conn, campaign_id)
    when = at or current.scheduled_at or now
    values = {"status": "scheduled", "scheduled_at": when, "updated_at": now}
    return await _transition(conn, campaign_id, frozenset({"draft"}), "send", values)


async def pause(conn: AsyncConnection, campaign_id: int, *, now: datetime) -> Campaign:
    """Stop sending after the step in flight. Raises InvalidInput / NotFound."""
    values = {"status": "paused", "updated_at": now}
    return await _transition(conn, campaign_id, _PAUSABLE, "pause", values)


async def resume(conn: AsyncConnection, campaign_id: int, *, now: datetime) -> Campaign:
    """Carry on where the campaign stopped. Raises InvalidInput / NotFound.

    A campaign whose freeze was cut short (a crash between two chunks, then a pause)
    goes back to ``scheduled``, so the sender finishes the freeze before sending on.
    """
    current = await get_campaign(conn, campaign_id)
    if current.status != "paused":
        raise InvalidInput(f"cannot resume a campaign that is {current.status}", field="status")
    started = current.started_at is not None and not await freeze_unfinished(conn, current)
    status = "sending" if started else "scheduled"
    values = {"status": status, "updated_at": now}
    return await _transition(conn, campaign_id, frozenset({"paused"}), "resume", values)


async def cancel(conn: AsyncConnection, campaign_id: int, *, now: datetime) -> Campaign:
    """Stop for good; copies already sent stay sent. Raises InvalidInput / NotFound."""
    values = {"status": "cancelled", "finished_at": now, "updated_at": now}
    return await _transition(conn, campaign_id, _CANCELLABLE, "cancel", values)
