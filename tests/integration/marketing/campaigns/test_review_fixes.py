"""Review fixes of the campaign engine, on both engines.

A copy that fails alone, a temporary failure that waits for the next poll, a sender task
that survives a failing step, a winner never picked for a cancelled campaign, on_commit
hooks run in a deterministic order, a state change that lost a race, and templates frozen
while a campaign sends them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from courriel.delivery.committer import GroupCommitter, OrderedHook
from courriel.errors import DeliveryRefused, InvalidInput
from courriel.mailstore.service import MailStore
from courriel.marketing.campaigns import abtest
from courriel.marketing.campaigns.message import Content
from courriel.marketing.campaigns.sender import CampaignSender, RenderInput
from courriel.marketing.campaigns.service import (
    AbSettings,
    cancel,
    create_campaign,
    get_campaign,
    progress,
)
from courriel.marketing.templates.service import update_template
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaigns

from .conftest import (
    T0,
    Clock,
    Crash,
    FakeRenderer,
    RecordingMailer,
    Shop,
    commit_job,
    make_sender,
    recipient_statuses,
)
from .test_engine import _campaign, _drain


@dataclass(frozen=True)
class PickyRenderer(FakeRenderer):
    """Fails to render for the contact named P3 (a template error on that contact's data)."""

    def render(self, data: RenderInput) -> Content:
        if data.contact["first_name"] == "P3":
            raise ValueError("the template divides by zero for this contact")
        return FakeRenderer.render(self, data)


@dataclass
class FlakyMailer(RecordingMailer):
    """Raises ``fault`` on the first ``failures`` calls, then behaves."""

    failures: int = 0
    fault: Exception = field(default_factory=lambda: Crash("boom"))

    async def send(self, **kwargs: Any) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise self.fault
        return await super().send(**kwargs)


def _picky_sender(sender: CampaignSender) -> CampaignSender:
    sender._factory = lambda html, subject, _pre: PickyRenderer(html, subject)
    return sender


async def test_a_copy_that_fails_to_render_fails_alone(database: Database, shop: Shop) -> None:
    made = await _campaign(database, shop)
    mailer = RecordingMailer(database)
    await _drain(database, _picky_sender(make_sender(database, mailer, Clock())))
    got = await recipient_statuses(database, made.id)
    assert got.pop("c3@customer.example") == "failed"
    assert set(got.values()) == {"sent"} and len(mailer.sent) == 6
    async with database.read() as conn:
        assert (await progress(conn, made.id)).status == "sent"


async def test_a_temporary_failure_leaves_rows_pending_for_the_next_step(
    database: Database, shop: Shop
) -> None:
    made = await _campaign(database, shop)
    busy = DeliveryRefused(451, "4.3.0", "try later", temporary=True)
    mailer = FlakyMailer(database, failures=1, fault=busy)
    sender = make_sender(database, mailer, Clock(), batch=7)
    assert await sender.step(made.id)  # freeze
    assert not await sender.step(made.id)  # the batch stops: nothing to do until next poll
    got = await recipient_statuses(database, made.id)
    assert "pending" in got.values() and "failed" not in got.values()
    await _drain(database, sender)
    assert set((await recipient_statuses(database, made.id)).values()) == {"sent"}
    assert len(mailer.sent) == 7


async def test_the_sender_task_survives_a_failing_step(database: Database, shop: Shop) -> None:
    made = await _campaign(database, shop)
    mailer = FlakyMailer(database, failures=1)  # Crash: no CourrielError
    stop = asyncio.Event()
    task = asyncio.create_task(make_sender(database, mailer, Clock()).run(stop))

    async def all_sent() -> None:
        while set((await recipient_statuses(database, made.id)).values()) != {"sent"}:
            assert not task.done(), "the sender task died"
            await asyncio.sleep(0.01)

    await asyncio.wait_for(all_sent(), timeout=60)
    stop.set()
    await task
    assert len(mailer.sent) == 7


@dataclass
class CrashBesideACommit(RecordingMailer):
    """The first copy crashes while the second copy's write transaction is running (and
    takes 0.3 s); every other copy goes through."""

    calls: int = 0
    begun: threading.Event = field(default_factory=threading.Event)

    async def send(self, **kwargs: Any) -> bool:
        self.calls += 1
        if self.calls == 1:
            assert await asyncio.to_thread(self.begun.wait, 10)
            raise Crash("boom")
        if self.calls == 2:
            hook = kwargs["on_commit"]

            def slow(conn: Connection) -> None:
                self.begun.set()
                time.sleep(0.3)
                hook(conn)

            kwargs["on_commit"] = slow
        return await super().send(**kwargs)


async def test_a_failing_step_ends_after_the_copies_it_started(
    database: Database, shop: Shop
) -> None:
    # A step that fails must not end while one of its copies is still being queued: the
    # next step would read that copy's row as pending and queue it a second time.
    made = await _campaign(database, shop)
    mailer = CrashBesideACommit(database)
    sender = make_sender(database, mailer, Clock())
    assert await sender.step(made.id)  # freeze
    with pytest.raises(Crash):
        await sender.step(made.id)
    statuses = await recipient_statuses(database, made.id)
    assert [statuses[mail.recipient] for mail in mailer.sent] == ["sent"]
    await _drain(database, sender)
    assert sorted(mail.recipient for mail in mailer.sent) == sorted(shop.contacts)


async def test_no_winner_is_picked_for_a_campaign_cancelled_while_testing(
    database: Database, shop: Shop
) -> None:
    ab = AbSettings(sample_percent=50, wait_seconds=3600, metric="clicks")
    variants = [("A", shop.template_id), ("B", shop.template_id)]
    made = await _campaign(database, shop, variants=variants, ab=ab)
    await _drain(database, make_sender(database, RecordingMailer(database), Clock()))
    async with database.read() as conn:
        testing = await get_campaign(conn, made.id)  # what the sender's step read
    assert testing.status == "testing"
    async with database.write() as conn:
        await cancel(conn, made.id, now=T0)
    await database.run_write(lambda c: abtest.pick_winner(c, testing, T0))
    async with database.read() as conn:
        after = await get_campaign(conn, made.id)
    assert (after.status, after.winner_variant_id) == ("cancelled", None)


@dataclass(frozen=True)
class Hook:
    key: tuple[int, ...]
    seen: list[object]

    @property
    def order_key(self) -> tuple[int, ...]:
        return self.key

    def __call__(self, _conn: Connection) -> None:
        self.seen.append(self.key)


async def test_a_batch_runs_ordered_hooks_sorted(
    database: Database, blobs: BlobStore, mailstore: MailStore
) -> None:
    seen: list[object] = []
    hooks: list[Callable[[Connection], None]] = [
        Hook((1, 9, 1), seen),  # variant B of campaign 1 first, as a batch may mix them
        Hook((1, 2, 5), seen),
        lambda _conn: seen.append("plain"),
        Hook((1, 2, 3), seen),
    ]
    committer = GroupCommitter(database, mailstore)
    jobs = [await commit_job(blobs, n, hook) for n, hook in enumerate(hooks)]
    await asyncio.gather(*(committer.commit(job) for job in jobs))
    await committer.close()
    assert committer.batches == 1
    assert seen == [(1, 2, 3), (1, 2, 5), (1, 9, 1), "plain"]


async def test_the_senders_hook_is_ordered(database: Database, shop: Shop) -> None:
    made = await _campaign(database, shop)
    hooks: list[object] = []

    @dataclass
    class Keeping(RecordingMailer):
        async def send(self, **kwargs: Any) -> bool:
            hooks.append(kwargs["on_commit"])
            return await super().send(**kwargs)

    await _drain(database, make_sender(database, Keeping(database), Clock()))
    variant = made.variants[0].id
    assert all(isinstance(hook, OrderedHook) for hook in hooks) and len(hooks) == 7
    assert {hook.order_key[:2] for hook in hooks} == {(made.id, variant)}  # type: ignore[attr-defined]


async def test_a_cancel_that_lost_a_race_says_so(database: Database, shop: Shop) -> None:
    made = await _campaign(database, shop)  # scheduled

    def sender_moves_first(_c: Any, cursor: Any, statement: str, *_args: Any) -> None:
        # The sender's scheduled -> sending lands between the request's read and its UPDATE.
        if statement.startswith("UPDATE campaigns SET status"):
            cursor.execute(f"UPDATE campaigns SET status = 'sending' WHERE id = {made.id}")

    with pytest.raises(InvalidInput) as raced:
        async with database.write() as conn:
            sync = conn.sync_connection
            assert sync is not None
            event.listen(sync, "before_cursor_execute", sender_moves_first)
            try:
                await cancel(conn, made.id, now=T0)
            finally:
                event.remove(sync, "before_cursor_execute", sender_moves_first)
    assert raced.value.field == "status"
    assert "changed state meanwhile" in str(raced.value)


async def test_a_template_being_sent_cannot_be_updated(database: Database, shop: Shop) -> None:
    source = "<p>new</p>"
    async with database.write() as conn:  # a draft does not hold its template
        await create_campaign(
            conn,
            name="draft",
            variants=[("s", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            now=T0,
        )
        await update_template(conn, shop.template_id, source=source, kind="html", now=T0)
    made = await _campaign(database, shop)  # scheduled
    with pytest.raises(InvalidInput) as refused:
        async with database.write() as conn:
            await update_template(conn, shop.template_id, source="<p>x</p>", now=T0)
    assert refused.value.field == "template"
    async with database.write() as conn:
        await cancel(conn, made.id, now=T0)
        updated = await update_template(conn, shop.template_id, source="<p>y</p>", now=T0)
        status = await conn.scalar(select(campaigns.c.status).where(campaigns.c.id == made.id))
    assert updated.source == "<p>y</p>" and status == "cancelled"
