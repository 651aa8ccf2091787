"""Daily mail totals for the dashboard's overview: one ``daily_stats`` row per (day, metric).

Owns the writes to ``daily_stats`` (schema 0007). Every place that records a fact the
overview charts bumps its day's counter here, in the transaction that records the fact,
so the overview reads at most ``days × metrics`` rows and never counts contacts, events or
orders on page load (design.md, Storage).

What each metric counts (the caller decides once, as ``campaign_stats`` does):

================ ===========================================================================
``sent``         campaign copies stored for delivery, transactional messages queued
``delivered``    campaign copies first marked delivered, transactional messages delivered
``opened``       messages opened for the first time (unique per message; prefetches never)
``clicked``      messages clicked for the first time (unique per message)
``revenue_minor`` revenue credited to campaigns, on the day the order was placed; later
                 refunds and cancellations move that same day by the difference
``bounced``      messages that bounced (hard or soft), once per message
``complained``   spam complaints (ARF), once per message
``unsubscribed`` unsubscribes from a campaign copy, once per copy
================ ===========================================================================

Invariants:
- A counter moves only inside the transaction that records its cause (never one that
  rolls back), by an ``INSERT … ON CONFLICT DO UPDATE`` that adds: concurrent bumps on
  PostgreSQL serialise on the row and none is lost; SQLite has one writer.
- Days are UTC dates of the fact's time.
- Lock order on PostgreSQL: a transaction that bumps ``campaign_stats`` bumps these rows
  after it, except the group committer's ``sent`` hooks, which take ``sent`` first (so
  every batch takes it before any ``campaign_stats`` row). No transaction takes a
  ``daily_stats`` row and then a ``campaign_stats`` row of another variant, so these rows
  add no deadlock cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.storage.models.dashboard import daily_stats

__all__ = ["METRICS", "DailySeries", "bump", "bump_in", "day_of", "read_series"]

METRICS = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "revenue_minor",
    "bounced",
    "complained",
    "unsubscribed",
)
_KNOWN = frozenset(METRICS)


def day_of(at: datetime) -> date:
    """The UTC day of ``at`` (a naive time is taken as UTC already)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.date()


def bump(conn: Connection, metric: str, at: datetime, n: int = 1) -> None:
    """Add ``n`` to ``metric`` of the day of ``at``, inside the caller's transaction.

    Raises:
        ValueError: an unknown metric (a programming error).
    """
    if metric not in _KNOWN:
        raise ValueError(f"unknown daily metric {metric!r}")
    if not n:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(daily_stats).values(day=day_of(at), metric=metric, value=n)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["day", "metric"],
            set_={"value": daily_stats.c.value + stmt.excluded.value},
        )
    )


async def bump_in(conn: AsyncConnection, metric: str, at: datetime, n: int = 1) -> None:
    """:func:`bump` for an async caller's transaction."""
    if n:
        await conn.run_sync(lambda c: bump(c, metric, at, n))


@dataclass(frozen=True, slots=True, kw_only=True)
class DailySeries:
    """Each metric's value per day, oldest day first, zeros where nothing happened."""

    days: tuple[date, ...]
    values: dict[str, tuple[int, ...]] = field(default_factory=dict)  # metric -> per day

    def total(self, metric: str) -> int:
        """The metric's sum over the days."""
        return sum(self.values.get(metric, ()))


async def read_series(conn: AsyncConnection, *, last_day: date, days: int = 30) -> DailySeries:
    """The ``days`` days ending with ``last_day`` (included): at most days × 8 rows read."""
    first = last_day - timedelta(days=days - 1)
    span = tuple(first + timedelta(days=i) for i in range(days))
    rows = await conn.execute(
        select(daily_stats.c.day, daily_stats.c.metric, daily_stats.c.value).where(
            daily_stats.c.day >= first, daily_stats.c.day <= last_day
        )
    )
    index = {day: i for i, day in enumerate(span)}
    values = {metric: [0] * days for metric in METRICS}
    for day, metric, value in rows:
        if metric in values and day in index:
            values[metric][index[day]] = int(value)
    return DailySeries(days=span, values={m: tuple(v) for m, v in values.items()})
