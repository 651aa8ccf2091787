"""A batch of ``MarkSent`` hooks marks its pending rows sent with a few statements, on both
engines, and counts exactly the rows it changed (per variant and per day)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection

from courriel.delivery.committer import BatchHook, GroupCommitter, OrderedHook
from courriel.mailstore.service import MailStore
from courriel.marketing.campaigns.marksent import MarkSent
from courriel.marketing.campaigns.service import AbSettings, create_campaign
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaign_stats
from courriel.storage.models.dashboard import daily_stats
from courriel.storage.models.marketing import contacts

from .conftest import T0, Shop, commit_job

COUNTED = ("campaign_recipients", "campaign_stats", "daily_stats")


@dataclass(frozen=True)
class Setup:
    campaign_id: int
    variants: tuple[int, int]
    recipients: list[int]  # ids, in contact order


async def _setup(db: Database, shop: Shop, statuses: Sequence[str]) -> Setup:
    """A two-variant campaign with one recipient row per status (no copy sent yet)."""
    ab = AbSettings(sample_percent=50, wait_seconds=3600, metric="clicks")
    async with db.write() as conn:
        made = await create_campaign(
            conn,
            name="Batch",
            variants=[("A", shop.template_id), ("B", shop.template_id)],
            audience=[("list", shop.list_id)],
            from_address="news@shop.example",
            ab=ab,
            now=T0,
        )
        emails = [f"b{i}@batch.example" for i in range(len(statuses))]
        await conn.execute(
            insert(contacts),
            [{"email": e, "attributes": {}, "created_at": T0, "updated_at": T0} for e in emails],
        )
        found = await conn.execute(select(contacts.c.email, contacts.c.id))
        ids = {email: contact_id for email, contact_id in found}
        await conn.execute(
            insert(campaign_recipients),
            [
                {
                    "campaign_id": made.id,
                    "contact_id": ids[email],
                    "email": email,
                    "phase": "sample",
                    "status": status,
                }
                for email, status in zip(emails, statuses, strict=True)
            ],
        )
        rows = await conn.execute(
            select(campaign_recipients.c.email, campaign_recipients.c.id).where(
                campaign_recipients.c.campaign_id == made.id
            )
        )
        by_email = {email: recipient_id for email, recipient_id in rows}
    a, b = (variant.id for variant in made.variants)
    return Setup(made.id, (a, b), [by_email[email] for email in emails])


def _hooks(setup: Setup, count: int) -> list[MarkSent]:
    """One hook per recipient of the first ``count``, variants alternating."""
    return [
        MarkSent(
            campaign_id=setup.campaign_id,
            variant_id=setup.variants[i % 2],
            recipient_id=recipient_id,
            now=T0,
        )
        for i, recipient_id in enumerate(setup.recipients[:count])
    ]


@contextmanager
def _counting(conn: Connection) -> Iterator[list[str]]:
    """The statements ``conn`` runs meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(conn, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", count)


def _touching_counted_tables(statements: Sequence[str]) -> list[str]:
    return [s for s in statements if any(table in s for table in COUNTED)]


async def _state(db: Database, setup: Setup) -> tuple[dict[int, Any], dict[int, int], list[Any]]:
    """Recipient rows by id, ``sent`` per variant, the ``daily_stats`` rows."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                campaign_recipients.c.id,
                campaign_recipients.c.status,
                campaign_recipients.c.variant_id,
                campaign_recipients.c.sent_at,
            ).where(campaign_recipients.c.campaign_id == setup.campaign_id)
        )
        recipients = {row.id: row for row in rows}
        sent = await conn.execute(
            select(campaign_stats.c.variant_id, campaign_stats.c.sent).where(
                campaign_stats.c.campaign_id == setup.campaign_id
            )
        )
        daily = await conn.execute(
            select(daily_stats.c.day, daily_stats.c.metric, daily_stats.c.value).order_by(
                daily_stats.c.day
            )
        )
        per_variant = {variant_id: count for variant_id, count in sent}
        return recipients, per_variant, [tuple(row) for row in daily]


def test_marksent_is_a_batch_and_ordered_hook() -> None:
    hook = MarkSent(campaign_id=1, variant_id=2, recipient_id=3, now=T0)
    assert isinstance(hook, BatchHook) and isinstance(hook, OrderedHook)
    assert hook.order_key == (1, 2, 3)
    assert (
        hook.batch_kind == MarkSent(campaign_id=9, variant_id=9, recipient_id=9, now=T0).batch_kind
    )


async def test_a_batch_of_300_marks_and_counts_only_the_pending_rows(
    database: Database, shop: Shop
) -> None:
    statuses = ["pending"] * 290 + ["sent"] * 5 + ["skipped"] * 5
    setup = await _setup(database, shop, statuses)
    hooks = _hooks(setup, 300)
    a, b = setup.variants

    def work(conn: Connection) -> list[str]:
        with _counting(conn) as seen:
            MarkSent.run_batch(conn, hooks)
        return seen

    statements = await database.run_write(work)
    # One UPDATE per variant, one daily bump, one campaign_stats bump per variant.
    assert len(statements) == 5
    recipients, sent, daily = await _state(database, setup)
    changed = [
        hook for hook in hooks if statuses[setup.recipients.index(hook.recipient_id)] == "pending"
    ]
    assert len(changed) == 290
    for hook in changed:
        row = recipients[hook.recipient_id]
        assert (row.status, row.variant_id, row.sent_at) == ("sent", hook.variant_id, T0)
    for recipient_id, status in zip(setup.recipients[290:], statuses[290:], strict=True):
        row = recipients[recipient_id]
        assert (row.status, row.variant_id, row.sent_at) == (status, None, None)
    assert sent == {
        a: sum(1 for hook in changed if hook.variant_id == a),
        b: sum(1 for hook in changed if hook.variant_id == b),
    }
    assert sent[a] + sent[b] == 290
    assert daily == [(T0.date(), "sent", 290)]


async def test_hooks_for_rows_already_sent_change_and_count_nothing(
    database: Database, shop: Shop
) -> None:
    setup = await _setup(database, shop, ["pending"] * 4)
    first = _hooks(setup, 4)
    await database.run_write(lambda conn: MarkSent.run_batch(conn, first))
    later = T0 + timedelta(days=1)
    again = [
        MarkSent(
            campaign_id=h.campaign_id,
            variant_id=h.variant_id,
            recipient_id=h.recipient_id,
            now=later,
        )
        for h in first
    ]
    twice = [*first[:1], *first[:1]]  # two hooks for one row in one batch

    def work(conn: Connection) -> list[str]:
        with _counting(conn) as seen:
            MarkSent.run_batch(conn, again)
            MarkSent.run_batch(conn, twice)
            first[1](conn)  # one hook alone
        return seen

    statements = await database.run_write(work)
    assert len(statements) == 4  # only UPDATEs that matched nothing: no bump at all
    assert all(s.lstrip().upper().startswith("UPDATE CAMPAIGN_RECIPIENTS") for s in statements)
    recipients, sent, daily = await _state(database, setup)
    assert {row.sent_at for row in recipients.values()} == {T0}
    assert sent == {setup.variants[0]: 2, setup.variants[1]: 2}
    assert daily == [(T0.date(), "sent", 4)]


async def test_one_hook_alone_marks_and_counts_its_row(database: Database, shop: Shop) -> None:
    setup = await _setup(database, shop, ["pending", "pending"])
    hook = _hooks(setup, 1)[0]
    await database.run_write(hook)
    recipients, sent, daily = await _state(database, setup)
    assert [recipients[r].status for r in setup.recipients] == ["sent", "pending"]
    assert sent == {setup.variants[0]: 1, setup.variants[1]: 0}
    assert daily == [(T0.date(), "sent", 1)]


async def test_a_batch_across_midnight_counts_each_day(database: Database, shop: Shop) -> None:
    setup = await _setup(database, shop, ["pending"] * 6)
    hooks = [
        MarkSent(
            campaign_id=hook.campaign_id,
            variant_id=hook.variant_id,
            recipient_id=hook.recipient_id,
            now=T0 + timedelta(hours=12 * (i // 3)),  # 3 today, 3 tomorrow
        )
        for i, hook in enumerate(_hooks(setup, 6))
    ]
    await database.run_write(lambda conn: MarkSent.run_batch(conn, hooks))
    _recipients, sent, daily = await _state(database, setup)
    tomorrow = (T0 + timedelta(hours=12)).date()
    assert daily == [(T0.date(), "sent", 3), (tomorrow, "sent", 3)]
    assert sent == {setup.variants[0]: 3, setup.variants[1]: 3}


@dataclass(frozen=True)
class Probe:
    """A batch hook that runs before any ``MarkSent`` group (its key is smaller) and starts
    counting the batch's statements; :class:`StopProbe` (a plain hook, run last) stops."""

    seen: list[str]

    @property
    def order_key(self) -> tuple[int, ...]:
        return (0,)

    @property
    def batch_kind(self) -> Hashable:
        return "probe"

    def run_batch(self, conn: Connection, hooks: Sequence[Probe]) -> None:
        event.listen(conn, "before_cursor_execute", self.count)

    def count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)

    def __call__(self, conn: Connection) -> None:
        raise AssertionError("run alone: the committer should batch it")


