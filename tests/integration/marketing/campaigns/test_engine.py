"""The campaign engine on both engines: audience freeze, state machine, exactly-once, A/B."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from courriel.errors import InvalidInput
from courriel.marketing.campaigns import stats
from courriel.marketing.campaigns.audience import in_sample
from courriel.marketing.campaigns.report import campaign_report
from courriel.marketing.campaigns.service import (
    AbSettings,
    Campaign,
    cancel,
    create_campaign,
    pause,
    progress,
    resume,
    send_campaign,
)
from courriel.marketing.campaigns.tokens import Ref, parse_verp
from courriel.marketing.consent import set_consent
from courriel.marketing.segments import service as segment_service
from courriel.marketing.suppression import suppress
from courriel.marketing.types import ConsentChange
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients

from .conftest import (
    T0,
    VERP_KEY,
    Clock,
    Crash,
    RecordingMailer,
    Shop,
    add_contact,
    make_sender,
    recipient_statuses,
)

ADDRESS = "1 Rue de la Paix, Paris"


async def _campaign(db: Database, shop: Shop, **extra: object) -> Campaign:
    variants = extra.pop("variants", [("Hi {name}", shop.template_id)])
    audience = extra.pop("audience", [("list", shop.list_id)])
    async with db.write() as conn:
        made = await create_campaign(
            conn,
            name="Black Friday",
            variants=variants,  # type: ignore[arg-type]
            audience=audience,  # type: ignore[arg-type]
            from_address="news@shop.example",
            from_name="Shop",
            now=T0,
            **extra,  # type: ignore[arg-type]
        )
        await send_campaign(conn, made.id, now=T0, shop_address=ADDRESS)
    return made


async def _drain(db: Database, sender: object, limit: int = 200) -> None:
    for _ in range(limit):
        if not await sender.step_all():  # type: ignore[attr-defined]
            return
    raise AssertionError("the sender never settled")


async def test_audience_rules(database: Database, shop: Shop) -> None:
    segment_only = await add_contact(database, "vip@other.example", list_id=None, first="Vip")
    await add_contact(database, "x@blocked.example", list_id=shop.list_id)
    await add_contact(database, "y@mx.blocked.example", list_id=shop.list_id)
    await add_contact(database, "bad@customer.example", list_id=shop.list_id)
    async with database.write() as conn:
        await set_consent(
            conn,
            shop.contacts["c0@customer.example"],
            ConsentChange(channel="email", status="unsubscribed", method="unsubscribe_link"),
            now=T0,
        )
        await suppress(conn, kind="domain", value="blocked.example", reason="manual", now=T0)
        await suppress(conn, kind="address", value="bad@customer.example", reason="bounce", now=T0)
    segment = await segment_service.create(
        database,
        name="vips and c1",
        definition={
            "kind": "any",
            "conditions": [
                {"kind": "profile", "field": "email", "op": "ends_with", "value": "@other.example"},
                {"kind": "profile", "field": "email", "op": "eq", "value": "c1@customer.example"},
            ],
        },
        now=T0,
    )
    made = await _campaign(
        database, shop, audience=[("list", shop.list_id), ("segment", segment.id)]
    )
    await _drain(database, make_sender(database, RecordingMailer(database), Clock()))
    got = await recipient_statuses(database, made.id)
    expected = {f"c{i}@customer.example" for i in range(1, 7)} | {"vip@other.example"}
    assert set(got) == expected  # c1 once although in both; the others excluded
    assert segment_only
    async with database.read() as conn:
        done = await progress(conn, made.id)
    assert (done.status, done.recipients, done.sent, done.pending) == ("sent", 7, 7, 0)


async def test_copies_carry_headers_and_personalisation(database: Database, shop: Shop) -> None:
    mailer = RecordingMailer(database)
    made = await _campaign(database, shop)
    await _drain(database, make_sender(database, mailer, Clock()))
    assert len(mailer.sent) == 7
    c3 = next(m for m in mailer.sent if m.recipient == "c3@customer.example")
    sender, recipient = c3.sender, c3.recipient
    message = email.message_from_bytes(c3.message, policy=email.policy.default)
    assert message["Subject"] == "Hi P3"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "mailto:" + sender in message["List-Unsubscribe"]
    assert message["Feedback-ID"] == f"{made.id}:A:campaign:mail.shop.example"
    ref = parse_verp(VERP_KEY, sender)
    async with database.read() as conn:
        who = await conn.run_sync(lambda c: stats.recipient(c, ref))
    assert who.email == recipient and who.campaign_id == made.id


async def test_crash_and_cancel_then_restart_send_exactly_once(
    database: Database, shop: Shop
) -> None:
    made = await _campaign(database, shop)
    crashing = RecordingMailer(database, crash_after=2)
    with pytest.raises(Crash):
        await _drain(database, make_sender(database, crashing, Clock()))
    # A restarted process starts after the dead one's last write.
    await _settled(database)
    # A second sender is cancelled mid-batch (its task killed between sends).
    slow = RecordingMailer(database)
    stop = asyncio.Event()
    task = asyncio.create_task(make_sender(database, slow, Clock(), batch=1).run(stop))
    while len(slow.sent) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _settled(database)
    rest = RecordingMailer(database)
    await _drain(database, make_sender(database, rest, Clock()))
    counts = Counter(m.recipient for m in crashing.sent + slow.sent + rest.sent)
    assert counts == {email: 1 for email in shop.contacts}
    statuses = await recipient_statuses(database, made.id)
    assert set(statuses.values()) == {"sent"}
    report = await _report(database, made.id)
    assert report.total.sent == 7


async def _report(database: Database, campaign_id: int):  # type: ignore[no-untyped-def]
    async with database.read() as conn:
        return await campaign_report(conn, campaign_id)


async def test_refused_recipient_fails_and_suppressed_since_freeze_is_skipped(
    database: Database, shop: Shop
) -> None:
    made = await _campaign(database, shop)
    sender = make_sender(
        database, RecordingMailer(database, refuse={"c2@customer.example"}), Clock()
    )
    await sender.step(made.id)  # freeze only
    async with database.write() as conn:
        await suppress(conn, kind="address", value="c4@customer.example", reason="bounce", now=T0)
    await _drain(database, sender)
    got = await recipient_statuses(database, made.id)
    assert got["c2@customer.example"] == "failed"
    assert got["c4@customer.example"] == "skipped"
    assert Counter(got.values()) == {"sent": 5, "failed": 1, "skipped": 1}


async def test_state_machine(database: Database, shop: Shop) -> None:
    async with database.write() as conn:
        made = await create_campaign(
            conn,
            name="n",
            variants=[("s", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            now=T0,
        )
        with pytest.raises(InvalidInput) as missing:
            await send_campaign(conn, made.id, now=T0, shop_address="")
        assert missing.value.field == "shop.address"
        with pytest.raises(InvalidInput) as wrong:
            await resume(conn, made.id, now=T0)
        assert wrong.value.field == "status"
        later = T0 + timedelta(hours=1)
        scheduled = await send_campaign(conn, made.id, at=later, now=T0, shop_address=ADDRESS)
        assert scheduled.status == "scheduled" and scheduled.scheduled_at == later
        assert (await pause(conn, made.id, now=T0)).status == "paused"
        assert (await resume(conn, made.id, now=T0)).status == "scheduled"
        assert (await cancel(conn, made.id, now=T0)).status == "cancelled"
        with pytest.raises(InvalidInput):
            await pause(conn, made.id, now=T0)


async def test_validation(database: Database, shop: Shop) -> None:
    async with database.write() as conn:
        with pytest.raises(InvalidInput) as foreign:
            await create_campaign(
                conn,
                name="n",
                variants=[("s", shop.template_id)],
                audience=[("list", shop.list_id)],
                from_address="news@elsewhere.example",
                now=T0,
            )
        assert foreign.value.field == "from_address"
        with pytest.raises(InvalidInput) as no_list:
            await create_campaign(
                conn,
                name="n",
                variants=[("s", shop.template_id)],
                audience=[("list", 999)],
                from_address="news@shop.example",
                now=T0,
            )
        assert no_list.value.field == "audience/0"
        with pytest.raises(InvalidInput) as no_template:
            await create_campaign(
                conn,
                name="n",
                variants=[("s", 999)],
                audience=[("list", shop.list_id)],
                from_address="news@shop.example",
                now=T0,
            )
        assert no_template.value.field == "variants/0/template"


async def test_pause_between_batches_and_resume(database: Database, shop: Shop) -> None:
    made = await _campaign(database, shop)
    mailer = RecordingMailer(database)
    sender = make_sender(database, mailer, Clock(), batch=2)
    await sender.step(made.id)  # freeze
    await sender.step(made.id)  # first batch
    async with database.write() as conn:
        await pause(conn, made.id, now=T0)
    assert not await sender.step_all()
    assert len(mailer.sent) == 2
    async with database.write() as conn:
        assert (await resume(conn, made.id, now=T0)).status == "sending"
    await _drain(database, sender)
    assert len(mailer.sent) == 7


async def test_ab_winner_by_clicks_gets_the_rest(database: Database, shop: Shop) -> None:
    for index in range(7, 40):
        await add_contact(database, f"c{index}@customer.example", list_id=shop.list_id)
    ab = AbSettings(sample_percent=50, wait_seconds=3600, metric="clicks")
    made = await _campaign(
        database,
        shop,
        variants=[("Subject A", shop.template_id), ("Subject B", shop.template_id)],
        ab=ab,
    )
    clock = Clock()
    mailer = RecordingMailer(database)
    sender = make_sender(database, mailer, clock, batch=10)
    await _drain(database, sender)
    async with database.read() as conn:
        testing = await progress(conn, made.id)
        rows = (
            await conn.execute(
                select(campaign_recipients).where(campaign_recipients.c.campaign_id == made.id)
            )
        ).all()
    assert testing.status == "testing"
    sample = [r for r in rows if r.phase == "sample"]
    assert {r.contact_id for r in sample} == {
        r.contact_id for r in rows if in_sample(r.contact_id, made.id, 50)
    }
    assert len(mailer.sent) == len(sample) and all(r.status == "sent" for r in sample)
    variant_b = made.variants[1].id
    clicker = next(r for r in sample if r.variant_id == variant_b)
    async with database.write() as conn:
        await conn.run_sync(lambda c: stats.bump(c, made.id, variant_b, unique_clicks=1))
    assert clicker
    clock.now = T0 + timedelta(hours=1)
    await _drain(database, sender)
    report = await _report(database, made.id)
    assert report.winner_variant_id == variant_b
    rest = [m for m in mailer.sent[len(sample) :]]
    assert len(rest) == len(rows) - len(sample)
    subjects = {
        email.message_from_bytes(m.message, policy=email.policy.default)["Subject"] for m in rest
    }
    assert subjects == {"Subject B"}
    assert report.status == "sent" and report.total.sent == len(rows)
    assert Ref("c", 1)


async def _settled(database: Database) -> None:
    """Wait until the writes already handed to the database have finished.

    SQLite: one writer thread runs them in order, so an empty write queued now returns
    after them. PostgreSQL: each write has its own connection; wait until no other session
    of this database is inside a transaction (a cancelled task's commit or rollback).
    """
    await database.run_write(lambda _conn: None)
    if database.dialect != "postgresql":
        return
    busy = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
    )
    while True:
        async with database.read() as conn:
            if not await conn.scalar(busy):
                return
        await asyncio.sleep(0.01)
