"""End to end: a synchronous 550 5.1.1 at send time comes back as a DSN and suppresses.

A bulk message with a VERP sender is queued (through the router, as the campaign sender
does) for two remote recipients; the remote MX (aiosmtpd on loopback) refuses one with
550 5.1.1. The worker's failure DSN goes to the envelope sender, our VERP address, through
the same router: it lands in ``feedback_reports`` (no mailbox), and the processor
suppresses the address. The accepted copy is counted delivered through ``on_delivered``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from tests.integration.marketing.campaigns_feedback.reports import KEY, verp
from tests.integration.marketing.campaigns_tracking.seed import seed_campaign, stats_row

from courriel.delivery.bounces import Bouncer
from courriel.delivery.committer import GroupCommitter
from courriel.delivery.router import Router
from courriel.delivery.worker import DeliveryWorker, WorkerSettings
from courriel.dns.memory import MemoryResolver
from courriel.mailstore.service import MailStore
from courriel.marketing.campaigns.feedback import (
    FeedbackProcessor,
    delivered_recorder,
    feedback_address_check,
    local_delivered_recorder,
)
from courriel.marketing.suppression import is_suppressed
from courriel.outbound import Originator
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import messages
from courriel.storage.models.campaigns import campaign_recipients, feedback_reports

GONE, KEPT, LOCAL = "gone@remote.test", "kept@remote.test", "carol@shop.test"


class _Hop:
    def __init__(self, address: str) -> None:
        self.host = "mx.remote.test"
        self.addresses = (address,)


async def _count(db: Database, table: Any) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_sync_550_becomes_a_suppression(
    database: Database,
    blobs: BlobStore,
    mailstore: MailStore,
    receivers: Callable[[str], Any],
    make_connector: Callable[[list[Any]], Any],
) -> None:
    await mailstore.add_domain("shop.test")
    await mailstore.add_account(LOCAL, "pw-carol-1")
    seeded = await seed_campaign(database, [GONE, KEPT, LOCAL])
    committer = GroupCommitter(
        database, mailstore, on_local_delivered=local_delivered_recorder(KEY)
    )
    check = feedback_address_check(KEY)
    originator = Originator(
        Router(mailstore, blobs, committer, is_feedback_address=check), "mx.shop.test"
    )
    receiver = await receivers("127.0.0.2")
    receiver.rcpt_script[GONE] = ["550 5.1.1 <gone@remote.test>: user unknown"]

    async def route(_domain: str) -> Sequence[_Hop]:
        return [_Hop("127.0.0.2")]

    worker = DeliveryWorker(
        database,
        blobs,
        MemoryResolver({}),
        make_connector([receiver]),
        settings=WorkerSettings(
            retry_schedule=(timedelta(minutes=5),), expire_after=timedelta(days=5)
        ),
        on_failure=Bouncer(originator.send, "mx.shop.test", blobs).failed,
        router=route,
        on_delivered=delivered_recorder(database, KEY),
    )
    # One copy per recipient, each with its own VERP return path, in the bulk class.
    for email, ref in seeded.refs.items():
        body = f"From: shop@shop.test\r\nTo: {email}\r\nSubject: Spring!\r\n\r\nHi\r\n"
        assert await originator.send(verp(ref), [email], body.encode(), priority="bulk") == 1
    assert await worker.run_once() == 2
    assert [m.recipients for m in receiver.messages] == [[KEPT]]
    await committer.close()

    # The DSN about GONE came back to its VERP address: a report, not a mailbox copy.
    async with database.read() as conn:
        [report] = (await conn.execute(select(feedback_reports))).all()
    assert report.recipient == verp(seeded.refs[GONE])
    assert await _count(database, messages) == 1  # carol's campaign copy only
    assert await FeedbackProcessor(database, blobs, KEY).run_once() == 1
    async with database.read() as conn:
        assert await is_suppressed(conn, GONE)
        assert not await is_suppressed(conn, KEPT)
        delivered = await conn.execute(
            select(campaign_recipients.c.email).where(
                campaign_recipients.c.delivered_at.is_not(None)
            )
        )
        assert sorted(delivered.scalars()) == [LOCAL, KEPT]
    counters = await stats_row(database, seeded.campaign_id)
    assert (counters["delivered"], counters["bounced"]) == (2, 1)
