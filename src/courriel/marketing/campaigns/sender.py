"""The campaign sender: freezes audiences, renders each copy and queues it, exactly once.

Owns the progress of campaigns once scheduled: ``scheduled -> sending (-> testing ->
sending) -> sent``. Each step handles one batch (``campaigns.batch`` recipients by id,
never OFFSET) of one campaign, then re-reads the campaign, so pause and cancel take effect
between batches.

Invariants:
- Exactly once: a copy's recipient row turns ``sent`` in the transaction that stores the
  message (``Mailer.send(on_commit=…)``), and only a ``pending`` row is sent. A crash
  before that commit leaves the row pending (sent again after restart), after it leaves
  it sent (never sent again).
- One sender per campaign at a time: on PostgreSQL a step holds a session advisory lock
  on the campaign (other nodes skip it); SQLite has one writer and one node.
- Suppression and consent are re-checked for every batch: a contact that unsubscribed or
  got suppressed since the freeze is ``skipped``.
- The event loop is never blocked for more than one render: each copy is rendered by the
  task that sends it, and ``campaigns.concurrency`` tasks interleave.
- One bad copy never stops a campaign: a copy that cannot be rendered or encoded is
  ``failed`` (logged by recipient id, never by address) and the batch goes on; a temporary
  failure (storage, a 4xx from delivery) leaves the rest pending until the next poll.
- A copy's ``sent`` bump runs in a hook ordered by (campaign, variant, recipient), so the
  group committer takes ``campaign_stats`` rows in one order in every transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.engine import Row

from courriel.errors import DeliveryRefused, InvalidInput, StorageError
from courriel.marketing.campaigns import abtest
from courriel.marketing.campaigns.audience import address_hashes, freeze, not_suppressed
from courriel.marketing.campaigns.copies import (
    RECIPIENT_COLUMNS,
    Book,
    CopyJob,
    CopyRenderer,
    Recommend,
    Recommender,
    RendererFactory,
    RenderInput,
    SenderSettings,
    no_recommendations,
    recipient_contact,
    render_copy,
    template_source,
)
from courriel.marketing.campaigns.marksent import MarkSent
from courriel.marketing.campaigns.message import Copy
from courriel.marketing.campaigns.pool import (
    COPY_ERRORS,
    Made,
    PoolContext,
    Pooling,
    PoolRow,
    RecipientRow,
    context_key,
    recommendation_table,
)
from courriel.marketing.campaigns.service import Campaign, Variant, get_campaign
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.ports import Mailer
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaigns
from courriel.storage.models.marketing import contacts, suppressions

__all__ = [
    "RECIPIENT_COLUMNS",
    "CampaignSender",
    "CopyJob",
    "CopyRenderer",
    "Recommend",
    "Recommender",
    "RenderInput",
    "RendererFactory",
    "SenderSettings",
    "no_recommendations",
    "recipient_contact",
    "render_copy",
]

log = logging.getLogger(__name__)
_LOCK_CLASS = 0x6361  # "ca": pg_try_advisory_lock(class, campaign id)


class CampaignSender:
    """Sends due campaigns; ``run`` until ``stop`` is set."""

    def __init__(  # noqa: PLR0917 (the brief's constructor)
        self,
        db: Database,
        mailer: Mailer,
        renderer_factory: RendererFactory,
        recommender: Recommender | None,
        links: Links,
        verp_key: bytes,
        settings: SenderSettings,
        clock: Callable[[], datetime],
        *,
        pooling: Pooling | None = None,
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._factory = renderer_factory
        self._recommender = recommender
        self._links = links
        self._verp_key = verp_key
        self._settings = settings
        self._clock = clock
        self._wake = asyncio.Event()
        self._renderers: dict[tuple[int, int], CopyRenderer] = {}
        self._sources: dict[tuple[int, int], tuple[str, str, str | None]] = {}
        self._pooling = pooling

    def wake(self) -> None:
        """Look for due work now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll for due campaigns every ``poll_seconds`` (or when woken) until ``stop``."""
        while not stop.is_set():
            try:
                busy = await self.step_all()
            except Exception:  # the sender outlives any one step's failure
                log.exception("campaign step failed; retrying at the next poll")
                busy = False
            if busy:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(
                waiters, timeout=self._settings.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    async def step_all(self) -> bool:
        """One step of every due campaign; True when any had work."""
        now = self._clock()
        async with self._db.read() as conn:
            ids = (
                await conn.scalars(
                    select(campaigns.c.id)
                    .where(
                        or_(
                            and_(
                                campaigns.c.status == "scheduled", campaigns.c.scheduled_at <= now
                            ),
                            campaigns.c.status == "sending",
                            and_(campaigns.c.status == "testing", campaigns.c.test_ends_at <= now),
                        )
                    )
                    .order_by(campaigns.c.id)
                )
            ).all()
        busy = False
        for campaign_id in ids:
            busy = await self._locked_step(int(campaign_id)) or busy
        return busy

    async def _locked_step(self, campaign_id: int) -> bool:
        if self._db.dialect != "postgresql":
            return await self.step(campaign_id)
        async with self._db.engine.connect() as lock:
            args = {"c": _LOCK_CLASS, "id": campaign_id}
            got = await lock.scalar(text("SELECT pg_try_advisory_lock(:c, :id)"), args)
            await lock.commit()
            if not got:
                return False
            try:
                return await self.step(campaign_id)
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(:c, :id)"), args)
                await lock.commit()

    async def step(self, campaign_id: int) -> bool:
        """Advance one campaign by one step; True when it did something."""
        now = self._clock()
        async with self._db.read() as conn:
            campaign = await get_campaign(conn, campaign_id)
        if campaign.status == "scheduled":
            await self._start(campaign, now)
            return True
        if campaign.status == "testing":
            if campaign.test_ends_at is not None and campaign.test_ends_at <= now:
                await self._db.run_write(lambda c: abtest.pick_winner(c, campaign, now))
                return True
            return False
        if campaign.status != "sending":
            return False
        return await self._send_phase(campaign, now)

    async def _start(self, campaign: Campaign, now: datetime) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign.id, campaigns.c.started_at.is_(None))
                .values(started_at=now)
            )
            campaign = await get_campaign(conn, campaign.id)
        await freeze(self._db, campaign)
        async with self._db.write() as conn:
            await conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign.id, campaigns.c.status == "scheduled")
                .values(status="sending", updated_at=now)
            )

    async def _send_phase(self, campaign: Campaign, now: datetime) -> bool:
        if campaign.ab is None:
            phase, variant = "all", None
        elif campaign.winner_variant_id is None:
            phase, variant = "sample", None
        else:
            phase = "rest"
            variant = next(v for v in campaign.variants if v.id == campaign.winner_variant_id)
        sent_any = await self._send_batch(campaign, phase, variant, now)
        if sent_any is None:
            return False  # a temporary failure: the rest waits for the next poll
        if sent_any:
            return True
        if phase == "sample":
            await self._db.run_write(lambda c: abtest.start_test(c, campaign, now))
        else:
            await self._finish(campaign.id, now)
        return True

    async def _finish(self, campaign_id: int, now: datetime) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.status == "sending")
                .values(status="sent", finished_at=now, updated_at=now)
            )

    # -- one batch ------------------------------------------------------------------

    async def _send_batch(
        self, campaign: Campaign, phase: str, winner: Variant | None, now: datetime
    ) -> bool | None:
        """Send one batch: True when it had rows, None when a temporary failure stopped it."""
        rows, book = await self._read_batch(campaign, phase, now)
        if not rows:
            return False
        if self._pooling is not None and len(rows) >= self._pooling.threshold:
            return await self._send_pooled(self._pooling, campaign, winner, rows, book, now)
        variants = {v.id: v for v in campaign.variants}
        gate = asyncio.Semaphore(self._settings.concurrency)
        halted = asyncio.Event()

        async def one(row: Row[Any]) -> None:
            async with gate:
                if halted.is_set():
                    return  # leave the row pending for the next poll
                send = self._send_one(campaign, winner or variants[row.variant_id], row, book, now)
                with _halting(halted):
                    if not await self._guarded(send, campaign.id, int(row.id)):
                        halted.set()

        failure = await _settled([asyncio.ensure_future(one(row)) for row in rows])
        if failure is not None:
            raise failure
        return None if halted.is_set() else True

    async def _send_pooled(  # noqa: PLR0917 (one batch's inputs)
        self,
        pooling: Pooling,
        campaign: Campaign,
        winner: Variant | None,
        rows: list[Any],
        book: Book | None,
        now: datetime,
    ) -> bool | None:
        """:meth:`_send_batch` with the copies made by the render processes: they render
        and sign chunk after chunk while this loop queues the copies already made."""
        items = await self._pool_rows(campaign, winner, rows, book)
        context = await self._pool_context(pooling, campaign)
        futures = pooling.pool.submit(context, items, now)
        gate = asyncio.Semaphore(self._settings.concurrency)
        halted = asyncio.Event()

        async def one(made: Made) -> None:
            async with gate:
                if halted.is_set():
                    return
                if made.copy is None:
                    log.warning(
                        "campaign %d: recipient %d failed: %s",
                        campaign.id,
                        made.recipient_id,
                        made.error,
                    )
                    await self._fail(made.recipient_id)
                    return
                queue = self._queue(campaign, made, made.copy, now)
                with _halting(halted):
                    if not await self._guarded(queue, campaign.id, made.recipient_id):
                        halted.set()

        tasks: list[asyncio.Future[None]] = []
        try:
            for future in futures:
                for made in await future:
                    tasks.append(asyncio.ensure_future(one(made)))
        except BaseException:
            halted.set()
            raise
        finally:
            for future in futures:
                future.cancel()  # after a failure: the rest stays pending for the next poll
            failure = await _settled(tasks)  # the copies in flight end first, in any case
        if failure is not None:
            raise failure
        return None if halted.is_set() else True

    async def _pool_rows(
        self, campaign: Campaign, winner: Variant | None, rows: list[Any], book: Book | None
    ) -> list[PoolRow]:
        """Each row as plain data with its recommendations (the book stays here); a row
        whose recommendations are refused fails, as its render would."""
        variants = {v.id: v for v in campaign.variants}
        # The template's static calls, per variant once (not an await per row).
        calls_of = {
            v.id: (await self._renderer(campaign, v)).recommendation_calls
            for v in campaign.variants
        }
        items: list[PoolRow] = []
        for row in rows:
            variant = winner or variants[row.variant_id]
            calls = calls_of[variant.id]
            recommend = book.for_contact(row.contact_id) if book is not None else None
            try:
                table = recommendation_table(recommend or no_recommendations, calls)
            except COPY_ERRORS as exc:
                kind = type(exc).__name__
                log.warning("campaign %d: recipient %d failed: %s", campaign.id, row.id, kind)
                await self._fail(int(row.id))
                continue
            plain = RecipientRow(*(getattr(row, name) for name in RecipientRow._fields))
            items.append(PoolRow(plain, variant.id, table))
        return items

    async def _pool_context(self, pooling: Pooling, campaign: Campaign) -> PoolContext:
        """What the workers need for this campaign's copies (keys read once a batch)."""
        templates_ = {}
        for variant in campaign.variants:
            await self._renderer(campaign, variant)
            templates_[variant.id] = self._sources[(campaign.id, variant.id)]
        domain = campaign.from_address.rpartition("@")[2]
        signing = await pooling.signing_keys(domain)
        return PoolContext(
            key=context_key(campaign, templates_, signing),
            campaign=campaign,
            templates=templates_,
            shop=pooling.shop,
            links=self._links,
            verp_key=self._verp_key,
            settings=self._settings,
            signing=signing,
        )

    async def _queue(self, campaign: Campaign, made: Made, copy: Copy, now: datetime) -> None:
        """Queue one copy the render processes made (signed there when ``made.signed``)."""
        accepted = await self._mailer.send(
            sender=copy.sender,
            recipient=copy.recipient,
            message=copy.message,
            transactional=False,
            signed=made.signed,
            on_commit=MarkSent(
                campaign_id=campaign.id,
                variant_id=made.variant_id,
                recipient_id=made.recipient_id,
                now=now,
            ),
        )
        if not accepted:
            await self._fail(made.recipient_id)

    async def _guarded(self, send: Awaitable[None], campaign_id: int, recipient_id: int) -> bool:
        """Await one copy's ``send``: a failure is this recipient's alone; False if temporary."""
        try:
            await send
        except (StorageError, DeliveryRefused) as exc:
            if isinstance(exc, DeliveryRefused) and not exc.temporary:
                log.warning("campaign %d: recipient %d refused", campaign_id, recipient_id)
                await self._fail(recipient_id)
                return True
            log.warning("campaign %d: temporary failure, retrying later: %s", campaign_id, exc)
            return False
        except (InvalidInput, UnicodeEncodeError, ValueError) as exc:
            # The exception's text may quote the address: log its type and the row id only.
            kind = type(exc).__name__
            log.warning("campaign %d: recipient %d failed: %s", campaign_id, recipient_id, kind)
            await self._fail(recipient_id)
        return True

    async def _read_batch(
        self, campaign: Campaign, phase: str, now: datetime
    ) -> tuple[list[Any], Book | None]:
        query = (
            select(
                *RECIPIENT_COLUMNS,
                and_(contacts.c.email_status == "subscribed", not_suppressed()).label("ok"),
            )
            .join(contacts, contacts.c.id == campaign_recipients.c.contact_id)
            .where(
                campaign_recipients.c.campaign_id == campaign.id,
                campaign_recipients.c.status == "pending",
                campaign_recipients.c.phase == phase,
            )
            .order_by(campaign_recipients.c.id)
            .limit(self._settings.batch)
        )
        async with self._db.read() as conn:
            rows: list[Any] = list((await conn.execute(query)).all())
            hashes = address_hashes(row.email for row in rows)
            erased = set(
                (
                    await conn.scalars(
                        select(suppressions.c.value).where(
                            suppressions.c.kind == "hash", suppressions.c.value.in_(list(hashes))
                        )
                    )
                ).all()
            )
        skipped = [r.id for r in rows if not r.ok or hashes_of(r.email) in erased]
        if skipped:
            await self._skip(skipped)
        keep = [r for r in rows if r.id not in set(skipped)]
        return keep, await self._prefetch(campaign, keep, now) if keep else None

    async def _skip(self, ids: list[int]) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(campaign_recipients)
                .where(campaign_recipients.c.id.in_(ids), campaign_recipients.c.status == "pending")
                .values(status="skipped")
            )

    async def _prefetch(
        self, campaign: Campaign, rows: list[Row[Any]], now: datetime
    ) -> Book | None:
        if self._recommender is None:
            return None
        calls: set[tuple[str, int]] = set()
        for variant in campaign.variants:
            calls |= (await self._renderer(campaign, variant)).recommendation_calls
        if not calls:
            return None
        async with self._db.read() as conn:
            return await self._recommender.prefetch(
                [r.contact_id for r in rows], frozenset(calls), conn=conn
            )

    async def _renderer(self, campaign: Campaign, variant: Variant) -> CopyRenderer:
        key = (campaign.id, variant.id)
        if key not in self._renderers:
            async with self._db.read() as conn:
                source = await template_source(conn, variant)
            # Kept for the whole send: an edit of the template meanwhile changes no copy.
            self._sources[key] = (source, variant.subject, campaign.preheader)
            self._renderers[key] = self._factory(*self._sources[key])
        return self._renderers[key]

    async def _send_one(
        self, campaign: Campaign, variant: Variant, row: Row[Any], book: Book | None, now: datetime
    ) -> None:
        ref = Ref("c", int(row.id))
        recommend = book.for_contact(row.contact_id) if book is not None else no_recommendations
        copy = render_copy(
            CopyJob(campaign=campaign, variant=variant, ref=ref, row=row, recommend=recommend),
            await self._renderer(campaign, variant),
            links=self._links,
            verp_key=self._verp_key,
            settings=self._settings,
            now=now,
        )
        accepted = await self._mailer.send(
            sender=copy.sender,
            recipient=copy.recipient,
            message=copy.message,
            transactional=False,
            on_commit=MarkSent(
                campaign_id=campaign.id, variant_id=variant.id, recipient_id=ref.id, now=now
            ),
        )
        if not accepted:
            await self._fail(ref.id)

    async def _fail(self, recipient_id: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(campaign_recipients)
                .where(
                    campaign_recipients.c.id == recipient_id,
                    campaign_recipients.c.status == "pending",
                )
                .values(status="failed")
            )


def hashes_of(email: str) -> str:
    """The ``hash`` suppression form of one address."""
    return next(iter(address_hashes([email])))


@contextmanager
def _halting(halted: asyncio.Event) -> Iterator[None]:
    """Set ``halted`` when the block raises, so that no copy of the batch starts after a
    failure."""
    try:
        yield
    except BaseException:
        halted.set()
        raise


async def _settled(tasks: list[asyncio.Future[None]]) -> BaseException | None:
    """Wait for every copy's task of a batch; the first failure, if any.

    Not a TaskGroup: a failure there cancels the copies still being queued, and a cancelled
    copy's write transaction still commits on SQLite's writer thread, after the step has
    ended. The next poll could then read that copy's row as pending and queue it again
    (seen as a flaky duplicate in tests/integration/marketing/campaigns). So the batch ends
    only when each copy is queued and marked, or was never started.
    """
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return next((r for r in results if isinstance(r, BaseException)), None)
