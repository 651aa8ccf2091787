"""Group commit: the commits of concurrent SMTP transactions share one database transaction.

Each accepted message needs its rows committed (and, on SQLite with ``synchronous=FULL``,
the WAL fsynced) before its ``250``. Doing that once per message makes the disk the limit;
here one writer task takes every job waiting, writes them all in one transaction (with a few
multi-row statements, see :mod:`courriel.mailstore.batch`; a job whose account vanished
fails alone), commits once, and then
answers every waiting transaction. Jobs that arrive while a batch is being written form the
next batch, so a lone message waits for nothing and a busy server batches by itself.

Mail for a feedback address (a VERP return path, see :mod:`courriel.delivery.router`)
becomes a ``feedback_reports`` row per address, written in the same transaction as the
job's other rows (and after :func:`courriel.storage.blobgc.share_keys`, so its body is
protected like a mailbox copy's); the feedback processor reads it later.

The ``on_commit`` hooks of a batch run before ``on_local_delivered``, in three tiers:

1. :class:`BatchHook` hooks, grouped by ``batch_kind``: one ``run_batch`` call per group
   does the work of all its hooks with a few statements (a campaign batch of 256 copies
   marks its recipient rows sent with one UPDATE per variant, not 256, and bumps each
   counter once). Each group is sorted by ``order_key`` (keyed hooks first, the others
   after them in job order); groups run in order of their smallest key, unkeyed groups
   last in job order.
2. :class:`OrderedHook` hooks, sorted by ``order_key``.
3. The other hooks, in job order.

Lock order: every transaction takes the counter rows its hooks bump in one order, a
batch's ``daily_stats`` row(s) first (ascending days), then its ``campaign_stats`` rows in
(campaign, variant) order, so two concurrent batches on PostgreSQL cannot deadlock on
them. A batch group keeps that order within its ``run_batch``; the counter-bumping hooks
of a batch must all be of one kind (today campaign ``MarkSent``) or bump in key order
(tier 2) rows no group of tier 1 takes.

Invariant: a job's future is resolved with success only after the transaction holding its
rows has committed; a failed commit fails every job of the batch (none is acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self, runtime_checkable

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from courriel.delivery import queue
from courriel.errors import StorageError
from courriel.mailstore.batch import Copy, deliver_many
from courriel.mailstore.service import MailStore
from courriel.storage import blobgc
from courriel.storage.blobs import PreparedBlob, persist_files
from courriel.storage.db import Database
from courriel.storage.models.campaigns import feedback_reports

__all__ = ["BatchHook", "CommitJob", "GroupCommitter", "LocalDelivered", "OrderedHook"]

log = logging.getLogger(__name__)

# Runs in a batch's transaction with the envelope senders of the jobs whose mailbox copies
# it stored (non-null senders only): the composition root counts campaign copies that
# reached a local mailbox as delivered there. Like ``on_commit``, it must not fail.
LocalDelivered = Callable[[Connection, Sequence[str]], None]


@runtime_checkable
class OrderedHook(Protocol):
    """An ``on_commit`` hook with a sort key: a batch runs such hooks sorted by it."""

    @property
    def order_key(self) -> tuple[Any, ...]:
        """Comparable with every other hook's key (e.g. campaign, variant, recipient ids)."""
        ...

    def __call__(self, conn: Connection) -> None: ...