@dataclass(frozen=True)
class StopProbe:
    probe: Probe

    def __call__(self, conn: Connection) -> None:
        event.remove(conn, "before_cursor_execute", self.probe.count)


async def test_the_committer_runs_a_batchs_marksent_hooks_together(
    database: Database, shop: Shop, blobs: BlobStore, mailstore: MailStore
) -> None:
    statuses = ["pending"] * 298 + ["sent", "skipped"]
    setup = await _setup(database, shop, statuses)
    probe = Probe([])
    hooks: list[Callable[[Connection], None]] = [StopProbe(probe), *_hooks(setup, 300), probe]
    committer = GroupCommitter(database, mailstore, max_batch=512)
    jobs = [await commit_job(blobs, n, hook) for n, hook in enumerate(hooks)]
    await asyncio.gather(*(committer.commit(job) for job in jobs))
    await committer.close()
    assert committer.batches == 1
    # The hooks' statements alone (the probe counts from the first group to the last hook):
    # two UPDATEs, one daily bump, two campaign_stats bumps, for 300 hooks.
    assert len(_touching_counted_tables(probe.seen)) == len(probe.seen) == 5
    recipients, sent, daily = await _state(database, setup)
    assert sum(row.status == "sent" for row in recipients.values()) == 299
    assert sum(sent.values()) == 298
    assert daily == [(T0.date(), "sent", 298)]
