"""The sender with render processes, on both engines: real worker processes render and sign.

A campaign to seven contacts in batches of three goes through a ``RenderPool`` of one
spawned process: every recipient gets exactly one copy, signed there with the domain's
RSA and Ed25519 keys (dkimpy verifies both), personalised, and marked sent with its
commit; a copy that cannot be rendered fails alone; a batch smaller than the threshold is
rendered on the event loop instead (unsigned: the router signs it).
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import dkim as dkimpy
import pytest
from sqlalchemy import update

from courriel.delivery.dkimkeys import dns_records, ensure_keys, signing_pems
from courriel.marketing.campaigns.copies import SenderSettings
from courriel.marketing.campaigns.pool import Pooling, RenderPool
from courriel.marketing.campaigns.render import renderer_factory
from courriel.marketing.campaigns.sender import CampaignSender
from courriel.marketing.campaigns.service import create_campaign, send_campaign
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.links import LinkSigner
from courriel.storage.db import Database
from courriel.storage.models.campaigns import templates
from courriel.storage.models.marketing import contacts

from .conftest import T0, VERP_KEY, Clock, RecordingMailer, Shop, recipient_statuses

SHOP = {"name": "Shop", "url": "https://shop.example", "address": "1 Rue", "currency": "EUR"}
HTML = (
    "<html><body><p>Hi {{ contact.first_name }}</p>"
    "<p>{{ 10 // contact.attributes.get('divisor', 1) }}</p>"
    '<a href="https://shop.example/sale">Sale</a></body></html>'
)


@pytest.fixture
async def pool() -> AsyncIterator[RenderPool]:
    made = RenderPool(1, chunk=2)
    yield made
    made.close()


async def _keys(db: Database, domain: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    name, pems = await signing_pems(db, domain)
    return (name, pems) if pems else None


def _sender(db: Database, mailer: RecordingMailer, pool: RenderPool, threshold: int) -> Any:
    settings = SenderSettings(
        concurrency=4,
        batch=3,
        feedback_sender="mail.shop.example",
        shop_name="Shop",
        shop_address="1 Rue de la Paix, Paris",
    )

    async def keys(domain: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        return await _keys(db, domain)

    return CampaignSender(
        db,
        mailer,
        renderer_factory(SHOP),
        None,
        Links(LinkSigner(b"k" * 32), "https://mail.shop.example"),
        VERP_KEY,
        settings,
        Clock(),
        pooling=Pooling(pool=pool, shop=SHOP, signing_keys=keys, threshold=threshold),
    )


async def _campaign(db: Database, shop: Shop) -> int:
    async with db.write() as conn:
        await conn.execute(
            update(templates).where(templates.c.id == shop.template_id).values(html=HTML)
        )
        made = await create_campaign(
            conn,
            name="Pool",
            variants=[("News for {{ contact.first_name }}", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            from_name="Shop",
            now=T0,
        )
        await send_campaign(conn, made.id, now=T0, shop_address="1 Rue de la Paix, Paris")
    return made.id


async def _drain(sender: Any) -> None:
    for _ in range(100):
        if not await sender.step_all():
            return
    raise AssertionError("the sender never settled")


async def _dnsfunc(db: Database) -> Any:
    rows = await dns_records(db, "shop.example", hostname="mail.shop.example")
    txt = {f"{r.name}.".encode(): r.value.encode() for r in rows if r.type == "TXT"}

    def lookup(name: bytes | str, timeout: int = 5) -> bytes:
        key = name if isinstance(name, bytes) else name.encode()
        return txt.get(key if key.endswith(b".") else key + b".", b"")

    return lookup


async def test_render_processes_sign_every_copy_once(
    database: Database, shop: Shop, pool: RenderPool
) -> None:
    await ensure_keys(database, "shop.example", today=date(2026, 11, 27))
    async with database.write() as conn:
        await conn.execute(
            update(contacts)
            .where(contacts.c.email == "c4@customer.example")
            .values(attributes={"divisor": 0})
        )
    campaign_id = await _campaign(database, shop)
    mailer = RecordingMailer(database)
    await _drain(_sender(database, mailer, pool, threshold=1))

    statuses = await recipient_statuses(database, campaign_id)
    assert statuses.pop("c4@customer.example") == "failed"  # 10 // 0: this copy alone
    assert set(statuses.values()) == {"sent"} and len(statuses) == 6
    assert Counter(m.recipient for m in mailer.sent) == dict.fromkeys(statuses, 1)
    dnsfunc = await _dnsfunc(database)
    for mail in mailer.sent:
        assert mail.signed and not mail.transactional
        verifier = dkimpy.DKIM(mail.message)
        assert mail.message.count(b"DKIM-Signature:") == 2
        assert verifier.verify(idx=0, dnsfunc=dnsfunc) and verifier.verify(idx=1, dnsfunc=dnsfunc)
        parsed = email.message_from_bytes(mail.message, policy=email.policy.default)
        first = contacts_first(mail.recipient)
        assert parsed["Subject"] == f"News for {first}"
        body = parsed.get_body(("html",))
        assert body is not None and f"Hi {first}" in body.get_content()


def contacts_first(address: str) -> str:
    """The conftest's first names: c<i>@customer.example is P<i>."""
    return "P" + address.split("@", maxsplit=1)[0][1:]


async def test_a_batch_under_the_threshold_renders_on_the_loop(
    database: Database, shop: Shop, pool: RenderPool
) -> None:
    await ensure_keys(database, "shop.example", today=date(2026, 11, 27))
    campaign_id = await _campaign(database, shop)
    mailer = RecordingMailer(database)
    await _drain(_sender(database, mailer, pool, threshold=4))  # batches of 3: never
    assert set((await recipient_statuses(database, campaign_id)).values()) == {"sent"}
    assert len(mailer.sent) == 7
    # Not signed here: the router signs mail as it enters delivery.
    assert not any(m.signed or b"DKIM-Signature" in m.message for m in mailer.sent)