@runtime_checkable
class BatchHook(Protocol):
    """An ``on_commit`` hook that runs together with the batch's other hooks of its kind.

    The committer groups a batch's hooks by ``batch_kind`` and calls ``run_batch`` once
    per group, on the group's first hook, with the whole group (that hook included) sorted
    as the module docstring says; it then calls no hook of the group one by one. A
    structural protocol: an implementation need not import this module (the campaign
    sender's ``MarkSent`` does not, marketing sits beside delivery).

    Contract: ``run_batch(conn, hooks)`` has the effect of calling each hook in turn, with
    fewer statements, and must not fail on valid data (an exception fails the batch);
    hooks with equal kinds accept each other in ``run_batch`` (so a kind names one class,
    e.g. the class itself); ``__call__`` alone still does one hook's work (other callers).
    ``run_batch`` may be a classmethod.
    """

    @property
    def batch_kind(self) -> Hashable:
        """Hooks with equal kinds run in one ``run_batch`` call."""
        ...

    def run_batch(self, conn: Connection, hooks: Sequence[Self]) -> None:
        """Do the work of every hook of ``hooks`` (all of this kind) in ``conn``."""
        ...

    def __call__(self, conn: Connection) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitJob:
    """The rows of one accepted message."""

    sender: str  # envelope sender, "" for the null reverse-path
    account_ids: tuple[int, ...]  # local mailboxes, one copy each
    remote: tuple[str, ...]  # recipients for the outbound queue
    feedback: tuple[str, ...] = ()  # feedback (VERP) addresses: one feedback_reports row each
    blob: PreparedBlob  # the body, made durable by the batch before its rows
    size: int  # trace header + body octets
    trace_header: bytes
    internal_date: datetime
    smtputf8: bool = False  # what the queued copy needs from the receiving server
    eight_bit: bool = False
    priority: str = "transactional"  # queue class of the remote copies: or "bulk"
    # Runs in the transaction that writes this job's rows, after them: the caller's own
    # record of the message (a campaign's per-recipient send record) commits with it or
    # not at all. It must not fail on valid data: an exception fails the whole batch.
    on_commit: Callable[[Connection], None] | None = None


