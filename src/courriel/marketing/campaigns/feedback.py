"""Bounces, complaints and mailto unsubscribes: what mail to a VERP address means.

Owns the processing of ``feedback_reports`` (rows the delivery router writes for mail to
``bounces+<ref>.<mac>@<domain>``, see :mod:`courriel.marketing.campaigns.tokens`), the
``bounce_state`` rows, and the "delivered" marks of campaign copies. It also builds the two
policy callbacks the composition root injects into delivery, which cannot import
marketing: :func:`feedback_address_check` (routing) and :func:`delivered_recorder` /
:func:`local_delivered_recorder` (delivered counts).

What one report does, decided in this order (docs/bounces.md is the operator's version):

1. An ARF complaint (RFC 5965; ``not-spam`` and ``auth-failure`` reports are only
   recorded): the contact's email consent becomes "unsubscribed" (method ``complaint``,
   through :func:`courriel.marketing.campaigns.tracking.unsubscribe_in`), the address is
   suppressed (reason ``complaint``), ``complained_at`` and ``complaints`` move once, and
   "Marked Email as Spam" is written once.
2. A bounce (RFC 3464 DSN or a common non-standard one), by its most severe recipient:
   ``hard``: suppressed (reason ``bounce``); ``soft``: ``bounce_state.soft_in_row`` + 1
   and the third soft bounce in a row suppresses (reason ``soft-bounces``); both mark
   ``bounced_at`` and bump ``bounced`` once per copy and write "Bounced Email" (status,
   diagnostic, kind) once: the copy was not delivered, whichever the kind. ``delay``
   records only the outcome text. A delivery resets ``soft_in_row`` (:func:`record_delivered`).
3. Neither: an automatic reply (``Auto-Submitted`` not "no", RFC 3834 §5) is ignored; a
   Subject of exactly "unsubscribe" (what our RFC 2369 ``List-Unsubscribe`` mailto sets)
   unsubscribes like a link (method ``mailto``); anything else is "ignored: not a report".

Invariants:
- One write transaction per report: the claim (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  the single writer on SQLite), every effect, and ``processed_at``/``outcome``. Effects
  run in a savepoint: a report that makes them fail is marked "error: …" and skipped,
  so garbage never blocks the queue nor crashes the loop.
- Replays change nothing: a second report about the same copy finds its ``*_at`` mark set
  and moves no counter, no ``soft_in_row`` and writes no event (events carry unique keys).
- Processed rows, and so their bodies, are kept for ``retention`` (30 days) so an operator
  can read the raw report behind a suppression; then they are deleted and their bodies
  freed through the injected ``free_blobs`` (the mail store's, which marketing cannot
  import). A crash between the two leaves an orphan body, never a dangling row.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.header
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import BlobMissing, CourrielError, InvalidInput, NotFound
from courriel.mail.arf import parse_arf
from courriel.mail.bouncetypes import BouncedRecipient, BounceReport, load_message
from courriel.mail.dsnparse import parse_bounce
from courriel.marketing import dailystats
from courriel.marketing.campaigns import stats
from courriel.marketing.campaigns.tokens import VERP_PREFIX, Ref, parse_verp
from courriel.marketing.campaigns.tracking import EVENT_SOURCE, message_properties, unsubscribe_in
from courriel.marketing.commerce import EventData, append_event, upsert_statement
from courriel.marketing.normalise import normalise_email
from courriel.marketing.suppression import suppress
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import utcnow
from courriel.storage.models.campaigns import (
    bounce_state,
    campaign_recipients,
    feedback_reports,
    transactional_messages,
)

__all__ = [
    "RETENTION",
    "SOFT_BOUNCE_LIMIT",
    "VERP_KEY_NAME",
    "FeedbackProcessor",
    "delivered_recorder",
    "feedback_address_check",
    "local_delivered_recorder",
    "record_delivered",
]

log = logging.getLogger(__name__)

VERP_KEY_NAME = "verp"  # the shared secret (storage.secrets) that signs VERP addresses
SOFT_BOUNCE_LIMIT = 3  # soft bounces in a row that suppress an address
RETENTION = timedelta(days=30)  # processed reports (and their bodies) are kept this long
_CHUNK = 500  # ids per IN list
_OUTCOME_MAX = 1000

FreeBlobs = Callable[[Sequence[str]], Awaitable[None]]


# -- callbacks for delivery --------------------------------------------------------------


def _ref_of(verp_key: bytes, address: str) -> Ref | None:
    try:
        return parse_verp(verp_key, address)
    except InvalidInput:
        return None


def feedback_address_check(verp_key: bytes) -> Callable[[str], bool | None]:
    """The router's :data:`courriel.delivery.router.FeedbackCheck` for ``verp_key``.

    True for a VERP address this key signed, False for one with the VERP prefix that it
    did not (forged, or from another installation), None for any other address.
    """

    def check(address: str) -> bool | None:
        local = address.rpartition("@")[0]
        if not local.lower().startswith(VERP_PREFIX):
            return None
        return _ref_of(verp_key, address) is not None

    return check


def _refs(verp_key: bytes, senders: Iterable[str]) -> list[Ref]:
    return [ref for ref in (_ref_of(verp_key, s) for s in senders if s) if ref is not None]


def delivered_recorder(
    db: Database, verp_key: bytes, clock: Callable[[], datetime] = utcnow
) -> Callable[[Sequence[tuple[str, str]]], Awaitable[None]]:
    """The delivery worker's ``on_delivered``: VERP senders' copies count as delivered."""

    async def delivered(pairs: Sequence[tuple[str, str]]) -> None:
        refs = _refs(verp_key, (sender for sender, _recipient in pairs))
        if refs:
            now = clock()
            async with db.write() as conn:
                await conn.run_sync(lambda c: record_delivered(c, refs, now))

    return delivered


def local_delivered_recorder(
    verp_key: bytes, clock: Callable[[], datetime] = utcnow
) -> Callable[[Connection, Sequence[str]], None]:
    """The group committer's ``on_local_delivered``: a copy in a local mailbox is delivered."""

    def delivered(conn: Connection, senders: Sequence[str]) -> None:
        refs = _refs(verp_key, senders)
        if refs:
            record_delivered(conn, refs, clock())

    return delivered


