"""Campaign fixtures: a shop with a domain, a template, contacts on a list; a recording Mailer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from courriel.delivery.committer import CommitJob
from courriel.marketing.campaigns.message import Content
from courriel.marketing.campaigns.sender import (
    CampaignSender,
    RenderInput,
    SenderSettings,
)
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.links import LinkSigner
from courriel.marketing.lists import create_list, subscribe
from courriel.marketing.types import ConsentChange, ContactData
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, templates
from courriel.storage.models.mail import domains
from courriel.testing import mail as testing_mail

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
VERP_KEY = b"v" * 32


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


class Crash(Exception):
    """A simulated crash of the sender after the message was stored."""


@dataclass
class RecordingMailer(testing_mail.RecordingMailer):
    """The shared recorder, over a database, recording each copy with its commit.

    Recorded inside the write transaction: a task cancelled while awaiting it still
    counts. Campaign mail only (``transactional`` is False).
    """

    record_with_commit: bool = True
    crash_after: int | None = None  # raise after this many stored copies

    async def send(
        self,
        *,
        sender: str,
        recipient: str,
        message: bytes,
        transactional: bool = True,
        on_commit: Callable[[Connection], None] | None = None,
        signed: bool = False,
    ) -> bool:
        assert transactional is False
        assert self.db is not None
        accepted = await super().send(
            sender=sender,
            recipient=recipient,
            message=message,
            transactional=transactional,
            on_commit=on_commit,
            signed=signed,
        )
        if accepted and self.crash_after is not None and len(self.sent) >= self.crash_after:
            raise Crash("after commit")
        return accepted


@dataclass(frozen=True)
class FakeRenderer:
    """A tiny real renderer: formats the first name into subject and body."""

    html: str
    subject: str

    @property
    def recommendation_calls(self) -> frozenset[tuple[str, int]]:
        return frozenset()

    def render(self, data: RenderInput) -> Content:
        name = data.contact["first_name"] or "there"
        return Content(
            subject=self.subject.replace("{name}", name),
            html=self.html.replace("{name}", name),
            text=f"Hello {name}\nhttps://shop.example/sale\n",
        )


def make_sender(
    db: Database, mailer: RecordingMailer, clock: Clock, batch: int = 3
) -> CampaignSender:
    links = Links(LinkSigner(b"k" * 32, clock=clock), "https://mail.shop.example")
    settings = SenderSettings(
        concurrency=2,
        batch=batch,
        feedback_sender="mail.shop.example",
        shop_name="Shop",
        shop_address="1 Rue de la Paix, Paris",
        poll_seconds=0.01,
    )
    return CampaignSender(
        db,
        mailer,
        lambda html, subject, _pre: FakeRenderer(html, subject),
        None,
        links,
        VERP_KEY,
        settings,
        clock,
    )


@dataclass
class Shop:
    template_id: int
    list_id: int
    contacts: dict[str, int]


async def add_contact(db: Database, email: str, *, list_id: int | None, first: str = "Ann") -> int:
    async with db.write() as conn:
        contact_id = await upsert_contact(conn, ContactData(email=email, first_name=first), now=T0)
        if list_id is not None:
            await subscribe(conn, list_id, contact_id, method="api", now=T0)
        await set_consent(
            conn,
            contact_id,
            ConsentChange(channel="email", status="subscribed", method="api"),
            now=T0,
        )
    return contact_id


@pytest.fixture
async def shop(database: Database) -> Shop:
    async with database.write() as conn:
        await conn.execute(insert(domains).values(name="shop.example", created_at=T0))
        result = await conn.execute(
            insert(templates)
            .values(
                name="sale",
                kind="html",
                source="x",
                html='<html><body><p>Hi {name}</p><a href="https://shop.example/sale">Sale</a></body></html>',
                created_at=T0,
                updated_at=T0,
            )
            .returning(templates.c.id)
        )
        template_id = int(result.scalar_one())
        newsletter = await create_list(conn, name="newsletter", now=T0)
    people = {}
    for index in range(7):
        email = f"c{index}@customer.example"
        people[email] = await add_contact(database, email, list_id=newsletter.id, first=f"P{index}")
    return Shop(template_id=template_id, list_id=newsletter.id, contacts=people)


async def recipient_statuses(db: Database, campaign_id: int) -> dict[str, str]:
    """Each recipient address of the campaign with its send record's status."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(campaign_recipients.c.email, campaign_recipients.c.status).where(
                campaign_recipients.c.campaign_id == campaign_id
            )
        )
        return {row.email: row.status for row in rows}


async def commit_job(blobs: BlobStore, n: int, hook: Callable[[Connection], None]) -> CommitJob:
    """A one-recipient queue job for ``r{n}@remote.test`` whose ``on_commit`` is ``hook``."""
    writer = blobs.writer()
    await writer.write(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
    blob = writer.prepare()
    return CommitJob(
        sender=f"bounce-{n}@shop.example",
        account_ids=(),
        remote=(f"r{n}@remote.test",),
        blob=blob,
        size=blob.ref.size,
        trace_header=b"",
        internal_date=T0,
        on_commit=hook,
    )
