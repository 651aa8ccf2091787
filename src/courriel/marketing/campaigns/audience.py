"""Freezing a campaign's audience into ``campaign_recipients``, and who may still be mailed.

Owns the audience rules: a contact is a recipient when it is a subscribed member of any
of the campaign's lists OR matches any of its segments, AND its email consent is
``subscribed``, AND neither its address nor its domain (or a parent domain) is suppressed.
``hash`` suppressions name erased addresses, whose contacts no longer exist; the sender
re-checks them per batch (:func:`address_hashes`) since SQLite has no SHA-256.

Invariants:
- Set-based: each chunk is one ``INSERT … SELECT`` over a range of contact ids (never
  OFFSET), its own transaction, so a million-contact audience is never one transaction.
- Idempotent and resumable: contacts created after ``campaigns.started_at`` are never
  frozen, rows are unique per (campaign, contact) and a chunk inserts with ON CONFLICT DO
  NOTHING, and the freeze restarts after the highest contact id already frozen.
- The A/B phase and variant of a contact depend only on (contact id, campaign id), so a
  resumed freeze assigns the same as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, exists, false, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from courriel.marketing.campaigns import stats
from courriel.marketing.dbutil import upsert_insert
from courriel.marketing.segments import parse_segment
from courriel.marketing.segments.compile import compile_segment
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients
from courriel.storage.models.marketing import contacts, list_members, segments, suppressions

if TYPE_CHECKING:
    # Only a type here: service.py imports this module to tell a finished freeze.
    from courriel.marketing.campaigns.service import Campaign

__all__ = [
    "FREEZE_CHUNK",
    "address_hashes",
    "audience_condition",
    "count_audience",
    "eligible",
    "freeze",
    "freeze_unfinished",
    "in_sample",
    "not_suppressed",
    "variant_index",
]

FREEZE_CHUNK = 20_000  # contact ids per INSERT … SELECT transaction


# Multipliers below 2**31 (PostgreSQL binds them as integer; id * them stays in bigint).
_MUL_SAMPLE, _MOD_SAMPLE = 1103515245, 1000003
_MUL_VARIANT, _MOD_VARIANT = 1664525, 1000033


def in_sample(contact_id: int, campaign_id: int, percent: int) -> bool:
    """Whether a contact is in an A/B test's sample (Python twin of the SQL)."""
    salt = campaign_id * 40503 % _MOD_SAMPLE
    return ((contact_id * _MUL_SAMPLE + salt) % _MOD_SAMPLE) % 100 < percent


def variant_index(contact_id: int, campaign_id: int, variants: int) -> int:
    """Which variant a sample contact gets (Python twin of the SQL)."""
    salt = campaign_id * 22695477 % _MOD_VARIANT
    return ((contact_id * _MUL_VARIANT + salt) % _MOD_VARIANT) % variants


def _sample_expr(campaign_id: int, percent: int) -> ColumnElement[bool]:
    salt = campaign_id * 40503 % _MOD_SAMPLE
    return ((contacts.c.id * _MUL_SAMPLE + salt) % _MOD_SAMPLE) % 100 < percent


def _variant_expr(campaign_id: int, count: int) -> ColumnElement[int]:
    salt = campaign_id * 22695477 % _MOD_VARIANT
    return ((contacts.c.id * _MUL_VARIANT + salt) % _MOD_VARIANT) % count


def not_suppressed() -> ColumnElement[bool]:
    """No address or domain suppression covers ``contacts.email``."""
    email = contacts.c.email
    value = suppressions.c.value
    tail = func.substr(email, func.length(email) - func.length(value))
    covered = or_(
        and_(suppressions.c.kind == "address", value == email),
        # A domain entry covers the domain and its subdomains ("@example.com", ".example.com").
        and_(
            suppressions.c.kind == "domain",
            or_(tail == literal("@") + value, tail == literal(".") + value),
        ),
    )
    return ~exists().where(covered)


async def eligible(conn: AsyncConnection, campaign: Campaign, now: datetime) -> ColumnElement[bool]:
    """The audience rules of ``campaign`` as a condition over ``contacts``."""
    return await audience_condition(conn, campaign.audience, now)


async def audience_condition(
    conn: AsyncConnection, audience: Sequence[tuple[str, int]], now: datetime
) -> ColumnElement[bool]:
    """The audience rules of ``audience`` (("list" | "segment", id) entries) over ``contacts``."""
    members: list[ColumnElement[bool]] = []
    list_ids = [ident for kind, ident in audience if kind == "list"]
    if list_ids:
        members.append(
            exists().where(
                list_members.c.contact_id == contacts.c.id,
                list_members.c.list_id.in_(list_ids),
                list_members.c.status == "subscribed",
            )
        )
    segment_ids = [ident for kind, ident in audience if kind == "segment"]
    if segment_ids:
        rows = await conn.execute(
            select(segments.c.definition).where(segments.c.id.in_(segment_ids))
        )
        members += [compile_segment(parse_segment(row.definition), now=now) for row in rows]
    return and_(
        contacts.c.email_status == "subscribed",
        or_(*members) if members else false(),
        not_suppressed(),
    )