def record_delivered(conn: Connection, refs: Sequence[Ref], now: datetime) -> int:
    """Count the copies of ``refs`` as delivered, inside the caller's transaction.

    Marks ``delivered_at`` of each campaign copy once and bumps its variant's ``delivered``
    by the copies newly marked; resets ``soft_in_row`` of every address concerned
    (transactional ones too). Batched: a few statements whatever the number of refs.

    Returns:
        How many campaign copies were newly marked.
    """
    campaign_ids = sorted({r.id for r in refs if r.kind == "c"})
    message_ids = sorted({r.id for r in refs if r.kind == "t"})
    per_variant: Counter[tuple[int, int]] = Counter()
    emails: set[str] = set()
    for chunk in _chunks(campaign_ids):
        marked = conn.execute(
            update(campaign_recipients)
            .where(
                campaign_recipients.c.id.in_(chunk), campaign_recipients.c.delivered_at.is_(None)
            )
            .values(delivered_at=now)
            .returning(
                campaign_recipients.c.campaign_id,
                campaign_recipients.c.variant_id,
                campaign_recipients.c.email,
            )
        )
        for row in marked:
            emails.add(row.email)
            if row.variant_id is not None:
                per_variant[(row.campaign_id, row.variant_id)] += 1
    for chunk in _chunks(message_ids):
        found = select(transactional_messages.c.email).where(transactional_messages.c.id.in_(chunk))
        emails.update(conn.execute(found).scalars())
    for (campaign_id, variant_id), count in sorted(per_variant.items()):
        stats.bump(conn, campaign_id, variant_id, delivered=count)
    # After every campaign_stats row (dailystats' lock order). Transactional messages have
    # no delivered mark: each delivery the worker reports counts once.
    dailystats.bump(conn, "delivered", now, sum(per_variant.values()) + len(message_ids))
    _reset_soft(conn, emails)
    return sum(per_variant.values())


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _reset_soft(conn: Connection, emails: Iterable[str]) -> None:
    addresses = sorted({_normal(e) for e in emails} - {""})
    for chunk in _chunks(addresses):
        conn.execute(
            update(bounce_state)
            .where(bounce_state.c.email.in_(chunk), bounce_state.c.soft_in_row > 0)
            .values(soft_in_row=0)
        )


def _normal(address: str) -> str:
    try:
        return normalise_email(address)
    except InvalidInput:
        return ""


# -- the processor -----------------------------------------------------------------------


