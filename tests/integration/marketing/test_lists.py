"""Lists and double opt-in: confirmation mail, signed link, consent proof."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.consent import consent_history
from courriel.marketing.contacts import get_contact, upsert_contact
from courriel.marketing.links import LinkSigner
from courriel.marketing.lists import (
    CONFIRM_MAX_AGE,
    OptIn,
    confirm_subscription,
    create_list,
    delete_list,
    ensure_list,
    get_list,
    list_lists,
    list_to_dict,
    members,
    send_outbox,
    subscribe,
    unsubscribe,
)
from courriel.marketing.suppression import suppress
from courriel.marketing.types import ContactData, OutgoingMail
from courriel.storage.db import Database
from courriel.testing.mail import RecordingMailer

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def optin(clock: Clock) -> OptIn:
    return OptIn(
        links=LinkSigner(KEY, clock=clock),
        public_url="https://shop.example/",
        sender="news@shop.example",
    )


async def _contact(db: Database, address: str = "dana@example.com") -> int:
    async with db.write() as conn:
        return await upsert_contact(conn, ContactData(email=address), now=T0)


async def _subscribe_doi(db: Database, optin: OptIn, contact_id: int) -> tuple[int, str]:
    outbox: list[OutgoingMail] = []
    async with db.write() as conn:
        news = await create_list(conn, name="News", double_opt_in=True, now=T0)
        status = await subscribe(
            conn,
            news.id,
            contact_id,
            method="form",
            ip="192.0.2.1",
            now=T0,
            optin=optin,
            outbox=outbox,
        )
    assert status == "pending"
    mailer = RecordingMailer()
    await send_outbox(mailer, outbox)
    assert len(mailer.sent) == 1
    [sent] = mailer.sent
    assert (sent.sender, sent.recipient, sent.transactional) == (
        "news@shop.example",
        "dana@example.com",
        True,
    )
    raw = sent.message
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert message["Subject"] == "Please confirm your subscription to News"
    assert message["From"] == "news@shop.example"
    body = message.get_content()
    found = re.search(r"https://shop\.example/u/confirm/([A-Za-z0-9_.-]+)", body)
    assert found is not None
    return news.id, found.group(1)


async def test_plain_list_subscribes_at_once(database: Database) -> None:
    contact_id = await _contact(database)
    async with database.write() as conn:
        plain = await create_list(conn, name="Offers", now=T0)
        assert await subscribe(conn, plain.id, contact_id, method="api", now=T0) == "subscribed"
        contact = await get_contact(conn, contact_id)
        proof = await consent_history(conn, contact_id)
    assert contact.email_status == "subscribed"
    assert [(p.status, p.method, p.detail) for p in proof] == [("subscribed", "api", "list:Offers")]


async def test_double_opt_in_flow(database: Database, optin: OptIn, clock: Clock) -> None:
    contact_id = await _contact(database)
    list_id, token = await _subscribe_doi(database, optin, contact_id)
    async with database.read() as conn:
        assert (await get_contact(conn, contact_id)).email_status == "pending"
        assert list_to_dict(await get_list(conn, list_id))["pending"] == 1
    clock.now = T0 + timedelta(days=1)
    name = await confirm_subscription(database, optin.links, token, "198.51.100.9", clock.now)
    assert name == "News"
    async with database.read() as conn:
        contact = await get_contact(conn, contact_id)
        proof = await consent_history(conn, contact_id)
        [member] = await members(conn, list_id)
    assert contact.email_status == "subscribed"
    assert [(p.status, p.method, p.ip) for p in proof] == [
        ("pending", "form", "192.0.2.1"),
        ("subscribed", "double_opt_in", "198.51.100.9"),
    ]
    assert (member.status, member.confirmed_at) == ("subscribed", clock.now)
    # Following the link again changes nothing.
    assert await confirm_subscription(database, optin.links, token, None, clock.now) == "News"
    async with database.read() as conn:
        assert len(await consent_history(conn, contact_id)) == 2


async def test_tampered_foreign_and_expired_links_are_refused(
    database: Database, optin: OptIn, clock: Clock
) -> None:
    contact_id = await _contact(database)
    _, token = await _subscribe_doi(database, optin, contact_id)
    body, mac = token.split(".")
    other = LinkSigner(b"x" * 32, clock=clock)
    forged = other.sign("list-confirm", {"l": 1, "c": contact_id})
    for bad in (f"{body}x.{mac}", f"{body}.{mac[:-2]}", "garbage", "", forged, "a.b.c"):
        with pytest.raises(InvalidInput) as caught:
            await confirm_subscription(database, optin.links, bad, None, T0)
        assert caught.value.field == "token"
    clock.now = T0 + CONFIRM_MAX_AGE + timedelta(seconds=1)
    with pytest.raises(InvalidInput, match="expired"):
        await confirm_subscription(database, optin.links, token, None, clock.now)
    async with database.read() as conn:
        assert (await get_contact(conn, contact_id)).email_status == "pending"


async def test_unsubscribed_member_is_not_revived_by_old_link(
    database: Database, optin: OptIn
) -> None:
    contact_id = await _contact(database)
    list_id, token = await _subscribe_doi(database, optin, contact_id)
    async with database.write() as conn:
        assert await unsubscribe(conn, list_id, contact_id, now=T0)
        assert not await unsubscribe(conn, list_id, contact_id, now=T0)
    with pytest.raises(InvalidInput, match="cancelled"):
        await confirm_subscription(database, optin.links, token, None, T0)


async def test_no_mail_to_subscribed_or_suppressed(database: Database, optin: OptIn) -> None:
    known = await _contact(database)
    blocked = await _contact(database, "blocked@example.com")
    outbox: list[OutgoingMail] = []
    async with database.write() as conn:
        doi = await create_list(conn, name="DOI", double_opt_in=True, now=T0)
        plain = await create_list(conn, name="Plain", now=T0)
        await subscribe(conn, plain.id, known, method="api", now=T0)
        await suppress(
            conn, kind="address", value="blocked@example.com", reason="complaint", now=T0
        )
        # Already subscribed by email: pending on the list, consent stays subscribed.
        assert (
            await subscribe(conn, doi.id, known, method="form", now=T0, optin=optin, outbox=outbox)
            == "pending"
        )
        assert (await get_contact(conn, known)).email_status == "subscribed"
        assert (
            await subscribe(
                conn, doi.id, blocked, method="form", now=T0, optin=optin, outbox=outbox
            )
            == "pending"
        )
        with pytest.raises(ValueError):
            await subscribe(conn, doi.id, known, method="form", now=T0)
    assert [mail.recipient for mail in outbox] == ["dana@example.com"]


async def test_list_crud(database: Database) -> None:
    contact_id = await _contact(database)
    async with database.write() as conn:
        news = await create_list(conn, name=" News ", now=T0)
        assert news.name == "News"
        with pytest.raises(AlreadyExists):
            await create_list(conn, name="News", now=T0)
        with pytest.raises(InvalidInput):
            await create_list(conn, name="  ", now=T0)
        assert (await ensure_list(conn, "News", now=T0)).id == news.id
        await subscribe(conn, news.id, contact_id, method="api", now=T0)
        assert [(x.name, x.subscribed) for x in await list_lists(conn)] == [("News", 1)]
        await delete_list(conn, news.id)
        with pytest.raises(NotFound):
            await get_list(conn, news.id)
        with pytest.raises(NotFound):
            await delete_list(conn, news.id)
        assert (await get_contact(conn, contact_id)).email_status == "subscribed"
