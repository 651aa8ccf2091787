"""Group settling: the outcomes of messages that finish close together share one transaction.

Settling a message (its recipients' new state, the attempt rows, deleting what is done)
is one write transaction; on SQLite each costs an fsync. The dispatch lanes of a busy
worker finish messages continuously, so the settlements waiting while one transaction
commits are written together by the next, as the receiving side's group commit does.

Invariant: :meth:`Settler.settle` returns only after the settlements are committed (or
raises the error that prevented it: the claims then expire and are retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from courriel.delivery.claims import Settlement, settle
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database

__all__ = ["Settler"]


class Settler:
    """Batches :func:`courriel.delivery.claims.settle` calls of one worker."""

    def __init__(self, db: Database, blobs: BlobStore, worker: str) -> None:
        self._db = db
        self._blobs = blobs
        self._worker = worker
        self._pending: list[tuple[Sequence[Settlement], asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Settle these recipients together with whatever else is waiting."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((settlements, future))
        if self._drainer is None or self._drainer.done():
            # Kept in an attribute: the loop holds only weak references to tasks.
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            together = [s for settlements, _f in batch for s in settlements]
            try:
                await settle(self._db, self._blobs, worker=self._worker, settlements=together)
            except Exception as exc:  # every waiter must get an answer
                for _s, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _s, future in batch:
                if not future.done():
                    future.set_result(None)
