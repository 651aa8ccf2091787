"""Consent: status columns follow the append-only proof, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.consent import consent_history, consent_record_to_dict, set_consent
from courriel.marketing.contacts import get_contact, upsert_contact
from courriel.marketing.types import ConsentChange, ContactData
from courriel.storage.db import Database

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def _contact(db: Database) -> int:
    async with db.write() as conn:
        return await upsert_contact(conn, ContactData(email="p@example.com"), now=T0)


async def test_changes_append_proof_and_update_status(database: Database) -> None:
    contact_id = await _contact(database)
    changes = [
        ConsentChange(channel="email", status="subscribed", method="form", ip="2001:DB8::1"),
        ConsentChange(channel="email", status="subscribed", method="import"),  # unchanged
        ConsentChange(channel="sms", status="subscribed", method="shopify", detail="order 1001"),
        ConsentChange(channel="email", status="unsubscribed", method="unsubscribe_link"),
    ]
    applied = []
    for step, change in enumerate(changes):
        async with database.write() as conn:
            applied.append(
                await set_consent(conn, contact_id, change, now=T0 + timedelta(minutes=step))
            )
    assert applied == [True, False, True, True]
    async with database.read() as conn:
        contact = await get_contact(conn, contact_id)
        history = await consent_history(conn, contact_id)
    assert (contact.email_status, contact.sms_status) == ("unsubscribed", "subscribed")
    assert contact.updated_at == T0 + timedelta(minutes=3)
    assert [(r.channel, r.status, r.method) for r in history] == [
        ("email", "subscribed", "form"),
        ("sms", "subscribed", "shopify"),
        ("email", "unsubscribed", "unsubscribe_link"),
    ]
    # The IP address is stored in canonical form.
    assert history[0].ip == "2001:db8::1"
    assert consent_record_to_dict(history[1]) == {
        "channel": "sms",
        "status": "subscribed",
        "recorded_at": (T0 + timedelta(minutes=2)).isoformat(),
        "method": "shopify",
        "ip": None,
        "detail": "order 1001",
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (ConsentChange(channel="fax", status="subscribed", method="api"), "channel"),  # type: ignore[arg-type]
        (ConsentChange(channel="email", status="maybe", method="api"), "status"),  # type: ignore[arg-type]
        (ConsentChange(channel="email", status="subscribed", method=""), "method"),
        (ConsentChange(channel="email", status="subscribed", method="api", ip="1.2.3"), "ip"),
    ],
)
async def test_bad_changes_are_refused(
    database: Database, change: ConsentChange, field: str
) -> None:
    contact_id = await _contact(database)
    async with database.write() as conn:
        with pytest.raises(InvalidInput) as caught:
            await set_consent(conn, contact_id, change, now=T0)
    assert caught.value.field == field
    async with database.read() as conn:
        assert await consent_history(conn, contact_id) == []


async def test_unknown_contact(database: Database) -> None:
    change = ConsentChange(channel="email", status="subscribed", method="api")
    async with database.write() as conn:
        with pytest.raises(NotFound):
            await set_consent(conn, 12345, change, now=T0)
