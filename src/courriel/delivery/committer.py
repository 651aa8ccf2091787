"""Group commit: the commits of concurrent SMTP transactions share one database transaction.

Each accepted message needs its rows committed (and, on SQLite with ``synchronous=FULL``,
the WAL fsynced) before its ``250``. Doing that once per message makes the disk the limit;
here one writer task takes every job waiting, writes them all in one transaction (each job
in its own SAVEPOINT, so one failing job does not fail the others), commits once, and then
answers every waiting transaction. Jobs that arrive while a batch is being written form the
next batch, so a lone message waits for nothing and a busy server batches by itself.

Invariant: a job's future is resolved with success only after the transaction holding its
rows has committed; a failed commit fails every job of the batch (none is acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.delivery import queue
from courriel.errors import CourrielError, StorageError
from courriel.mailstore.service import MailStore
from courriel.storage.db import Database

__all__ = ["CommitJob", "GroupCommitter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitJob:
    """The rows of one accepted message."""

    sender: str  # envelope sender, "" for the null reverse-path
    account_ids: tuple[int, ...]  # local mailboxes, one copy each
    remote: tuple[str, ...]  # recipients for the outbound queue
    blob_key: str
    size: int  # trace header + body octets
    trace_header: bytes
    internal_date: datetime


class GroupCommitter:
    """Batches :class:`CommitJob` writes; one instance per node, shared by every listener."""

    def __init__(self, db: Database, mailstore: MailStore, *, max_batch: int = 256) -> None:
        self._db = db
        self._mailstore = mailstore
        self._max_batch = max_batch
        self._pending: list[tuple[CommitJob, asyncio.Future[None]]] = []
        self._inflight: list[tuple[CommitJob, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # number of transactions written (for tests and metrics)

    async def commit(self, job: CommitJob) -> None:
        """Write the job's rows; returns once they are committed.

        Raises:
            StorageError: the database refused the batch or this job.
            NotFound: an account vanished between RCPT and commit.
        """
        if self._closed:
            raise StorageError("the committer is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="courriel-group-commit")
        self._wakeup.set()
        await future

    async def close(self) -> None:
        """Finish the jobs already submitted, then stop the writer task."""
        self._closed = True
        if self._task is not None:
            waiting = [future for _job, future in self._pending + self._inflight]
            await asyncio.gather(*waiting, return_exceptions=True)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._inflight = batch
                await self._write(batch)
                self._inflight = []

    async def _write(self, batch: list[tuple[CommitJob, asyncio.Future[None]]]) -> None:
        outcomes: list[BaseException | None] = []
        try:
            async with self._db.write() as conn:
                for job, _future in batch:
                    try:
                        async with conn.begin_nested():
                            await self._write_job(conn, job)
                        outcomes.append(None)
                    except CourrielError as exc:
                        outcomes.append(exc)
        except Exception as exc:  # every waiter must get an answer
            log.error("group commit of %d messages failed: %s", len(batch), exc)
            failure = exc if isinstance(exc, StorageError) else StorageError(repr(exc))
            outcomes = [failure] * len(batch)
        self.batches += 1
        delivered: list[int] = []
        for (job, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if outcome is None:
                delivered.extend(job.account_ids)
                future.set_result(None)
            else:
                future.set_exception(outcome)
        if delivered:
            self._mailstore.notify(delivered)

    async def _write_job(self, conn: AsyncConnection, job: CommitJob) -> None:
        if job.account_ids:
            await self._mailstore.deliver(
                conn,
                account_ids=job.account_ids,
                blob_key=job.blob_key,
                size=job.size,
                trace_header=job.trace_header,
                internal_date=job.internal_date,
            )
        if job.remote:
            await queue.enqueue(
                conn,
                sender=job.sender,
                recipients=job.remote,
                blob_key=job.blob_key,
                size=job.size,
                trace_header=job.trace_header,
            )