class FeedbackProcessor:
    """Processes ``feedback_reports`` rows until stopped; one per node is plenty."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        verp_key: bytes,
        clock: Callable[[], datetime] = utcnow,
        *,
        free_blobs: FreeBlobs | None = None,
        retention: timedelta = RETENTION,
        batch: int = 100,
        poll_interval: float = 5.0,
    ) -> None:
        """Args:
        db, blobs: where reports and their bodies are.
        verp_key: the secret of :data:`VERP_KEY_NAME`.
        clock: the current time (injected in tests).
        free_blobs: frees bodies nothing references any more (the mail store's
            ``free_blobs``); None keeps processed reports for ever.
        retention: how long processed reports are kept.
        batch: reports taken per round.
        poll_interval: seconds between rounds when idle and nobody calls :meth:`wake`.
        """
        self._db = db
        self._blobs = blobs
        self._key = verp_key
        self._clock = clock
        self._free = free_blobs
        self._retention = retention
        self._batch = batch
        self._poll = poll_interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New reports were stored: look now (the group committer's ``on_feedback``)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process rounds until ``stop`` is set; a failed round is logged and retried."""
        while not stop.is_set():
            self._wake.clear()
            try:
                done = await self.run_once()
            except CourrielError as exc:
                log.error("feedback round failed: %s", exc)
                done = 0
            if done:
                continue
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, self._wake)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), self._poll
                )
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Process up to ``batch`` waiting reports, then prune old ones.

        Returns:
            How many reports this call processed.
        """
        async with self._db.read() as conn:
            todo = await conn.scalars(
                select(feedback_reports.c.id)
                .where(feedback_reports.c.processed_at.is_(None))
                .order_by(feedback_reports.c.id)
                .limit(self._batch)
            )
            ids = list(todo)
        done = 0
        for report_id in ids:
            done += await self._process(report_id)
        await self._prune()
        return done

    async def _process(self, report_id: int) -> int:
        """Claim, handle and mark one report in one transaction; 1 if this call did it."""
        async with self._db.write() as conn:
            claim = select(feedback_reports).where(
                feedback_reports.c.id == report_id, feedback_reports.c.processed_at.is_(None)
            )
            if conn.dialect.name == "postgresql":
                claim = claim.with_for_update(skip_locked=True)
            row = (await conn.execute(claim)).first()
            if row is None:
                return 0  # another node took it, or it is done
            now = self._clock()
            outcome = await self._guarded(conn, row, now)
            await conn.execute(
                update(feedback_reports)
                .where(feedback_reports.c.id == report_id)
                .values(processed_at=now, outcome=outcome[:_OUTCOME_MAX])
            )
        log.info("feedback report %d to %s: %s", report_id, row.recipient, outcome)
        return 1

    async def _guarded(self, conn: AsyncConnection, row: Row[Any], now: datetime) -> str:
        """Handle one report in a savepoint; a failure is its outcome, never the loop's."""
        try:
            data = await self._blobs.get(row.blob_key)
        except BlobMissing:
            return "error: the report's body is missing"
        try:
            async with conn.begin_nested():
                return await self._handle(conn, row.recipient, data, now)
        except Exception as exc:  # one bad report is marked and skipped, whatever it is
            log.warning("feedback report %d failed: %r", row.id, exc)
            return f"error: {type(exc).__name__}: {exc}"

    async def _handle(
        self, conn: AsyncConnection, recipient: str, data: bytes, now: datetime
    ) -> str:
        ref = _ref_of(self._key, recipient)
        if ref is None:
            return "ignored: not a valid VERP address"
        try:
            who = await conn.run_sync(lambda c: stats.recipient(c, ref))
        except NotFound:
            return f"ignored: {ref} no longer exists"
        report = parse_arf(data)
        if report is not None:
            if not report.is_complaint:
                return f"ignored: {report.feedback_type} report"
            return await _complaint(conn, who, report.feedback_type, now)
        bounce = parse_bounce(data)
        if bounce is not None:
            return await _bounce(conn, who, bounce, now)
        message = load_message(data)
        if _automatic(message):
            return "ignored: automatic reply"
        if _subject(message).strip().lower() == "unsubscribe":
            await unsubscribe_in(conn, ref, method="mailto", ip=None, now=now)
            return f"unsubscribed {ref} (mailto)"
        return "ignored: not a report"

    async def _prune(self) -> None:
        if self._free is None:
            return
        horizon = self._clock() - self._retention
        async with self._db.write() as conn:
            gone = await conn.execute(
                delete(feedback_reports)
                .where(feedback_reports.c.processed_at < horizon)
                .returning(feedback_reports.c.blob_key)
            )
            keys = sorted(set(gone.scalars()))
        if keys:
            await self._free(keys)


def _automatic(message: Message) -> bool:
    # RFC 3834 §5: any Auto-Submitted value but "no" (its parameters aside) is automatic.
    return str(message.get("Auto-Submitted", "no")).partition(";")[0].strip().lower() != "no"


def _subject(message: Message) -> str:
    raw = message.get("Subject", "")
    try:
        return str(email.header.make_header(email.header.decode_header(str(raw))))
    except (ValueError, LookupError, UnicodeError):
        return str(raw)


# -- effects -----------------------------------------------------------------------------


