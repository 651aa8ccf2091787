"""The change feed: who waits for new mail, and how they are woken.

Every append, expunge and flag change writes a ``changes`` row in the same transaction
as the change itself, so the feed never runs ahead of the data. In-process waiters are
woken at once by :meth:`ChangeFeed.notify` (called after the commit); changes made by
another process are seen by polling the table every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from sqlalchemy import func, select

from courriel.storage.db import Database
from courriel.storage.models import changes

__all__ = ["ChangeFeed"]


class ChangeFeed:
    """Wakes waiters of an account when its mail changes."""

    def __init__(self, db: Database, *, poll_interval: float = 0.5) -> None:
        self._db = db
        self._poll = poll_interval
        self._waiters: dict[int, set[asyncio.Event]] = {}

    def notify(self, account_ids: Iterable[int]) -> None:
        """Wake every in-process waiter of these accounts (call after commit)."""
        for account_id in account_ids:
            for event in self._waiters.get(account_id, ()):
                event.set()

    async def latest_change_id(self, account_id: int) -> int:
        """The id of the account's newest change, 0 when it has none."""
        async with self._db.read() as conn:
            value = await conn.scalar(
                select(func.max(changes.c.id)).where(changes.c.account_id == account_id)
            )
        return int(value or 0)

    async def wait_for_change(
        self,
        account_id: int,
        after_change_id: int,
        timeout: float,  # noqa: ASYNC109 - the port's contract
    ) -> int:
        """Wait until the account has a change newer than ``after_change_id``.

        Returns:
            The newest change id; equal to ``after_change_id`` (or lower) on timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = asyncio.Event()
        # Registered before the first check, so a notify in between is not lost.
        self._waiters.setdefault(account_id, set()).add(event)
        try:
            while True:
                # Cleared before reading, so a notify after the read still wakes us.
                event.clear()
                latest = await self.latest_change_id(account_id)
                remaining = deadline - loop.time()
                if latest > after_change_id or remaining <= 0:
                    return latest
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(self._poll, remaining))
        finally:
            waiters = self._waiters.get(account_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[account_id]
