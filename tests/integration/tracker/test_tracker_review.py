"""Review fixes of the public identify call (SQLite and PostgreSQL): an erased address is
never stored again and the answer does not tell, and identify only fills empty fields."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Table, func, select

from courriel.errors import InvalidInput
from courriel.integrations.tracker import TrackerSite
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.gdpr import forget
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.marketing import browser_ids, contacts, events

from .test_tracker_calls import ANA_BROWSER, BOB_BROWSER, call, contact, identified, tracked

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def _count(database: Database, table: Table) -> int:
    async with database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_identify_of_a_forgotten_address_stores_nothing(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    await identified(client, site, ANA_BROWSER, email="ana@example.com", first_name="Ana")
    await forget(database, "ana@example.com", now=NOW)
    assert await _count(database, contacts) == 0

    await tracked(client, site, BOB_BROWSER, "Viewed Product")
    response = await call(
        client,
        site,
        "identify",
        {"anonymous_id": BOB_BROWSER, "profile": {"email": "ANA@example.com", "city": "Lyon"}},
    )
    # The same answer as for anyone else: a storefront cannot learn who was forgotten.
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert await _count(database, contacts) == 0
    async with database.read() as conn:
        links = (await conn.execute(select(browser_ids.c.contact_id))).scalars().all()
        owners = (await conn.execute(select(events.c.contact_id))).scalars().all()
    assert [link for link in links if link is not None] == []
    assert owners == [None]


async def test_upsert_contact_refuses_to_recreate_a_forgotten_address(
    database: Database,
) -> None:
    await forget(database, "ana@example.com", now=NOW)
    with pytest.raises(InvalidInput) as caught:
        async with database.write() as conn:
            await upsert_contact(conn, ContactData(email="Ana@Example.com"), now=NOW)
    assert caught.value.field == "email"
    assert await _count(database, contacts) == 0


async def test_identify_only_fills_empty_fields(
    client: httpx.AsyncClient, site: TrackerSite, database: Database
) -> None:
    async with database.write() as conn:
        await upsert_contact(
            conn,
            ContactData(
                email="ana@example.com",
                first_name="Ana",
                phone="+33612345678",
                attributes={"vip": True},
            ),
            now=NOW,
        )
    await identified(
        client,
        site,
        ANA_BROWSER,
        email="ana@example.com",
        first_name="Mallory",
        last_name="Martin",
        phone="+33699999999",
        city="Lyon",
        vip=False,
        shoe_size=38,
    )
    ana = await contact(database, "ana@example.com")
    # Stored values stay; empty ones are filled in.
    assert (ana.first_name, ana.phone) == ("Ana", "+33612345678")
    assert (ana.last_name, ana.city) == ("Martin", "Lyon")
    assert ana.attributes == {"vip": True, "shoe_size": 38}