class GroupCommitter:
    """Batches :class:`CommitJob` writes; one instance per node, shared by every listener.

    Up to ``max_parallel`` batches are in flight (default: what the database takes, one on
    SQLite's single writer, several on PostgreSQL); the messages that arrive meanwhile
    form the next batch. Each batch flushes its bodies, then commits its rows.
    """

    def __init__(
        self,
        db: Database,
        mailstore: MailStore,
        *,
        max_batch: int = 256,
        max_parallel: int | None = None,
        on_queued: Callable[[], None] | None = None,
        on_feedback: Callable[[], None] | None = None,
        on_local_delivered: LocalDelivered | None = None,
    ) -> None:
        self._db = db
        self._mailstore = mailstore
        self._max_batch = max_batch
        self._pending: list[tuple[CommitJob, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_parallel or db.parallel_writes)
        self._task: asyncio.Task[None] | None = None
        self._writers: set[asyncio.Task[None]] = set()
        self._closed = False
        self._on_queued = on_queued  # told after a batch that queued outbound mail
        self._on_feedback = on_feedback  # told after a batch that stored feedback reports
        self._on_local_delivered = on_local_delivered
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
        """Finish the jobs already submitted, then stop the batching task."""
        self._closed = True
        waiting = [future for _job, future in self._pending]
        await asyncio.gather(*waiting, *self._writers, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._slots.acquire()
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                writer = asyncio.create_task(self._write(batch))
                self._writers.add(writer)
                writer.add_done_callback(self._written)

    def _written(self, writer: asyncio.Task[None]) -> None:
        self._writers.discard(writer)
        self._slots.release()

    async def _write(self, batch: list[tuple[CommitJob, asyncio.Future[None]]]) -> None:
        jobs = [job for job, _future in batch]
        try:
            # Bodies first (off the loop), then the rows that point to them.
            outcomes = await self._db.run_write(
                lambda conn: self._write_jobs(conn, jobs),
                prelude=lambda: persist_files([job.blob for job in jobs]),
            )
        except Exception as exc:  # every waiter must get an answer
            log.error("group commit of %d messages failed: %s", len(batch), exc)
            failure = exc if isinstance(exc, StorageError) else StorageError(repr(exc))
            outcomes = [failure] * len(batch)
        self.batches += 1
        delivered: list[int] = []
        queued = feedback = False
        for (job, future), outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                delivered.extend(job.account_ids)
                queued = queued or bool(job.remote)
                feedback = feedback or bool(job.feedback)
            if future.done():
                continue  # the waiting session went away; its rows are committed or not
            if outcome is None:
                future.set_result(None)
            else:
                future.set_exception(outcome)
        if delivered:
            self._mailstore.notify(delivered)
        if queued and self._on_queued is not None:
            self._on_queued()
        if feedback and self._on_feedback is not None:
            self._on_feedback()

    def _write_jobs(self, conn: Connection, jobs: list[CommitJob]) -> list[BaseException | None]:
        # Blob locks first (before any row lock), then the bodies: a body that
        # free_blobs deleted after persist_files found it is written again here.
        blobgc.share_keys(conn, [job.blob.ref.key for job in jobs])
        for job in jobs:
            job.blob.persist_rows(conn)
        lost = set(blobgc.ensure_bodies(conn, [job.blob for job in jobs]))
        kept = [job for job in jobs if job.blob.ref.key not in lost]
        copies = [_mailbox_copy(job) for job in kept]
        done = iter(deliver_many(conn, copies).outcomes)
        outcomes: list[BaseException | None] = [
            StorageError("the body was freed concurrently; try again")
            if job.blob.ref.key in lost
            else next(done)
            for job in jobs
        ]
        stored = [job for job, outcome in zip(jobs, outcomes, strict=True) if outcome is None]
        _enqueue(conn, stored)
        _write_feedback(conn, stored)
        _run_hooks(conn, stored)
        senders = [job.sender for job in stored if job.account_ids and job.sender]
        if senders and self._on_local_delivered is not None:
            self._on_local_delivered(conn, senders)
        return outcomes


def _run_hooks(conn: Connection, jobs: Sequence[CommitJob]) -> None:
    """Each stored job's ``on_commit``: batch groups, then ordered hooks, then the rest.

    The order and grouping of the module docstring (lock order of the counter rows).
    """
    groups: dict[Hashable, list[BatchHook]] = {}
    ordered: list[OrderedHook] = []
    rest: list[Callable[[Connection], None]] = []
    for job in jobs:
        hook = job.on_commit
        if hook is None:
            continue
        if isinstance(hook, BatchHook):
            groups.setdefault(hook.batch_kind, []).append(hook)
        elif isinstance(hook, OrderedHook):
            ordered.append(hook)
        else:
            rest.append(hook)
    # sorted() is stable: unkeyed groups keep their job order (dicts keep insertion order).
    for group in sorted(map(_sorted_group, groups.values()), key=_group_rank):
        group[0].run_batch(conn, group)
    ordered.sort(key=lambda hook: hook.order_key)
    singles: list[Callable[[Connection], None]] = [*ordered, *rest]
    for single in singles:
        single(conn)


def _sorted_group(group: list[BatchHook]) -> list[BatchHook]:
    """The group's hooks with an ``order_key`` sorted by it, then the others in job order."""
    keyed = [hook for hook in group if isinstance(hook, OrderedHook)]
    unkeyed = [hook for hook in group if not isinstance(hook, OrderedHook)]
    keyed.sort(key=lambda hook: hook.order_key)
    return [*keyed, *unkeyed]


def _group_rank(group: list[BatchHook]) -> tuple[Any, ...]:
    """A sorted group's rank: its smallest key (its first hook's), unkeyed groups after."""
    first = group[0]
    return (0, first.order_key) if isinstance(first, OrderedHook) else (1,)


def _enqueue(conn: Connection, jobs: Sequence[CommitJob]) -> None:
    """The outbound queue rows of each stored job with remote recipients."""
    for job in jobs:
        if job.remote:
            queue.enqueue_sync(
                conn,
                sender=job.sender,
                recipients=job.remote,
                blob_key=job.blob.ref.key,
                size=job.size,
                trace_header=job.trace_header,
                priority=job.priority,
                smtputf8=job.smtputf8,
                eight_bit=job.eight_bit,
            )


def _write_feedback(conn: Connection, jobs: Sequence[CommitJob]) -> None:
    """One ``feedback_reports`` row per feedback address of each stored job."""
    rows = [
        {
            "recipient": address,
            "blob_key": job.blob.ref.key,
            # The stored body alone: reports keep no trace header (the processor reads
            # the blob, and the Received: field there says nothing it needs).
            "size": job.blob.ref.size,
            "received_at": job.internal_date,
        }
        for job in jobs
        for address in job.feedback
    ]
    if rows:
        conn.execute(insert(feedback_reports), rows)


def return_path(sender: str) -> bytes:
    """The Return-Path field the final delivery adds (RFC 5321 §4.4): the reverse-path."""
    return f"Return-Path: <{sender}>\r\n".encode()


def _mailbox_copy(job: CommitJob) -> Copy:
    # RFC 5321 §4.4: the SMTP server that makes the final delivery inserts Return-Path at
    # the top of the message. Only mailbox copies get it: a queued copy is not delivered
    # yet, and the server that delivers it adds its own.
    trace = return_path(job.sender) + job.trace_header
    return Copy(
        account_ids=job.account_ids,
        blob_key=job.blob.ref.key,
        size=job.size + len(trace) - len(job.trace_header),
        trace_header=trace,
        internal_date=job.internal_date,
    )