async def _complaint(
    conn: AsyncConnection, who: stats.Recipient, feedback_type: str, now: datetime
) -> str:
    """RFC 5965 §3.1: an abuse, fraud, virus or other report from a feedback loop."""
    await unsubscribe_in(conn, who.ref, method="complaint", ip=None, now=now)
    await _suppress(conn, who.email, "complaint", f"ARF {feedback_type} about {who.ref}", now)
    if await _first(conn, who.ref, "complained_at", "complained", now):
        await _bump(conn, who, complaints=1)
        await dailystats.bump_in(conn, "complained", now)
    props = {**await message_properties(conn, who), "feedback_type": feedback_type}
    await _event(conn, who, "Marked Email as Spam", props, now, key=f"complaint:{who.ref}")
    return f"complaint ({feedback_type}) about {who.ref}: unsubscribed and suppressed"


def _worst(report: BounceReport) -> BouncedRecipient:
    kind = report.kind
    return next(r for r in report.recipients if r.kind == kind)


async def _bounce(
    conn: AsyncConnection, who: stats.Recipient, report: BounceReport, now: datetime
) -> str:
    """One VERP address names one copy: its most severe recipient decides."""
    worst = _worst(report)
    text = f"{worst.kind} bounce of {who.ref} ({worst.status or 'no status'})"
    if worst.kind in ("delay", "none"):
        return f"{text}: nothing to do"
    if not await _first(conn, who.ref, "bounced_at", "bounced", now):
        return f"{text}: already counted"
    await _bump(conn, who, bounced=1)
    await dailystats.bump_in(conn, "bounced", now)
    soft_in_row = await _bounce_state(conn, who.email, worst, now)
    props = {
        **await message_properties(conn, who),
        "status": worst.status,
        "diagnostic": worst.diagnostic[:500],
        "kind": worst.kind,
    }
    await _event(conn, who, "Bounced Email", props, now, key=f"bounce:{who.ref}")
    if worst.kind == "hard":
        await _suppress(conn, who.email, "bounce", f"{worst.status} {worst.diagnostic}", now)
        return f"{text}: suppressed"
    if soft_in_row >= SOFT_BOUNCE_LIMIT:
        await _suppress(conn, who.email, "soft-bounces", f"{soft_in_row} soft bounces", now)
        return f"{text}: {soft_in_row} in a row, suppressed"
    return f"{text}: {soft_in_row} in a row"


async def _bounce_state(
    conn: AsyncConnection, address: str, worst: BouncedRecipient, now: datetime
) -> int:
    """Count a hard or soft bounce of ``address``; the soft bounces in a row after it."""
    email = _normal(address) or address
    hard, soft = (1, 0) if worst.kind == "hard" else (0, 1)
    status = worst.status[:16] or None
    insert = upsert_statement(conn, bounce_state).values(
        email=email, soft_in_row=soft, hard=hard, last_status=status, last_at=now
    )
    excluded = insert.excluded
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=["email"],
            set_={
                "soft_in_row": bounce_state.c.soft_in_row + excluded.soft_in_row,
                "hard": bounce_state.c.hard + excluded.hard,
                "last_status": excluded.last_status,
                "last_at": excluded.last_at,
            },
        )
    )
    found = select(bounce_state.c.soft_in_row).where(bounce_state.c.email == email)
    return int((await conn.execute(found)).scalar_one())


async def _first(
    conn: AsyncConnection, ref: Ref, column: stats.FirstMark, status: str, now: datetime
) -> bool:
    """Mark the copy's first ``column`` (campaigns) or set its status (transactional)."""
    if ref.kind == "c":
        return await conn.run_sync(lambda c: stats.mark_first(c, ref, column, now))
    table = transactional_messages
    result = await conn.execute(
        update(table).where(table.c.id == ref.id, table.c.status == "queued").values(status=status)
    )
    return bool(result.rowcount == 1)


async def _bump(conn: AsyncConnection, who: stats.Recipient, **deltas: int) -> None:
    campaign_id, variant_id = who.campaign_id, who.variant_id
    if campaign_id is not None and variant_id is not None:
        await conn.run_sync(lambda c: stats.bump(c, campaign_id, variant_id, **deltas))


async def _suppress(
    conn: AsyncConnection, address: str, reason: str, detail: str, now: datetime
) -> None:
    await suppress(conn, kind="address", value=address, reason=reason, detail=detail[:500], now=now)


async def _event(
    conn: AsyncConnection,
    who: stats.Recipient,
    name: str,
    properties: dict[str, Any],
    now: datetime,
    *,
    key: str,
) -> None:
    await append_event(
        conn,
        EventData(
            name=name,
            properties=properties,
            occurred_at=now,
            source=EVENT_SOURCE,
            unique_key=key,
            contact_id=who.contact_id,
        ),
    )
