"""What the processor must leave alone: automatic replies, unsubscribe-ish subjects, non-complaints.

Review fixes: an out-of-office quoting a subject with "unsubscribe" in it unsubscribed its
sender, and a not-spam ARF report unsubscribed and suppressed like a complaint.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.integration.marketing.campaigns_feedback.reports import (
    KEY,
    arf,
    report_row,
    store_report,
    verp,
)
from tests.integration.marketing.campaigns_tracking.seed import T0, seed_campaign, stats_row

from courriel.marketing.campaigns.feedback import FeedbackProcessor
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.marketing import contacts, events, suppressions

ANN = "ann@example.com"


def _mail(*headers: str) -> bytes:
    return ("\r\n".join((f"From: {ANN}", *headers)) + "\r\n\r\nHello.\r\n").encode()


async def _outcome(db: Database, blobs: BlobStore, data: bytes) -> tuple[str, str]:
    """(outcome of one report about Ann's copy, Ann's email status afterwards)."""
    seeded = await seed_campaign(db, [ANN])
    report_id = await store_report(db, blobs, verp(seeded.refs[ANN]), data, T0)
    processor = FeedbackProcessor(db, blobs, KEY, lambda: T0 + timedelta(hours=1))
    assert await processor.run_once() == 1
    async with db.read() as conn:
        status = await conn.scalar(
            select(contacts.c.email_status).where(contacts.c.id == seeded.contacts[ANN])
        )
    return str((await report_row(db, report_id))["outcome"]), str(status)


async def _unsubscribed_events(db: Database) -> int:
    async with db.read() as conn:
        found = await conn.scalars(select(events.c.id).where(events.c.name == "Unsubscribed"))
        return len(list(found))


async def test_a_subject_that_only_contains_unsubscribe_changes_nothing(
    database: Database, blobs: BlobStore
) -> None:
    data = _mail("Subject: Automatic reply: Before you unsubscribe")
    outcome, status = await _outcome(database, blobs, data)
    assert outcome == "ignored: not a report"
    assert status != "unsubscribed"
    assert await _unsubscribed_events(database) == 0


async def test_the_mailto_subject_unsubscribes_whatever_its_case_and_blanks(
    database: Database, blobs: BlobStore
) -> None:
    # Auto-Submitted: no (RFC 3834 §5) is a person's message.
    data = _mail("Subject:  UnSubscribe ", "Auto-Submitted: no")
    outcome, status = await _outcome(database, blobs, data)
    assert outcome.startswith("unsubscribed ")
    assert status == "unsubscribed"


async def test_an_automatic_reply_with_the_mailto_subject_is_ignored(
    database: Database, blobs: BlobStore
) -> None:
    data = _mail("Subject: unsubscribe", "Auto-Submitted: auto-replied; owner-email=ann")
    outcome, status = await _outcome(database, blobs, data)
    assert outcome == "ignored: automatic reply"
    assert status != "unsubscribed"
    assert await _unsubscribed_events(database) == 0


async def test_a_not_spam_report_is_no_complaint(database: Database, blobs: BlobStore) -> None:
    seeded = await seed_campaign(database, [ANN])
    ref = seeded.refs[ANN]
    report_id = await store_report(
        database, blobs, verp(ref), arf(ANN, verp(ref), feedback_type="not-spam"), T0
    )
    processor = FeedbackProcessor(database, blobs, KEY, lambda: T0 + timedelta(hours=1))
    assert await processor.run_once() == 1
    assert (await report_row(database, report_id))["outcome"] == "ignored: not-spam report"
    async with database.read() as conn:
        assert list(await conn.scalars(select(suppressions.c.value))) == []
        assert list(await conn.scalars(select(events.c.name))) == []
    counters = await stats_row(database, seeded.campaign_id)
    assert (counters["complaints"], counters["unsubscribes"]) == (0, 0)
