"""Contacts: upsert merge semantics, reads, search and delete on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.contacts import (
    contact_to_dict,
    delete_contact,
    find_contact_id,
    get_contact,
    search_contacts,
    upsert_contact,
)
from courriel.marketing.types import ContactData
from courriel.storage.db import Database

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)


@pytest.fixture
def db(database: Database) -> Database:
    """The migrated test database (the root conftest's ``database``)."""
    return database


async def test_create_normalises_every_field(db: Database) -> None:
    data = ContactData(
        email=" Jane.Doe@Bücher.Example ",
        first_name="  Jane ",
        last_name="Doe",
        phone="06 12 34 56 78",
        country="fr",
        city="Lyon",
        time_zone="Europe/Paris",
        attributes={"plan": "gold", "visits": 3},
        tags=("vip", " newsletter ", "vip"),
        source="import",
    )
    async with db.write() as conn:
        contact_id = await upsert_contact(conn, data, now=T0)
    async with db.read() as conn:
        contact = await get_contact(conn, contact_id)
    assert contact.email == "jane.doe@xn--bcher-kva.example"
    assert (contact.first_name, contact.last_name) == ("Jane", "Doe")
    assert contact.phone == "+33612345678"
    assert contact.country == "FR"
    assert contact.time_zone == "Europe/Paris"
    assert contact.attributes == {"plan": "gold", "visits": 3}
    assert contact.tags == ("newsletter", "vip")
    assert contact.source == "import"
    assert (contact.email_status, contact.sms_status) == ("never", "never")
    assert contact.created_at == contact.updated_at == T0
    assert contact_to_dict(contact)["created_at"] == T0.isoformat()


async def test_upsert_merges_and_keeps_unset_fields(db: Database) -> None:
    async with db.write() as conn:
        first = await upsert_contact(
            conn,
            ContactData(
                email="a@example.com",
                first_name="Ann",
                city="Oslo",
                attributes={"a": 1, "b": 2},
                tags=("x",),
                source="shopify:main",
            ),
            now=T0,
        )
    async with db.write() as conn:
        second = await upsert_contact(
            conn,
            ContactData(
                email="A@EXAMPLE.COM",
                last_name="Berg",
                city="",
                attributes={"b": 3, "c": None},
                tags=("y",),
                source="import",
            ),
            now=T1,
        )
    assert first == second
    async with db.read() as conn:
        contact = await get_contact(conn, first)
    assert (contact.first_name, contact.last_name, contact.city) == ("Ann", "Berg", None)
    assert contact.attributes == {"a": 1, "b": 3, "c": None}
    assert contact.tags == ("x", "y")
    assert contact.source == "shopify:main"
    assert (contact.created_at, contact.updated_at) == (T0, T1)


async def test_unchanged_upsert_keeps_updated_at(db: Database) -> None:
    data = ContactData(email="b@example.com", first_name="Bo", tags=("t",), attributes={"k": 1})
    async with db.write() as conn:
        contact_id = await upsert_contact(conn, data, now=T0)
    async with db.write() as conn:
        await upsert_contact(conn, data, now=T1)
    async with db.read() as conn:
        assert (await get_contact(conn, contact_id)).updated_at == T0
    async with db.write() as conn:
        await upsert_contact(conn, ContactData(email="b@example.com", tags=("u",)), now=T2)
    async with db.read() as conn:
        assert (await get_contact(conn, contact_id)).updated_at == T2


async def test_phone_uses_stored_country_as_region(db: Database) -> None:
    async with db.write() as conn:
        contact_id = await upsert_contact(
            conn, ContactData(email="c@example.com", country="GB"), now=T0
        )
        await upsert_contact(
            conn, ContactData(email="c@example.com", phone="020 7946 0018"), now=T1
        )
        contact = await get_contact(conn, contact_id)
    assert contact.phone == "+442079460018"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ContactData(email="not-an-address"), "email"),
        (ContactData(email="d@example.com", phone="12345"), "phone"),
        (ContactData(email="d@example.com", phone="+33 abc"), "phone"),
        (ContactData(email="d@example.com", country="France"), "country"),
        (ContactData(email="d@example.com", country="XX"), "country"),
        (ContactData(email="d@example.com", time_zone="Mars/Olympus"), "time_zone"),
        (ContactData(email="d@example.com", tags=("",)), "tags/0"),
        (ContactData(email="d@example.com", tags=("x" * 65,)), "tags/0"),
        (ContactData(email="d@example.com", first_name="x" * 256), "first_name"),
        (ContactData(email="d@example.com", attributes={"k": {1, 2}}), "attributes/k"),
    ],
)
async def test_bad_fields_name_the_field(db: Database, data: ContactData, field: str) -> None:
    async with db.write() as conn:
        with pytest.raises(InvalidInput) as caught:
            await upsert_contact(conn, data, now=T0)
    assert caught.value.field == field
    async with db.read() as conn:
        assert (await search_contacts(conn, query=None)) == []


async def test_attribute_limits_apply_after_merge(db: Database) -> None:
    async with db.write() as conn:
        await upsert_contact(
            conn,
            ContactData(email="e@example.com", attributes={f"k{i}": i for i in range(60)}),
            now=T0,
        )
    async with db.write() as conn:
        with pytest.raises(InvalidInput) as caught:
            await upsert_contact(
                conn,
                ContactData(email="e@example.com", attributes={f"j{i}": i for i in range(60)}),
                now=T1,
            )
    assert caught.value.field == "attributes"


async def test_find_search_and_delete(db: Database) -> None:
    async with db.write() as conn:
        ids = [
            await upsert_contact(conn, ContactData(email=email, first_name=name), now=T0)
            for email, name in [
                ("alice@example.com", "Alice"),
                ("bob@example.com", "Alfred"),
                ("carol@example.com", "Carol"),
                ("al_x@example.com", None),
            ]
        ]
    async with db.read() as conn:
        assert await find_contact_id(conn, "BOB@example.com") == ids[1]
        assert await find_contact_id(conn, "nobody@example.com") is None
        found = await search_contacts(conn, query="al", after_id=0, limit=2)
        assert [c.id for c in found] == ids[:2]
        rest = await search_contacts(conn, query="AL", after_id=found[-1].id, limit=2)
        assert [c.id for c in rest] == [ids[3]]
        # LIKE wildcards in the query are literal characters.
        assert [c.id for c in await search_contacts(conn, query="al_")] == [ids[3]]
        with pytest.raises(InvalidInput):
            await search_contacts(conn, query=None, limit=0)
    async with db.write() as conn:
        await delete_contact(conn, ids[0])
        with pytest.raises(NotFound):
            await delete_contact(conn, ids[0])
        with pytest.raises(NotFound):
            await get_contact(conn, ids[0])
