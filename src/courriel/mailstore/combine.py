"""Group commit for IMAP flag changes: concurrent STOREs share one write transaction.

Twenty sessions flagging messages at once used to open twenty write transactions; on
SQLite each waited for the single writer in the busy handler's sleeps and paid its own
COMMIT (an fsync), so STORE's latency was mostly queueing. :class:`WriteCombiner`
queues each STORE's work and runs everything queued in one transaction, one after the
other, then commits once; whatever arrives meanwhile forms the next batch (the shape of
delivery's group commit).

Invariants:
    * A caller is answered only after the transaction holding its own change has
      committed (or failed: then every caller of the batch gets the error and nothing
      of the batch was committed).
    * A :class:`~courriel.errors.NotFound` or :class:`~courriel.errors.InvalidInput`
      raised by one caller's work fails that caller only. Such work must raise them
      before it writes anything (the store functions check first, then write), so the
      batch's transaction stays as if that work never ran.
    * Work runs in submission order, so each caller's change ids follow the order in
      which the sessions asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from courriel.errors import InvalidInput, NotFound
from courriel.storage.db import Database

__all__ = ["MAX_BATCH", "WriteCombiner"]

T = TypeVar("T")
Work = Callable[[Connection], Any]
Outcome = tuple[Any, BaseException | None]

MAX_BATCH = 64  # pieces of work per transaction: bounds the time the writer is held


def _run_all(conn: Connection, works: list[Work]) -> list[Outcome]:
    """Every piece of work in turn, in the caller's transaction (on the writer thread)."""
    outcomes: list[Outcome] = []
    for work in works:
        try:
            outcomes.append((work(conn), None))
        except (NotFound, InvalidInput) as exc:
            outcomes.append((None, exc))
    return outcomes


class WriteCombiner:
    """Runs submitted work in shared write transactions, one batch at a time.

    Work is a synchronous function of a ``Connection``: the whole batch runs in one
    :meth:`courriel.storage.db.Database.run_write` call (on SQLite one call on the
    writer thread, with no event-loop round trip per statement).

    Args:
        db: the database whose write transactions are shared.
        max_batch: the most pieces of work in one transaction.
    """

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max = max_batch
        self._queue: list[tuple[Work, asyncio.Future[Any]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed (for tests and benchmarks)

    async def submit(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a shared write transaction; its result once that committed.

        Raises:
            Whatever ``work`` raised (NotFound, InvalidInput: for this caller only), or
            StorageError when the shared transaction failed.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="imap-store-combiner")
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            await self._run(batch)

    async def _run(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        works = [work for work, _ in batch]
        try:
            outcomes = await self._db.run_write(lambda conn: _run_all(conn, works))
        except Exception as exc:
            # Handed to every caller of the batch: nothing of it was committed.
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            # Cancelled (shutdown): the callers must not wait forever.
            for _, future in batch:
                future.cancel()
            raise
        self.batches += 1
        for (_, future), (value, error) in zip(batch, outcomes, strict=True):
            if future.done():
                continue  # the caller went away; its change is committed all the same
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
