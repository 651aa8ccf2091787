"""Rows a tracking test needs: contacts, a template, a campaign with variants and copies.

Written with plain inserts (the campaign engine is another module's business), in the
shape the schema's docstring describes: one ``campaign_stats`` row per variant, one
``campaign_recipients`` row per contact, already sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from courriel.marketing.campaigns.tokens import Ref
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.campaigns import (
    campaign_recipients,
    campaign_stats,
    campaign_variants,
    campaigns,
    templates,
    transactional_messages,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Seeded:
    campaign_id: int
    variant_id: int
    refs: dict[str, Ref]  # email -> the copy's reference
    contacts: dict[str, int]  # email -> contact id


async def add_contact(db: Database, email: str, **fields: object) -> int:
    async with db.write() as conn:
        return await upsert_contact(conn, ContactData(email=email, **fields), now=T0)  # type: ignore[arg-type]


async def _template(db: Database) -> int:
    async with db.write() as conn:
        found = (await conn.execute(select(templates.c.id).where(templates.c.name == "t"))).first()
        if found is not None:
            return int(found.id)
        return int(
            (
                await conn.execute(
                    insert(templates)
                    .values(
                        kind="html",
                        name="t",
                        source="<p>hi</p>",
                        html="<p>hi</p>",
                        created_at=T0,
                        updated_at=T0,
                    )
                    .returning(templates.c.id)
                )
            ).scalar_one()
        )


async def seed_campaign(
    db: Database, emails: list[str], *, name: str = "Spring sale", subject: str = "Spring!"
) -> Seeded:
    """A sent campaign with one variant "A" whose copies went to ``emails``."""
    template_id = await _template(db)
    contact_ids = {email: await add_contact(db, email) for email in emails}
    async with db.write() as conn:
        campaign_id = (
            await conn.execute(
                insert(campaigns)
                .values(
                    name=name,
                    from_address="shop@shop.test",
                    audience=[],
                    status="sent",
                    created_at=T0,
                    updated_at=T0,
                )
                .returning(campaigns.c.id)
            )
        ).scalar_one()
        variant_id = (
            await conn.execute(
                insert(campaign_variants)
                .values(
                    campaign_id=campaign_id, label="A", subject=subject, template_id=template_id
                )
                .returning(campaign_variants.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(campaign_stats).values(
                campaign_id=campaign_id,
                variant_id=variant_id,
                recipients=len(emails),
                sent=len(emails),
            )
        )
        refs: dict[str, Ref] = {}
        for email, contact_id in contact_ids.items():
            rid = (
                await conn.execute(
                    insert(campaign_recipients)
                    .values(
                        campaign_id=campaign_id,
                        contact_id=contact_id,
                        email=email,
                        variant_id=variant_id,
                        phase="all",
                        status="sent",
                        sent_at=T0,
                    )
                    .returning(campaign_recipients.c.id)
                )
            ).scalar_one()
            refs[email] = Ref("c", int(rid))
    return Seeded(
        campaign_id=int(campaign_id), variant_id=int(variant_id), refs=refs, contacts=contact_ids
    )


async def seed_transactional(db: Database, email: str) -> Ref:
    contact_id = await add_contact(db, email)
    async with db.write() as conn:
        rid = (
            await conn.execute(
                insert(transactional_messages)
                .values(
                    idempotency_key=f"k-{email}",
                    request_hash="0" * 64,
                    contact_id=contact_id,
                    email=email,
                    subject="Your receipt",
                    status="queued",
                    created_at=T0,
                )
                .returning(transactional_messages.c.id)
            )
        ).scalar_one()
    return Ref("t", int(rid))


async def stats_row(db: Database, campaign_id: int) -> dict[str, int]:
    async with db.read() as conn:
        row = (
            (
                await conn.execute(
                    select(campaign_stats).where(campaign_stats.c.campaign_id == campaign_id)
                )
            )
            .mappings()
            .one()
        )
    return {k: v for k, v in row.items() if k not in ("campaign_id", "variant_id")}
