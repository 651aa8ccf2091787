"""CSV import and export: bad rows with line numbers, idempotence, consent, BOM, CRLF."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from courriel.errors import InvalidInput, NotFound
from courriel.marketing import csvbatch, csvio
from courriel.marketing.consent import consent_history
from courriel.marketing.contacts import (
    find_contact_id,
    get_contact,
    search_contacts,
    upsert_contact,
)
from courriel.marketing.csvexport import export_contacts
from courriel.marketing.csvio import BATCH, INLINE_CHUNKS, import_contacts
from courriel.marketing.gdpr import forget
from courriel.marketing.lists import find_list, members
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.marketing import consents, contacts

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)

SAMPLE = (
    "\ufeffEmail,First_Name,last_name,Phone,Country,tags,email_consent,Plan,Notes\r\n"
    "ann@example.com,Ann,Lee,+33 6 12 34 56 78,fr,vip;news,,gold,\r\n"
    "bad-address,Bob,,,,,,,\r\n"
    'carl@example.com,Carl,,06 12 34 56 78,FR,,unsubscribed,,"line one\r\nline two"\r\n'
    "dora@example.com,Dora,,12,,,,,\r\n"
    "eve@example.com,Eve,,,Narnia,,,,\r\n"
    "\r\n"
    "fay@example.com,Fay,,,,,maybe,,\r\n"
    "gus@example.com,Gus,,,,,,silver,,extra\r\n"
)


async def test_bad_rows_are_reported_with_lines_and_fields(database: Database) -> None:
    seen: list[int] = []
    report = await import_contacts(
        database,
        io.StringIO(SAMPLE, newline=""),
        list_name="Shop",
        consent="subscribed",
        now=T0,
        progress=seen.append,
    )
    assert (report.imported, report.updated, report.unchanged) == (2, 0, 0)
    assert [(e.line, e.field) for e in report.errors] == [
        (3, "email"),
        (6, "phone"),
        (7, "country"),
        (9, "email_consent"),
        (10, None),
    ]
    assert str(report.errors[1]).startswith("line 6: phone: ")
    assert seen[-1] == 7  # rows read, the blank line not counted
    async with database.read() as conn:
        ann = await get_contact(conn, await find_contact_id(conn, "ann@example.com") or 0)
        carl = await get_contact(conn, await find_contact_id(conn, "carl@example.com") or 0)
        shop = await find_list(conn, "Shop")
        assert shop is not None
        listed = await members(conn, shop.id)
    assert (ann.first_name, ann.last_name, ann.phone, ann.country) == (
        "Ann",
        "Lee",
        "+33612345678",
        "FR",
    )
    assert ann.tags == ("news", "vip")
    assert ann.attributes == {"Plan": "gold"}
    assert ann.source == "import"
    assert ann.email_status == "subscribed"
    # The quoted two-line cell, the per-row consent override and the country as region.
    assert carl.attributes == {"Notes": "line one\r\nline two"}
    assert carl.email_status == "unsubscribed"
    assert carl.phone == "+33612345678"
    assert [(m.email, m.status) for m in listed] == [
        ("ann@example.com", "subscribed"),
        ("carl@example.com", "unsubscribed"),
    ]


async def test_reimport_is_idempotent(database: Database) -> None:
    await import_contacts(database, io.StringIO(SAMPLE, newline=""), consent="subscribed", now=T0)
    async with database.read() as conn:
        proofs = (await conn.execute(select(func.count()).select_from(consents))).scalar_one()
    report = await import_contacts(
        database, io.StringIO(SAMPLE, newline=""), consent="subscribed", now=T1
    )
    assert (report.imported, report.updated, report.unchanged) == (0, 0, 2)
    async with database.read() as conn:
        again = (await conn.execute(select(func.count()).select_from(consents))).scalar_one()
        ann = await get_contact(conn, await find_contact_id(conn, "ann@example.com") or 0)
    assert again == proofs == 2
    assert ann.updated_at == T0


async def test_merge_with_existing_contacts(database: Database) -> None:
    await import_contacts(
        database, io.StringIO("email,city,tags,Plan\nh@example.com,Oslo,a,gold\n"), now=T0
    )
    report = await import_contacts(
        database,
        io.StringIO("EMAIL,first_name,tags,Size\nH@Example.com,Hal,b,XL\n"),
        consent="pending",
        now=T1,
    )
    assert (report.imported, report.updated) == (0, 1)
    async with database.read() as conn:
        contact_id = await find_contact_id(conn, "h@example.com")
        assert contact_id is not None
        hal = await get_contact(conn, contact_id)
        proof = await consent_history(conn, contact_id)
    assert (hal.first_name, hal.city, hal.tags) == ("Hal", "Oslo", ("a", "b"))
    assert hal.attributes == {"Plan": "gold", "Size": "XL"}
    assert hal.updated_at == T1
    assert [(p.status, p.method) for p in proof] == [("pending", "import")]


async def test_never_does_not_overwrite_consent(database: Database) -> None:
    await import_contacts(
        database, io.StringIO("email\ni@example.com\n"), consent="subscribed", now=T0
    )
    report = await import_contacts(
        database, io.StringIO("email\ni@example.com\n"), consent="never", now=T1
    )
    assert report.unchanged == 1
    async with database.read() as conn:
        [contact] = await search_contacts(conn, query="i@")
    assert contact.email_status == "subscribed"


async def test_repeated_address_in_one_file(database: Database) -> None:
    report = await import_contacts(
        database,
        io.StringIO("email,tags,city\nj@example.com,a,Rome\nJ@example.com,b,\n"),
        now=T0,
    )
    assert (report.imported, report.updated, report.unchanged) == (1, 1, 0)
    async with database.read() as conn:
        [contact] = await search_contacts(conn, query="j@")
    assert (contact.tags, contact.city) == (("a", "b"), "Rome")


async def test_many_batches(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # Past INLINE_CHUNKS chunks, rows are normalised in a worker process: bad rows found
    # there keep their line numbers, and batches are still written in file order.
    # One chunk per transaction on PostgreSQL too, so that progress counts the same.
    monkeypatch.setattr(csvio, "POSTGRESQL_CHUNKS", 1)
    count = BATCH * (INLINE_CHUNKS + 1) + 5
    body = [f"u{i}@example.com,{i},\n" for i in range(count)]
    body[count - 3] = "bad@example.com,x,12\n"
    body[count - 2] = "u0@example.com,again,\n"
    text = "email,n,phone\n" + "".join(body)
    calls: list[int] = []
    report = await import_contacts(database, io.StringIO(text), now=T0, progress=calls.append)
    assert (report.imported, report.updated) == (count - 2, 1)
    assert [(e.line, e.field) for e in report.errors] == [(count - 1, "phone")]
    assert calls == [BATCH * n for n in range(1, INLINE_CHUNKS + 2)] + [count]
    async with database.read() as conn:
        [first] = await search_contacts(conn, query="u0@")
    assert first.attributes == {"n": "again"}


async def test_forgotten_address_is_not_reimported(database: Database) -> None:
    await import_contacts(database, io.StringIO("email\nk@example.com\n"), now=T0)
    assert await forget(database, "k@example.com", now=T1)
    report = await import_contacts(
        database, io.StringIO("email\nother@example.com\nK@example.com\n"), now=T1
    )
    assert report.imported == 1
    assert [(e.line, e.field) for e in report.errors] == [(3, "email")]
    assert "erased" in report.errors[0].message
    async with database.read() as conn:
        assert await find_contact_id(conn, "k@example.com") is None


@pytest.mark.parametrize(
    "text",
    ["", "name,phone\nx,y\n", "email,Email\na@example.com,b\n", "email,,x\n"],
)
async def test_unusable_files(database: Database, text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await import_contacts(database, io.StringIO(text), now=T0)
    assert caught.value.field == "header"
    async with database.read() as conn:
        assert await search_contacts(conn, query=None) == []


async def test_export_round_trips(database: Database) -> None:
    text = (
        "email,first_name,phone,tags,email_consent,City,=cmd,attributes.x\n"
        "l@example.com,=SUM(A1),+4420 7946 0018,b;a,subscribed,Paris,v,1\n"
        "m@example.com,Mo,,,,,,\n"
    )
    await import_contacts(database, io.StringIO(text), list_name="L", now=T0)
    # An attribute named like a column (possible through the API) keeps its own column.
    async with database.write() as conn:
        data = ContactData(email="l@example.com", attributes={"City": "Lyon"})
        await upsert_contact(conn, data, now=T0)
    out = io.StringIO(newline="")
    assert await export_contacts(database, out) == 2
    exported = out.getvalue()
    lines = exported.split("\r\n")
    assert lines[0] == (
        "email,first_name,last_name,phone,country,region,city,postal_code,time_zone,"
        "tags,email_consent,'=cmd,attributes.City,x"
    )
    assert lines[1] == ("l@example.com,'=SUM(A1),,'+442079460018,,,Paris,,,a;b,subscribed,v,Lyon,1")
    # Importing the export back changes nothing.
    report = await import_contacts(database, io.StringIO(exported, newline=""), now=T1)
    assert (report.imported, report.updated, report.errors) == (0, 0, [])
    out2 = io.StringIO(newline="")
    await export_contacts(database, out2)
    assert out2.getvalue() == exported
    listed = io.StringIO(newline="")
    assert await export_contacts(database, listed, list_name="L") == 2
    with pytest.raises(NotFound):
        await export_contacts(database, io.StringIO(), list_name="nope")


async def test_export_protects_every_column_and_round_trips_exactly(database: Database) -> None:
    # OWASP CSV injection: a valid address can be a formula, and so can any other cell.
    awkward = {
        "=cmd|'/c'!a1@example.com": ContactData(
            email="=cmd|'/c'!a1@example.com",
            first_name="'=quoted",
            last_name="''twice",
            city="-1",
            phone="+33 6 12 34 56 78",
            attributes={"tab": "\tlead", "cr": "\rlead", "at": "'@x", "plain": "'hello"},
        ),
        "+plus@example.com": ContactData(email="+plus@example.com", first_name="@Ann"),
        "'=q@example.com": ContactData(email="'=q@example.com", region="'"),
    }
    async with database.write() as conn:
        for data in awkward.values():
            await upsert_contact(conn, data, now=T0)
    out = io.StringIO(newline="")
    await export_contacts(database, out)
    exported = out.getvalue()
    rows = list(csv.reader(io.StringIO(exported, newline="")))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (cell, row)
    before = {}
    async with database.read() as conn:
        for email in awkward:
            contact_id = await find_contact_id(conn, email)
            assert contact_id is not None
            before[email] = await get_contact(conn, contact_id)
    async with database.write() as conn:
        await conn.execute(contacts.delete())
    report = await import_contacts(database, io.StringIO(exported, newline=""), now=T0)
    assert (report.imported, report.errors) == (3, [])
    async with database.read() as conn:
        for email, old in before.items():
            contact_id = await find_contact_id(conn, email)
            assert contact_id is not None
            new = await get_contact(conn, contact_id)
            fields = ("email", "first_name", "last_name", "phone", "region", "city", "attributes")
            assert [getattr(new, f) for f in fields] == [getattr(old, f) for f in fields]
    again = io.StringIO(newline="")
    await export_contacts(database, again)
    assert again.getvalue() == exported


async def test_existing_members_keep_their_status(database: Database) -> None:
    # A membership that exists is left as it is (an unsubscribed member is not
    # re-subscribed); contacts new to the list join it; consent still moves, with proof.
    await import_contacts(
        database,
        io.StringIO("email,tags\nn@example.com,a\n"),
        list_name="News",
        consent="unsubscribed",
        now=T0,
    )
    report = await import_contacts(
        database,
        io.StringIO("email,tags\nn@example.com,a;b\no@example.com,a\n"),
        list_name="News",
        consent="subscribed",
        now=T1,
    )
    assert (report.imported, report.updated, report.unchanged) == (1, 1, 0)
    async with database.read() as conn:
        news = await find_list(conn, "News")
        assert news is not None
        listed = await members(conn, news.id)
        n_id = await find_contact_id(conn, "n@example.com")
        assert n_id is not None
        n = await get_contact(conn, n_id)
        history = await consent_history(conn, n_id)
    assert [(m.email, m.status, m.added_at) for m in listed] == [
        ("n@example.com", "unsubscribed", T0),
        ("o@example.com", "subscribed", T1),
    ]
    assert (n.tags, n.email_status, n.updated_at) == (("a", "b"), "subscribed", T1)
    assert [p.status for p in history] == ["unsubscribed", "subscribed"]


async def test_import_stores_what_the_contact_service_stores(database: Database) -> None:
    # The import writes through the driver with values converted by the columns' own
    # SQLAlchemy processors: the stored row (JSON text and timestamps included) is the one
    # upsert_contact stores for the same data.
    text = (
        "email,first_name,phone,country,city,Plan,Note\n"
        'p@example.com,Zoé,06 12 34 56 78,fr,Paris,gold,"é ""q"""\n'
    )
    await import_contacts(database, io.StringIO(text), now=T0)
    data = ContactData(
        email="q@example.com",
        first_name="Zoé",
        phone="06 12 34 56 78",
        country="fr",
        city="Paris",
        attributes={"Plan": "gold", "Note": 'é "q"'},
        source="import",
    )
    async with database.write() as conn:
        await upsert_contact(conn, data, now=T0)
    columns = [c for c in contacts.c if c.name not in ("id", "email")]
    # The raw values, as the driver returns them (text on SQLite).
    names = ", ".join(c.name for c in columns)
    async with database.read() as conn:
        rows = (
            await conn.exec_driver_sql(f"SELECT email, {names} FROM contacts ORDER BY email")
        ).all()
    assert [row[0] for row in rows] == ["p@example.com", "q@example.com"]
    assert dict(zip(names.split(", "), rows[0][1:], strict=True)) == dict(
        zip(names.split(", "), rows[1][1:], strict=True)
    )


