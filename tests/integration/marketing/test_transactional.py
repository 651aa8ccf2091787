"""marketing.campaigns.transactional: exactly-once sending, crashes, tracking rules.

The Mailer here is the shared recorder (courriel.testing.mail), a real implementation of
the port: ``on_commit`` runs inside a real write transaction (Database.run_write, as the
delivery committer runs it) and the message counts as stored only when that transaction
commits.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import poplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from courriel.delivery.dkimkeys import ensure_keys, list_keys
from courriel.errors import AlreadyExists, InvalidInput, StorageError
from courriel.mailstore.domains import add_domain
from courriel.marketing.apikeys import create_key
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.campaigns.transactional import (
    PENDING_LEASE,
    MessageRequest,
    Settings,
    get_message,
    send_message,
)
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.links import LinkSigner
from courriel.marketing.templates.service import add_template
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.campaigns import transactional_messages
from courriel.testing.mail import RecordingMailer
from courriel.testing.node import running_node

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HTML = (
    "<html><body><p>Hi {{ contact.first_name | default('there') }}</p>"
    "{% for p in recommendations('recently_viewed', 2) %}<p>{{ p.title }}</p>{% endfor %}"
    "<p>{{ shop.name }}</p></body></html>"
)


class Crash(BaseException):
    """The process dies here (not an Exception: nothing cleans up after it)."""


@dataclass
class Mailer(RecordingMailer):
    """The shared recorder over a database, for transactional mail only, with two faults.

    ``gate``: when set, send waits for it first. ``fail_in_transaction``: the store
    transaction fails after ``on_commit`` ran (a full disk), so nothing commits.
    """

    gate: asyncio.Event | None = None
    fail_in_transaction: bool = False

    async def send(
        self,
        *,
        sender: str,
        recipient: str,
        message: bytes,
        transactional: bool = True,
        on_commit: Callable[[Connection], None] | None = None,
    ) -> bool:
        assert transactional and self.db is not None
        if self.gate is not None:
            await self.gate.wait()

        def store(conn: Connection) -> None:
            if on_commit is not None:
                on_commit(conn)
            if self.fail_in_transaction:
                raise StorageError("disk full")

        return await super().send(
            sender=sender,
            recipient=recipient,
            message=message,
            transactional=transactional,
            on_commit=store,
        )


@pytest.fixture
async def ready(database: Database) -> None:
    await add_domain(database, "shop.test")
    async with database.write() as conn:
        await add_template(conn, name="hello", kind="html", source=HTML, now=T0)
        await upsert_contact(conn, ContactData(email="ada@example.test", first_name="Ada"), now=T0)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "links": Links(LinkSigner(b"k" * 32), "https://mail.shop.test"),
        "verp_key": b"v" * 32,
        "shop": {"name": "Shop Test", "address": "1 Test Street\n75000 Paris"},
    }
    values.update(overrides)
    return Settings(**values)


def request(key: str = "key-1", to: str = "ada@example.test") -> MessageRequest:
    return MessageRequest(
        template="hello",
        to=to,
        from_address="hello@shop.test",
        subject="Hi {{ contact.first_name | default('you') }}",
        idempotency_key=key,
    )


async def statuses(db: Database) -> list[tuple[int, str]]:
    async with db.read() as conn:
        found = await conn.execute(
            select(transactional_messages.c.id, transactional_messages.c.status)
        )
        return [(int(r.id), str(r.status)) for r in found]


def html_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


@pytest.mark.usefixtures("ready")
async def test_crash_before_the_message_is_stored_then_retry_sends_once(
    database: Database,
) -> None:
    mailer = Mailer(database, error=Crash())
    with pytest.raises(Crash):
        await send_message(database, mailer, settings(), request(), now=T0)
    [(reserved, status)] = await statuses(database)
    assert status == "pending"  # reserved, never claims to be queued
    mailer.error = None
    with pytest.raises(AlreadyExists):  # within the lease: maybe still being sent
        await send_message(database, mailer, settings(), request(), now=T0 + PENDING_LEASE / 2)
    later = T0 + PENDING_LEASE * 2
    outcome = await send_message(database, mailer, settings(), request(), now=later)
    assert (outcome.id, outcome.status, outcome.replay) == (reserved, "queued", False)
    again = await send_message(database, mailer, settings(), request(), now=later)
    assert (again.id, again.status, again.replay) == (reserved, "queued", True)
    assert len(mailer.sent) == 1
    assert await statuses(database) == [(reserved, "queued")]


@pytest.mark.usefixtures("ready")
async def test_a_concurrent_request_of_the_same_key_never_sends_twice(
    database: Database,
) -> None:
    mailer = Mailer(database, gate=asyncio.Event())
    first = asyncio.create_task(send_message(database, mailer, settings(), request(), now=T0))
    while not await statuses(database):
        await asyncio.sleep(0)
    with pytest.raises(AlreadyExists):
        await send_message(database, mailer, settings(), request(), now=T0)
    assert mailer.gate is not None
    mailer.gate.set()
    outcome = await first
    assert outcome.status == "queued"
    assert len(mailer.sent) == 1


@pytest.mark.usefixtures("ready")
async def test_failed_store_transaction_leaves_no_row(database: Database) -> None:
    mailer = Mailer(database, fail_in_transaction=True)
    with pytest.raises(StorageError):
        await send_message(database, mailer, settings(), request(), now=T0)
    assert await statuses(database) == []
    mailer.fail_in_transaction = False
    outcome = await send_message(database, mailer, settings(), request(), now=T0)
    assert outcome.status == "queued" and not outcome.replay


@pytest.mark.usefixtures("ready")
async def test_recipient_refused_for_good_leaves_no_row(database: Database) -> None:
    mailer = Mailer(database, refuse={"ada@example.test"})
    with pytest.raises(InvalidInput) as refused:
        await send_message(database, mailer, settings(), request(), now=T0)
    assert refused.value.field == "to"
    assert await statuses(database) == []


@pytest.mark.usefixtures("ready")
async def test_pixel_follows_config_and_tracking_consent(database: Database) -> None:
    mailer = Mailer(database)
    await send_message(database, mailer, settings(), request("a"), now=T0)
    await send_message(database, mailer, settings(open_pixel=False), request("b"), now=T0)
    async with database.write() as conn:
        await upsert_contact(
            conn,
            ContactData(email="ada@example.test", attributes={"tracking_consent": False}),
            now=T0,
        )
    await send_message(database, mailer, settings(), request("c"), now=T0)
    with_pixel, off, refused = (html_of(m.message) for m in mailer.sent)
    assert "https://mail.shop.test/o/" in with_pixel
    assert "https://mail.shop.test/o/" not in off
    assert "https://mail.shop.test/o/" not in refused


@pytest.mark.usefixtures("ready")
async def test_shop_footer_feedback_id_and_status(database: Database) -> None:
    mailer = Mailer(database)
    outcome = await send_message(
        database, mailer, settings(feedback_sender="shop-test"), request(), now=T0
    )
    raw = mailer.sent[0].message
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(message["Feedback-ID"]).endswith(":0:transactional:shop-test")
    assert message["Subject"] == "Hi Ada"
    body = html_of(raw)
    assert "Shop Test" in body and "1 Test Street" in body
    async with database.read() as conn:
        shown = await get_message(conn, outcome.id)
    assert (shown.status, shown.email, shown.subject) == ("queued", "ada@example.test", "Hi Ada")


@pytest.mark.usefixtures("ready")
async def test_without_a_key_every_request_is_a_new_message(database: Database) -> None:
    mailer = Mailer(database)
    unkeyed = MessageRequest(
        template="hello", to="ada@example.test", from_address="hello@shop.test", subject="Hi"
    )
    first = await send_message(database, mailer, settings(), unkeyed, now=T0)
    second = await send_message(database, mailer, settings(), unkeyed, now=T0)
    assert first.id != second.id
    assert len(mailer.sent) == 2


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
async def test_bad_keys_are_refused(database: Database, key: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await send_message(database, Mailer(database), settings(), request(key), now=T0)
    assert refused.value.field == "idempotency_key"
    assert await statuses(database) == []


# -- end to end: HTTP in, DKIM-signed copy out of a local mailbox over POP3 --------------

PASSWORD = "correct horse battery staple"


def _pop3_all(port: int, user: str, tls: ssl.SSLContext) -> list[bytes]:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        client.stls(context=tls)  # RFC 2595 §4: no plaintext password before STLS
        client.user(user)
        client.pass_(PASSWORD)
        count, _ = client.stat()
        return [b"\r\n".join(client.retr(i + 1)[1]) + b"\r\n" for i in range(count)]
    finally:
        client.quit()


async def _dkim_dns(db: Database, domain: str) -> Callable[..., bytes]:
    keys = {f"{k.selector}._domainkey.{domain}.".encode(): k for k in await list_keys(db, domain)}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        key = keys[name]
        algorithm = "ed25519" if key.algorithm.startswith("ed25519") else "rsa"
        return f"v=DKIM1; k={algorithm}; p={key.public_key}".encode()

    return dnsfunc


async def test_end_to_end_over_http_to_a_local_mailbox(tmp_path: Path, db_url: str) -> None:
    async with running_node(tmp_path / "data", db_url, roles=("http", "pop3")) as running:
        db = running.services.db
        await running.services.mailstore.add_domain("shop.test")
        await running.services.mailstore.add_account("ada@shop.test", PASSWORD)
        await ensure_keys(db, "shop.test", today=date(2026, 11, 27))
        async with db.write() as conn:
            await add_template(conn, name="hello", kind="html", source=HTML, now=T0)
            await upsert_contact(conn, ContactData(email="ada@shop.test", first_name="Ada"), now=T0)
        _, secret = await create_key(db, "shop", ("messages:write", "messages:read"))
        headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": '"e2e-1"'}
        body = {
            "template": "hello",
            "to": "ada@shop.test",
            "from": "hello@shop.test",
            "subject": "Hi {{ contact.first_name }}",
        }
        base = f"http://127.0.0.1:{running.ports['http']}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            first = await client.post("/api/v1/messages", json=body, headers=headers)
            again = await client.post("/api/v1/messages", json=body, headers=headers)
            shown = await client.get(f"/api/v1/messages/{first.json()['id']}", headers=headers)
        assert (first.status_code, again.status_code) == (202, 200), first.text
        assert again.json()["id"] == first.json()["id"]
        assert shown.json()["status"] == "queued"
        [stored] = await asyncio.to_thread(
            _pop3_all, running.ports["pop3"], "ada@shop.test", running.client_tls()
        )
        assert dkim.verify(stored, dnsfunc=await _dkim_dns(db, "shop.test"))
        signature = str(email.message_from_bytes(stored)["DKIM-Signature"])
        tags = dict(
            part.strip().split("=", 1) for part in "".join(signature.split()).split(";") if part
        )
        signed = set(tags["h"].lower().split(":"))
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= signed  # RFC 8058 §4
        assert "Hi Ada" in html_of(stored)
