"""Group settling: the outcomes of messages that finish close together share one transaction.

Settling a message (its recipients' new state, the attempt rows, deleting what is done)
is one write transaction; on SQLite each costs an fsync. The dispatch lanes of a busy
worker finish messages continuously, so the settlements waiting while one transaction
commits are written together by the next, as the receiving side's group commit does.

Invariant: :meth:`Settler.settle` returns only after the settlements are committed (or
raises the error that prevented it: the claims then expire and are retried).

After a batch commits, ``on_delivered`` (when given) is told once about every recipient
of the batch that was delivered, as ``(envelope sender, recipient)`` pairs: campaigns
count deliveries from it. It runs after the commit, so a crash in between loses that
count (never a delivery); its failure is logged and changes nothing here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from courriel.delivery.claims import Settlement, settle
from courriel.errors import CourrielError
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database

__all__ = ["OnDelivered", "Settler"]

log = logging.getLogger(__name__)

# Told the (envelope sender, recipient) of every recipient delivered by a settled batch.
OnDelivered = Callable[[Sequence[tuple[str, str]]], Awaitable[None]]


class Settler:
    """Batches :func:`courriel.delivery.claims.settle` calls of one worker."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        worker: str,
        on_delivered: OnDelivered | None = None,
    ) -> None:
        self._db = db
        self._on_delivered = on_delivered
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
            await self._tell_delivered(together)

    async def _tell_delivered(self, settlements: Sequence[Settlement]) -> None:
        if self._on_delivered is None:
            return
        delivered = [
            (s.claim.sender, s.claim.recipient) for s in settlements if s.outcome == "delivered"
        ]
        if not delivered:
            return
        try:
            await self._on_delivered(delivered)
        except CourrielError as exc:
            log.error("cannot record %d deliveries: %s", len(delivered), exc)
