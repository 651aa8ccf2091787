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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import DeliveryRefused, InvalidInput, StorageError
from courriel.marketing import dailystats
from courriel.marketing.campaigns import abtest, stats
from courriel.marketing.campaigns.audience import address_hashes, freeze, not_suppressed
from courriel.marketing.campaigns.message import (
    Author,
    Content,
    Copy,
    CopyUrls,
    Footer,
    build_copy,
    copy_urls,
    feedback_id,
)
from courriel.marketing.campaigns.service import Campaign, Variant, get_campaign
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.ports import Mailer
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaigns, templates
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
    "load_renderer",
    "no_recommendations",
    "recipient_contact",
    "render_copy",
]

log = logging.getLogger(__name__)
_LOCK_CLASS = 0x6361  # "ca": pg_try_advisory_lock(class, campaign id)
Recommend = Callable[[str, int], Sequence[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderInput:
    """What a template sees of one recipient."""

    contact: Mapping[str, Any]  # id, email, names, location, attributes
    urls: CopyUrls
    recommendations: Recommend


class CopyRenderer(Protocol):
    """One variant's template, compiled once, rendered per recipient."""

    @property
    def recommendation_calls(self) -> frozenset[tuple[str, int]]:
        """The ``recommendations(kind, n)`` calls the template makes (to prefetch)."""
        ...

    def render(self, data: RenderInput) -> Content:
        """Subject, HTML and text for one recipient."""
        ...


# (template html, subject, preheader) -> renderer
RendererFactory = Callable[[str, str, str | None], CopyRenderer]


class Book(Protocol):
    def for_contact(self, contact_id: int | None) -> Recommend: ...


class Recommender(Protocol):
    """Prefetches the recommendations of a batch of contacts in a few queries."""

    async def prefetch(
        self,
        contact_ids: Sequence[int],
        calls: frozenset[tuple[str, int]],
        *,
        conn: AsyncConnection | None = None,
    ) -> Book: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderSettings:
    """The configuration the sender reads (campaigns.*, tracking.*, shop.*)."""

    concurrency: int = 64
    batch: int = 500
    open_pixel: bool = True
    feedback_sender: str = "localhost"  # campaigns.feedback_id or server.hostname
    shop_name: str = ""
    shop_address: str = ""
    poll_seconds: float = 1.0


def no_recommendations(_kind: str, _n: int) -> Sequence[Any]:
    """The recommendations of a copy rendered without a recommender: none."""
    return ()


# -- one copy: shared by the sender and the view-in-browser page (view.py) ---------------

_CONTACT_FIELDS = ("first_name", "last_name", "country", "region", "city")
# The recipient's row joined to its contact: what rendering a copy reads.
RECIPIENT_COLUMNS = (
    *(campaign_recipients.c[name] for name in ("id", "email", "variant_id")),
    contacts.c.id.label("contact_id"),
    *(contacts.c[name] for name in (*_CONTACT_FIELDS, "attributes")),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyJob:
    """One recipient's copy of one variant."""

    campaign: Campaign
    variant: Variant
    ref: Ref  # Ref("c", campaign_recipients.id)
    row: Any  # a row of RECIPIENT_COLUMNS
    recommend: Recommend


async def load_renderer(
    conn: AsyncConnection, factory: RendererFactory, campaign: Campaign, variant: Variant
) -> CopyRenderer:
    """The renderer of ``variant``'s template (compiled HTML, subject, preheader)."""
    source = await conn.scalar(
        select(templates.c.html).where(templates.c.id == variant.template_id)
    )
    return factory(source or "", variant.subject, campaign.preheader)


def recipient_contact(row: Any) -> dict[str, Any]:
    """What the template sees as ``contact``, from a row of :data:`RECIPIENT_COLUMNS`."""
    names = {name: getattr(row, name) for name in _CONTACT_FIELDS}
    return {
        "id": row.contact_id,
        "email": row.email,
        **names,
        "attributes": dict(row.attributes or {}),
    }


def render_copy(
    job: CopyJob,
    renderer: CopyRenderer,
    *,
    links: Links,
    verp_key: bytes,
    settings: SenderSettings,
    now: datetime,
) -> Copy:
    """Render and build one copy (tracked links, footer, list headers); the open pixel
    only when ``settings.open_pixel`` is on and ``attributes.tracking_consent`` is not false."""
    urls = copy_urls(links, job.ref)
    contact = recipient_contact(job.row)
    content = renderer.render(
        RenderInput(contact=contact, urls=urls, recommendations=job.recommend)
    )
    consent = contact["attributes"].get("tracking_consent") is not False
    campaign = job.campaign
    return build_copy(
        ref=job.ref,
        recipient=job.row.email,
        author=Author(
            address=campaign.from_address, name=campaign.from_name, reply_to=campaign.reply_to
        ),
        content=content,
        urls=urls,
        footer=Footer(shop_name=settings.shop_name, shop_address=settings.shop_address),
        links=links,
        verp_key=verp_key,
        feedback=feedback_id(campaign.id, job.variant.label, settings.feedback_sender),
        open_pixel=settings.open_pixel and consent,
        now=now,
    )


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
        variants = {v.id: v for v in campaign.variants}
        gate = asyncio.Semaphore(self._settings.concurrency)
        halted = asyncio.Event()

        async def one(row: Row[Any]) -> None:
            async with gate:
                if halted.is_set():
                    return  # leave the row pending for the next poll
                send = self._send_one(campaign, winner or variants[row.variant_id], row, book, now)
                if not await self._guarded(send, campaign.id, int(row.id)):
                    halted.set()

        async with asyncio.TaskGroup() as group:
            for row in rows:
                group.create_task(one(row))
        return None if halted.is_set() else True

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
                self._renderers[key] = await load_renderer(conn, self._factory, campaign, variant)
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
            on_commit=_MarkSent(
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _MarkSent:
    """A copy's ``on_commit``: its row turns ``sent``, its variant's ``sent`` moves. The
    committer runs a batch's hooks sorted by ``order_key`` (``OrderedHook``), so no two
    transactions lock two variants' ``campaign_stats`` rows in opposite orders."""

    campaign_id: int
    variant_id: int
    recipient_id: int
    now: datetime

    @property
    def order_key(self) -> tuple[int, ...]:
        return (self.campaign_id, self.variant_id, self.recipient_id)

    def __call__(self, conn: Connection) -> None:
        result = conn.execute(
            update(campaign_recipients)
            .where(
                campaign_recipients.c.id == self.recipient_id,
                campaign_recipients.c.status == "pending",
            )
            .values(status="sent", sent_at=self.now, variant_id=self.variant_id)
        )
        if result.rowcount == 1:
            # The day's total first: every batch takes it before any campaign_stats row.
            dailystats.bump(conn, "sent", self.now)
            stats.bump(conn, self.campaign_id, self.variant_id, sent=1)
