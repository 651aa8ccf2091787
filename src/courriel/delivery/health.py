"""Queue health for the dashboard: how many recipients wait, wait again, or failed.

One grouped count over ``queue_recipients`` (the queue is small: delivered messages are
deleted, see :mod:`courriel.delivery.claims`), read in one statement. The states are the
queue's one rule (:func:`courriel.delivery.queue.state_column`), as the queue page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.delivery.queue import state_column
from courriel.storage.models import queue_recipients

__all__ = ["QueueHealth", "queue_health"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueHealth:
    """Recipients of the outbound queue by state."""

    queued: int  # waiting for their first attempt
    deferred: int  # waiting again after a temporary failure (attempts > 0)
    failed: int  # given up (a bounce was or will be sent)


async def queue_health(conn: AsyncConnection) -> QueueHealth:
    """The counts of :class:`QueueHealth`, from one grouped query."""
    qr = queue_recipients
    state = state_column().label("state")
    rows = await conn.execute(
        select(state, func.count()).where(qr.c.status.in_(("queued", "failed"))).group_by(state)
    )
    counts = {str(name): int(n) for name, n in rows}
    return QueueHealth(
        queued=counts.get("queued", 0),
        deferred=counts.get("deferred", 0),
        failed=counts.get("failed", 0),
    )