async def count_audience(
    conn: AsyncConnection, audience: Sequence[tuple[str, int]], *, now: datetime
) -> int:
    """How many contacts a freeze started at ``now`` would take for ``audience``.

    The same rules as :func:`freeze` (subscribed list members or segment matches, email
    consent subscribed, not suppressed), counted at once: what the dashboard's wizard shows
    before a campaign exists. Hash suppressions are left to the sender, as in the freeze.
    """
    if not audience:
        return 0
    rule = await audience_condition(conn, audience, now)
    found = await conn.scalar(
        select(func.count()).select_from(contacts).where(contacts.c.created_at <= now, rule)
    )
    return int(found or 0)


async def freeze(db: Database, campaign: Campaign, *, chunk: int = FREEZE_CHUNK) -> int:
    """Freeze (or finish freezing) the audience; the number of recipients added.

    ``campaign.started_at`` must be set: contacts created later are not in the audience.
    """
    assert campaign.started_at is not None
    started = campaign.started_at
    async with db.read() as conn:
        cursor = await conn.scalar(
            select(func.max(campaign_recipients.c.contact_id)).where(
                campaign_recipients.c.campaign_id == campaign.id
            )
        )
        last = await conn.scalar(select(func.max(contacts.c.id)))
    cursor, last = int(cursor or 0), int(last or 0)
    added = 0
    while cursor < last:
        upper = cursor + chunk
        async with db.write() as conn:
            added += await _freeze_range(conn, campaign, started, cursor, upper)
        cursor = upper
    return added


async def freeze_unfinished(conn: AsyncConnection, campaign: Campaign) -> bool:
    """Whether :func:`freeze` would still add a recipient to a started campaign.

    True when a contact above the highest one frozen, created by ``started_at``, meets the
    audience rules: a freeze cut short by a crash (each chunk commits on its own).
    """
    if campaign.started_at is None:
        return True
    cursor = await conn.scalar(
        select(func.max(campaign_recipients.c.contact_id)).where(
            campaign_recipients.c.campaign_id == campaign.id
        )
    )
    rule = await eligible(conn, campaign, campaign.started_at)
    found = await conn.scalar(
        select(contacts.c.id)
        .where(
            contacts.c.id > int(cursor or 0),
            contacts.c.created_at <= campaign.started_at,
            rule,
        )
        .limit(1)
    )
    return found is not None


async def _freeze_range(
    conn: AsyncConnection, campaign: Campaign, started: datetime, lower: int, upper: int
) -> int:
    phase, variant = _assignment(campaign)
    query = select(
        literal(campaign.id),
        contacts.c.id,
        contacts.c.email,
        variant,
        phase,
        literal("pending"),
    ).where(
        contacts.c.id > lower,
        contacts.c.id <= upper,
        contacts.c.created_at <= started,
        await eligible(conn, campaign, started),
    )
    columns = ["campaign_id", "contact_id", "email", "variant_id", "phase", "status"]
    statement = (
        upsert_insert(conn, campaign_recipients)
        .from_select(columns, query)
        .on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"])
    )
    await conn.execute(statement)
    counts = await conn.execute(
        select(campaign_recipients.c.variant_id, func.count())
        .where(
            campaign_recipients.c.campaign_id == campaign.id,
            campaign_recipients.c.contact_id > lower,
            campaign_recipients.c.contact_id <= upper,
            campaign_recipients.c.variant_id.is_not(None),
        )
        .group_by(campaign_recipients.c.variant_id)
    )
    per_variant = {int(variant_id): int(count) for variant_id, count in counts.all()}

    def bump_all(sync: Connection) -> None:
        for variant_id, count in per_variant.items():
            stats.bump(sync, campaign.id, variant_id, recipients=count)

    await conn.run_sync(bump_all)
    return sum(per_variant.values())


def _assignment(campaign: Campaign) -> tuple[ColumnElement[str], ColumnElement[int | None]]:
    variants = campaign.variants
    if campaign.ab is None:
        return literal("all"), literal(variants[0].id)
    sample = _sample_expr(campaign.id, campaign.ab.sample_percent)
    index = _variant_expr(campaign.id, len(variants))
    variant = case(
        *((and_(sample, index == i), literal(v.id)) for i, v in enumerate(variants)),
        else_=literal(None),
    )
    return case((sample, literal("sample")), else_=literal("rest")), variant


def address_hashes(emails: Iterable[str]) -> dict[str, str]:
    """SHA-256 hex (the ``hash`` suppression form) of each address, to look them up at once."""
    return {hashlib.sha256(email.encode("utf-8")).hexdigest(): email for email in emails}