async def test_reimport_in_many_batches(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two-row batches: the first batch of the second import tries its rows as new (as the
    # first import's batches were) and merges those that exist; the next ones read first.
    # Both ways give the same contacts.
    monkeypatch.setattr(csvio, "BATCH", 2)
    monkeypatch.setattr(csvio, "POSTGRESQL_CHUNKS", 1)
    first = "email,tags,city\n" + "".join(f"r{i}@example.com,a,Oslo\n" for i in range(6))
    await import_contacts(database, io.StringIO(first), consent="pending", now=T0)
    second = "email,tags,city\n" + "".join(
        f"r{i}@example.com,{'b' if i % 2 else 'a'},{'Rome' if i < 3 else ''}\n" for i in range(8)
    )
    report = await import_contacts(database, io.StringIO(second), consent="pending", now=T1)
    assert (report.imported, report.updated, report.unchanged, report.errors) == (2, 5, 1, [])
    async with database.read() as conn:
        found = {c.email: c for c in await search_contacts(conn, query=None)}
    assert sorted(found) == [f"r{i}@example.com" for i in range(8)]
    for i in range(8):
        contact = found[f"r{i}@example.com"]
        tags = ("a",) if i % 2 == 0 else ("b",) if i > 5 else ("a", "b")
        city = "Rome" if i < 3 else "Oslo" if i < 6 else None
        changed = i < 6 and (i < 3 or i % 2 == 1)
        assert (contact.tags, contact.city, contact.email_status) == (tags, city, "pending")
        assert contact.updated_at == (T1 if changed or i > 5 else T0), i


async def test_attributes_follow_the_engine_serializer(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker writes attributes as json.dumps does (SQLAlchemy's default); an engine
    # that serialises JSON otherwise gets its own text.
    default = csvbatch.binder

    def compact(conn: Any, column: Any) -> Any:
        if column.name == "attributes":
            return lambda value: json.dumps(value, separators=(",", ":"))
        return default(conn, column)

    monkeypatch.setattr(csvbatch, "binder", compact)
    await import_contacts(database, io.StringIO("email,Plan,Size\ns@example.com,gold,XL\n"), now=T0)
    async with database.read() as conn:
        stored = (await conn.exec_driver_sql("SELECT attributes FROM contacts")).scalar_one()
    if database.dialect == "sqlite":
        assert stored == '{"Plan":"gold","Size":"XL"}'
    else:
        assert stored == {"Plan": "gold", "Size": "XL"}


async def test_sqlite_store_ids_of_inserted_contacts(database: Database) -> None:
    if database.dialect != "sqlite":
        pytest.skip("the SQLite store only")
    from courriel.marketing.csvbatch import MERGED
    from courriel.marketing.csvlite import SqliteStore

    await import_contacts(database, io.StringIO("email\nw1@example.com\nw2@example.com\n"), now=T0)
    constants = {
        "source": "import",
        "sms_status": "never",
        "order_count": 0,
        "total_spent_minor": 0,
        "created_at": "2026-11-27 12:00:00.000000",
        "updated_at": "2026-11-27 12:00:00.000000",
    }

    def record(email: str) -> tuple[object, ...]:
        return (email, *[None] * len(MERGED), "{}", "never")

    def insert(emails: list[str]) -> Any:
        return lambda conn: SqliteStore(conn).insert_contacts(list(map(record, emails)), constants)

    # New addresses: their ids follow the largest one, in order.
    fresh = await database.run_write(insert(["w3@example.com", "w4@example.com"]))
    # One address exists (the batch's read keeps this from happening): every id is read back.
    mixed = await database.run_write(insert(["w5@example.com", "w1@example.com"]))
    async with database.read() as conn:
        stored = dict((await conn.exec_driver_sql("SELECT email, id FROM contacts")).all())
    assert fresh == {email: stored[email] for email in ("w3@example.com", "w4@example.com")}
    assert mixed == {email: stored[email] for email in ("w5@example.com", "w1@example.com")}
    assert len(stored) == 5


async def test_blank_rows_are_skipped_rows_without_address_reported(database: Database) -> None:
    # A row of empty cells is no row; one whose first cell is empty but not the others is.
    text = "email,first_name\n , \n,Bob\n\nx@example.com,Xi\n"
    report = await import_contacts(database, io.StringIO(text), now=T0)
    assert report.imported == 1
    assert [(e.line, e.field) for e in report.errors] == [(3, "email")]
