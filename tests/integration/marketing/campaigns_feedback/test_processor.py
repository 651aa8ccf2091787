"""FeedbackProcessor outcomes on both engines: DSNs, ARF, mailto, chatter, garbage, replays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from tests.integration.marketing.campaigns_feedback.reports import (
    AUTO_REPLY,
    KEY,
    arf,
    dsn,
    mailto_unsubscribe,
    report_row,
    soft_in_row,
    store_report,
    verp,
)
from tests.integration.marketing.campaigns_tracking.seed import (
    T0,
    seed_campaign,
    seed_transactional,
    stats_row,
)

from courriel.marketing.campaigns.feedback import (
    FeedbackProcessor,
    delivered_recorder,
    record_delivered,
)
from courriel.marketing.campaigns.tokens import Ref
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, feedback_reports
from courriel.storage.models.marketing import contacts, events, suppressions

ANN = "ann@example.com"
HARD = {"code": 550, "enhanced": "5.1.1", "text": "no such user here"}
SOFT = {"code": 452, "enhanced": "4.2.2", "text": "mailbox full"}


def _processor(db: Database, blobs: BlobStore, **kw: object) -> FeedbackProcessor:
    return FeedbackProcessor(db, blobs, KEY, lambda: T0 + timedelta(hours=1), **kw)  # type: ignore[arg-type]


async def _suppressed(db: Database) -> dict[str, str]:
    async with db.read() as conn:
        rows = await conn.execute(select(suppressions.c.value, suppressions.c.reason))
        return {r.value: r.reason for r in rows}


async def _events(db: Database, name: str) -> list[dict[str, object]]:
    async with db.read() as conn:
        rows = await conn.execute(select(events.c.properties).where(events.c.name == name))
        return [dict(r.properties) for r in rows]


async def _copy(db: Database, ref: Ref) -> dict[str, object]:
    async with db.read() as conn:
        found = await conn.execute(
            select(campaign_recipients).where(campaign_recipients.c.id == ref.id)
        )
        return dict(found.mappings().one())


async def _email_status(db: Database, contact_id: int) -> str:
    async with db.read() as conn:
        found = await conn.scalar(
            select(contacts.c.email_status).where(contacts.c.id == contact_id)
        )
    return str(found)


async def test_hard_bounce_suppresses_counts_once_and_writes_the_event(
    database: Database, blobs: BlobStore
) -> None:
    seeded = await seed_campaign(database, [ANN, "bob@example.com"])
    ref = seeded.refs[ANN]
    report_id = await store_report(database, blobs, verp(ref), dsn(ANN, now=T0, **HARD), T0)
    assert await _processor(database, blobs).run_once() == 1
    assert await _suppressed(database) == {ANN: "bounce"}
    assert (await stats_row(database, seeded.campaign_id))["bounced"] == 1
    assert (await _copy(database, ref))["bounced_at"] is not None
    [event] = await _events(database, "Bounced Email")
    assert event["status"] == "5.1.1"
    assert event["kind"] == "hard"
    assert event["campaign_id"] == seeded.campaign_id
    assert "no such user" in str(event["diagnostic"])
    row = await report_row(database, report_id)
    assert row["processed_at"] is not None
    assert "hard bounce" in str(row["outcome"]) and "suppressed" in str(row["outcome"])
    # Replay: the same DSN again (a second row) changes nothing; the first is done.
    await store_report(database, blobs, verp(ref), dsn(ANN, now=T0, **HARD), T0)
    assert await _processor(database, blobs).run_once() == 1
    assert (await stats_row(database, seeded.campaign_id))["bounced"] == 1
    assert len(await _events(database, "Bounced Email")) == 1
    assert await _processor(database, blobs).run_once() == 0


async def test_third_soft_bounce_in_a_row_suppresses(database: Database, blobs: BlobStore) -> None:
    copies = [(await seed_campaign(database, [ANN], name=f"c{i}")).refs[ANN] for i in range(4)]
    processor = _processor(database, blobs)
    for ref in copies[:2]:
        await store_report(database, blobs, verp(ref), dsn(ANN, now=T0, **SOFT), T0)
    await processor.run_once()
    assert await soft_in_row(database, ANN) == 2
    assert await _suppressed(database) == {}
    # A replayed soft bounce of the same copy does not count twice.
    await store_report(database, blobs, verp(copies[1]), dsn(ANN, now=T0, **SOFT), T0)
    await processor.run_once()
    assert await soft_in_row(database, ANN) == 2
    report_id = await store_report(database, blobs, verp(copies[2]), dsn(ANN, now=T0, **SOFT), T0)
    await processor.run_once()
    assert await soft_in_row(database, ANN) == 3
    assert await _suppressed(database) == {ANN: "soft-bounces"}
    assert "3 in a row, suppressed" in str((await report_row(database, report_id))["outcome"])


async def test_a_delivery_resets_the_soft_bounce_run(database: Database, blobs: BlobStore) -> None:
    copies = [(await seed_campaign(database, [ANN], name=f"c{i}")).refs[ANN] for i in range(4)]
    processor = _processor(database, blobs)
    for ref in copies[:2]:
        await store_report(database, blobs, verp(ref), dsn(ANN, now=T0, **SOFT), T0)
    await processor.run_once()
    assert await soft_in_row(database, ANN) == 2
    # The delivery worker reports copies 3 delivered (VERP sender), and a foreign sender.
    recorder = delivered_recorder(database, KEY, lambda: T0)
    await recorder([(verp(copies[2]), ANN), ("someone@else.test", ANN)])
    await recorder([(verp(copies[2]), ANN)])  # told twice: counted once
    assert await soft_in_row(database, ANN) == 0
    assert (await _copy(database, copies[2]))["delivered_at"] is not None
    seeded_stats = await _stats_of(database, copies[2])
    assert seeded_stats["delivered"] == 1
    await store_report(database, blobs, verp(copies[3]), dsn(ANN, now=T0, **SOFT), T0)
    await processor.run_once()
    assert await soft_in_row(database, ANN) == 1
    assert await _suppressed(database) == {}


async def _stats_of(database: Database, ref: Ref) -> dict[str, int]:
    campaign_id = int((await _copy(database, ref))["campaign_id"])  # type: ignore[call-overload]
    return await stats_row(database, campaign_id)


async def test_record_delivered_batches_and_counts_each_copy_once(database: Database) -> None:
    emails = [f"p{i}@example.com" for i in range(5)]
    seeded = await seed_campaign(database, emails)
    refs = list(seeded.refs.values())
    message = await seed_transactional(database, "t@example.com")
    async with database.write() as conn:
        first = await conn.run_sync(lambda c: record_delivered(c, [*refs[:3], message], T0))
        again = await conn.run_sync(lambda c: record_delivered(c, refs, T0))
    assert (first, again) == (3, 2)
    assert (await stats_row(database, seeded.campaign_id))["delivered"] == 5


async def test_delay_records_only_the_outcome(database: Database, blobs: BlobStore) -> None:
    seeded = await seed_campaign(database, [ANN])
    ref = seeded.refs[ANN]
    data = dsn(ANN, now=T0, action="delayed", **SOFT)
    report_id = await store_report(database, blobs, verp(ref), data, T0)
    await _processor(database, blobs).run_once()
    assert "delay bounce" in str((await report_row(database, report_id))["outcome"])
    assert (await stats_row(database, seeded.campaign_id))["bounced"] == 0
    assert await soft_in_row(database, ANN) is None
    assert await _suppressed(database) == {}


async def test_arf_complaint_unsubscribes_and_suppresses(
    database: Database, blobs: BlobStore
) -> None:
    seeded = await seed_campaign(database, [ANN])
    ref = seeded.refs[ANN]
    for _ in range(2):  # the second is a replay
        await store_report(database, blobs, verp(ref), arf(ANN, verp(ref)), T0)
    assert await _processor(database, blobs).run_once() == 2
    assert await _email_status(database, seeded.contacts[ANN]) == "unsubscribed"
    assert await _suppressed(database) == {ANN: "complaint"}
    counters = await stats_row(database, seeded.campaign_id)
    assert (counters["complaints"], counters["unsubscribes"]) == (1, 1)
    [event] = await _events(database, "Marked Email as Spam")
    assert event["feedback_type"] == "abuse"
    [unsubscribed] = await _events(database, "Unsubscribed")
    assert unsubscribed["method"] == "complaint"
    assert (await _copy(database, ref))["complained_at"] is not None


async def test_mailto_unsubscribe(database: Database, blobs: BlobStore) -> None:
    seeded = await seed_campaign(database, [ANN])
    ref = seeded.refs[ANN]
    await store_report(database, blobs, verp(ref), mailto_unsubscribe(ANN), T0)
    await _processor(database, blobs).run_once()
    assert await _email_status(database, seeded.contacts[ANN]) == "unsubscribed"
    [event] = await _events(database, "Unsubscribed")
    assert event["method"] == "mailto"
    # An unsubscribe is not a suppression: the person may subscribe again.
    assert await _suppressed(database) == {}


async def test_auto_reply_is_ignored(database: Database, blobs: BlobStore) -> None:
    seeded = await seed_campaign(database, [ANN])
    report_id = await store_report(database, blobs, verp(seeded.refs[ANN]), AUTO_REPLY, T0)
    await _processor(database, blobs).run_once()
    assert (await report_row(database, report_id))["outcome"] == "ignored: automatic reply"
    assert await _email_status(database, seeded.contacts[ANN]) != "unsubscribed"
    assert await _suppressed(database) == {}


async def test_transactional_hard_bounce(database: Database, blobs: BlobStore) -> None:
    ref = await seed_transactional(database, ANN)
    await store_report(database, blobs, verp(ref), dsn(ANN, now=T0, **HARD), T0)
    await _processor(database, blobs).run_once()
    assert await _suppressed(database) == {ANN: "bounce"}
    [event] = await _events(database, "Bounced Email")
    assert event["transactional_id"] == ref.id


async def test_garbage_is_marked_and_the_next_report_still_processed(
    database: Database, blobs: BlobStore
) -> None:
    seeded = await seed_campaign(database, [ANN])
    ref = seeded.refs[ANN]
    garbage = [
        (verp(ref), b"\x00\xff" * 300 + b"\r\n\r\n--\r\nContent-Type: multipart/report"),
        ("bounces+c1.0000000000000000@shop.test", dsn(ANN, now=T0, **HARD)),  # bad MAC
        (verp(Ref("c", 99_999)), dsn(ANN, now=T0, **HARD)),  # its copy is gone
    ]
    ids = [await store_report(database, blobs, rcpt, data, T0) for rcpt, data in garbage]
    # A body lost from the store: reported, not retried for ever.
    missing = await store_report(database, blobs, verp(ref), b"lost", T0)
    async with database.read() as conn:
        key = await conn.scalar(
            select(feedback_reports.c.blob_key).where(feedback_reports.c.id == missing)
        )
    await blobs.delete_many([str(key)])  # type: ignore[attr-defined]
    good = await store_report(database, blobs, verp(ref), dsn(ANN, now=T0, **HARD), T0)
    assert await _processor(database, blobs).run_once() == 5
    outcomes = [str((await report_row(database, i))["outcome"]) for i in [*ids, missing]]
    assert outcomes[0] == "ignored: not a report"
    assert outcomes[1] == "ignored: not a valid VERP address"
    assert outcomes[2] == "ignored: c99999 no longer exists"
    assert outcomes[3].startswith("error:")
    assert "suppressed" in str((await report_row(database, good))["outcome"])


async def test_processed_reports_are_pruned_after_the_retention(
    database: Database, blobs: BlobStore
) -> None:
    seeded = await seed_campaign(database, [ANN])
    await store_report(database, blobs, verp(seeded.refs[ANN]), AUTO_REPLY, T0)
    freed: list[str] = []

    async def free(keys: object) -> None:
        freed.extend(keys)  # type: ignore[call-overload]

    await _processor(database, blobs, free_blobs=free).run_once()
    assert freed == []  # kept for the retention
    later = FeedbackProcessor(
        database, blobs, KEY, lambda: T0 + timedelta(days=31), free_blobs=free
    )
    assert await later.run_once() == 0
    assert len(freed) == 1
    async with database.read() as conn:
        left = await conn.scalar(select(func.count()).select_from(feedback_reports))
    assert left == 0
    assert await blobs.get(freed[0]) == AUTO_REPLY  # freeing is the mail store's job
