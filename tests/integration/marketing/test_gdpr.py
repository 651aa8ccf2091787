"""GDPR: export everything about a person; forget them and keep them from coming back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.delivery.queue import enqueue
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.gdpr import export_person, forget
from courriel.marketing.lists import create_list, subscribe
from courriel.marketing.suppression import address_hash, is_suppressed, suppress
from courriel.marketing.types import ConsentChange, ContactData
from courriel.storage.db import Database
from courriel.storage.models.marketing import (
    browser_ids,
    checkouts,
    consents,
    contacts,
    customers,
    events,
    integrations,
    list_members,
    order_lines,
    orders,
    suppressions,
)
from courriel.storage.models.queue import queue_attempts, queue_messages, queue_recipients

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


async def _shop_data(conn: AsyncConnection, contact_id: int) -> None:
    integration = (
        await conn.execute(
            insert(integrations)
            .values(kind="shopify", name="main", secret="s", created_at=T0)
            .returning(integrations.c.id)
        )
    ).scalar_one()
    customer = (
        await conn.execute(
            insert(customers)
            .values(
                integration_id=integration,
                external_id="c1",
                contact_id=contact_id,
                created_at=T0,
                updated_at=T0,
            )
            .returning(customers.c.id)
        )
    ).scalar_one()
    order = (
        await conn.execute(
            insert(orders)
            .values(
                integration_id=integration,
                external_id="o1",
                contact_id=contact_id,
                customer_id=customer,
                number="#1001",
                currency="EUR",
                total_minor=4200,
                discount_codes=["WELCOME"],
                status="paid",
                placed_at=T0,
                updated_at=T0,
            )
            .returning(orders.c.id)
        )
    ).scalar_one()
    await conn.execute(
        insert(order_lines).values(
            order_id=order,
            title="Mug",
            quantity=2,
            price_minor=2100,
            sku="MUG",
            contact_id=contact_id,
            placed_at=T0,
            status="paid",
        )
    )
    await conn.execute(
        insert(checkouts).values(
            integration_id=integration,
            external_id="k1",
            contact_id=contact_id,
            lines=[],
            created_at=T0,
            updated_at=T0,
        )
    )
    await conn.execute(
        insert(browser_ids).values(
            anonymous_id="anon-1", contact_id=contact_id, first_seen=T0, last_seen=T0
        )
    )
    await conn.execute(
        insert(events),
        [
            {
                "contact_id": contact_id,
                "anonymous_id": None,
                "name": "Placed Order",
                "properties": {"n": 1},
                "occurred_at": T0,
                "source": "shopify:main",
                "unique_key": "o1",
            },
            {
                "contact_id": None,
                "anonymous_id": "anon-1",
                "name": "Viewed Product",
                "properties": {},
                "occurred_at": T0,
                "source": "tracker",
                "unique_key": "v1",
            },
        ],
    )


async def _person(db: Database) -> int:
    async with db.write() as conn:
        contact_id = await upsert_contact(
            conn,
            ContactData(email="Erin@Example.com", first_name="Erin", tags=("vip",)),
            now=T0,
        )
        change = ConsentChange(channel="email", status="subscribed", method="form", ip="192.0.2.7")
        await set_consent(conn, contact_id, change, now=T0)
        news = await create_list(conn, name="News", now=T0)
        await subscribe(conn, news.id, contact_id, method="form", now=T0)
        await suppress(conn, kind="address", value="erin@example.com", reason="bounce", now=T0)
        await _shop_data(conn, contact_id)
    return contact_id


async def test_export_holds_everything(database: Database) -> None:
    contact_id = await _person(database)
    person = await export_person(database, "ERIN@example.com")
    assert person["email"] == "erin@example.com"
    assert person["contact"]["id"] == contact_id
    assert person["contact"]["tags"] == ["vip"]
    assert [(c["status"], c["method"], c["ip"]) for c in person["consent"]] == [
        ("subscribed", "form", "192.0.2.7")
    ]
    assert [(m["name"], m["status"]) for m in person["lists"]] == [("News", "subscribed")]
    assert [c["external_id"] for c in person["customers"]] == ["c1"]
    assert [(o["number"], o["total_minor"]) for o in person["orders"]] == [("#1001", 4200)]
    assert [(line["sku"], line["quantity"]) for line in person["orders"][0]["lines"]] == [
        ("MUG", 2)
    ]
    assert [c["external_id"] for c in person["checkouts"]] == ["k1"]
    assert sorted(e["name"] for e in person["events"]) == ["Placed Order", "Viewed Product"]
    assert [b["anonymous_id"] for b in person["browser_ids"]] == ["anon-1"]
    assert [(s["kind"], s["reason"]) for s in person["suppressions"]] == [("address", "bounce")]
    assert person["orders"][0]["placed_at"] == T0.isoformat()


async def test_export_of_unknown_address(database: Database) -> None:
    person = await export_person(database, "nobody@example.com")
    assert person["contact"] is None
    assert person["orders"] == [] and person["suppressions"] == []


async def test_forget_erases_and_leaves_only_a_hash(database: Database) -> None:
    await _person(database)
    assert await forget(database, "erin@EXAMPLE.com", now=T1)
    async with database.read() as conn:
        for table in (
            contacts,
            consents,
            list_members,
            customers,
            orders,
            order_lines,
            checkouts,
            events,
            browser_ids,
        ):
            count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            assert (table.name, count) == (table.name, 0)
        rows = (await conn.execute(select(suppressions))).mappings().all()
        assert [(r["kind"], r["value"], r["reason"]) for r in rows] == [
            ("hash", address_hash("erin@example.com"), "forgotten")
        ]
        assert await is_suppressed(conn, "erin@example.com")
    # A second request finds nobody but still answers.
    assert not await forget(database, "erin@example.com", now=T1)
    person = await export_person(database, "erin@example.com")
    assert person["contact"] is None
    assert [s["reason"] for s in person["suppressions"]] == ["forgotten"]


async def _enqueue(conn: AsyncConnection, recipients: list[str], key: str) -> int:
    return await enqueue(
        conn,
        sender="news@shop.example",
        recipients=recipients,
        blob_key=key * 64,
        size=10,
        trace_header=b"",
    )


async def test_forget_drops_mail_still_queued_for_the_person(database: Database) -> None:
    async with database.write() as conn:
        await upsert_contact(conn, ContactData(email="ana@example.com"), now=T0)
        # A double opt-in confirmation for Ana alone, and a message to Ana and Bob.
        alone = await _enqueue(conn, ["Ana@Example.com"], "a")
        shared = await _enqueue(conn, ["ana@example.com", "bob@example.com"], "b")
        ana_shared = (
            await conn.execute(
                select(queue_recipients.c.id).where(
                    queue_recipients.c.message_id == shared,
                    queue_recipients.c.recipient == "ana@example.com",
                )
            )
        ).scalar_one()
        await conn.execute(
            insert(queue_attempts).values(
                recipient_id=ana_shared, attempted_at=T0, outcome="deferred", reply="451 later"
            )
        )
    assert await forget(database, "ana@example.com", now=T1)
    async with database.read() as conn:
        left = (
            await conn.execute(
                select(queue_recipients.c.message_id, queue_recipients.c.recipient).order_by(
                    queue_recipients.c.id
                )
            )
        ).all()
        messages = set((await conn.execute(select(queue_messages.c.id))).scalars())
        attempts = (await conn.execute(select(func.count()).select_from(queue_attempts))).scalar()
    # Ana's confirmation is gone with its message; Bob still gets the shared one.
    assert [tuple(row) for row in left] == [(shared, "bob@example.com")]
    assert messages == {shared}
    assert alone not in messages
    assert attempts == 0
