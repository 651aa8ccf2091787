"""Claiming due recipients, leases taken back, settling once, deleting finished messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from courriel.delivery.claims import AttemptRecord, Claim, Settlement, claim, settle
from courriel.delivery.queue import enqueue, list_queue
from courriel.errors import BlobMissing
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import queue_attempts, queue_recipients

TRACE = b"Received: by mx.example.test\r\n"
LEASE = timedelta(minutes=5)


async def _queue(
    db: Database, blobs: BlobStore, recipients: list[str], *, priority: str = "transactional"
) -> int:
    ref = await blobs.put(b"Subject: hi\r\n\r\nbody\r\n")
    async with db.write() as conn:
        return await enqueue(
            conn,
            sender="a@example.test",
            recipients=recipients,
            blob_key=ref.key,
            size=len(TRACE) + ref.size,
            trace_header=TRACE,
            priority=priority,
            smtputf8=True,
        )


def _later(minutes: float = 1) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _attempt(code: int = 250, reply: str = "2.0.0 ok") -> AttemptRecord:
    return AttemptRecord(
        attempted_at=datetime.now(UTC),
        mx_host="mx.remote.test",
        tls=True,
        tls_verified=False,
        code=code,
        reply=reply,
    )


def _settled(c: Claim, outcome: str, **kw: object) -> Settlement:
    return Settlement(claim=c, outcome=outcome, attempt=_attempt(), **kw)  # type: ignore[arg-type]


async def test_claim_carries_the_message_and_orders_by_priority(
    database: Database, blobs: BlobStore
) -> None:
    bulk = await _queue(database, blobs, ["b@remote.test"], priority="bulk")
    tx = await _queue(database, blobs, ["t1@remote.test", "t2@remote.test"])
    claims = await claim(database, worker="w1", now=_later(), limit=10, lease=LEASE)
    assert [(c.message_id, c.recipient) for c in claims] == [
        (tx, "t1@remote.test"),
        (tx, "t2@remote.test"),
        (bulk, "b@remote.test"),
    ]
    first = claims[0]
    assert (first.sender, first.trace_header, first.smtputf8, first.eight_bit) == (
        "a@example.test",
        TRACE,
        True,
        False,
    )
    assert first.attempts == 0 and first.created_at.tzinfo is not None
    # Claimed recipients are not due for anyone else while the lease lives.
    assert await claim(database, worker="w2", now=_later(), limit=10, lease=LEASE) == []


async def test_limit_and_not_yet_due(database: Database, blobs: BlobStore) -> None:
    await _queue(database, blobs, [f"r{i}@remote.test" for i in range(5)])
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert await claim(database, worker="w1", now=past, limit=10, lease=LEASE) == []
    got = await claim(database, worker="w1", now=_later(), limit=3, lease=LEASE)
    assert len(got) == 3
    rest = await claim(database, worker="w2", now=_later(), limit=10, lease=LEASE)
    assert {c.recipient_id for c in rest}.isdisjoint(c.recipient_id for c in got)
    assert len(rest) == 2


async def test_expired_lease_is_taken_back_and_the_old_owner_cannot_settle(
    database: Database, blobs: BlobStore
) -> None:
    await _queue(database, blobs, ["x@remote.test"])
    (mine,) = await claim(database, worker="crashed", now=_later(), limit=1, lease=LEASE)
    assert await claim(database, worker="w2", now=_later(4), limit=1, lease=LEASE) == []
    (theirs,) = await claim(database, worker="w2", now=_later(6), limit=1, lease=LEASE)
    assert theirs.recipient_id == mine.recipient_id
    assert (
        await settle(database, blobs, worker="crashed", settlements=[_settled(mine, "delivered")])
        == []
    )
    assert await settle(
        database, blobs, worker="w2", settlements=[_settled(theirs, "delivered")]
    ) == [theirs.recipient_id]
    # Settled once: a second settle by the same owner is refused too.
    assert (
        await settle(database, blobs, worker="w2", settlements=[_settled(theirs, "delivered")])
        == []
    )


async def test_deferred_is_retried_later_and_attempts_are_recorded(
    database: Database, blobs: BlobStore
) -> None:
    await _queue(database, blobs, ["x@remote.test", "y@remote.test"])
    claims = await claim(database, worker="w", now=_later(), limit=10, lease=LEASE)
    retry_at = _later(30)
    await settle(
        database,
        blobs,
        worker="w",
        settlements=[
            _settled(claims[0], "deferred", next_attempt_at=retry_at, delay_warned=True),
            _settled(claims[1], "delivered"),
        ],
    )
    (entry,) = await list_queue(database)
    by_rcpt = {r.recipient: r for r in entry.recipients}
    assert by_rcpt["x@remote.test"].status == "queued"
    assert by_rcpt["x@remote.test"].attempts == 1
    assert by_rcpt["x@remote.test"].next_attempt_at == retry_at
    assert by_rcpt["x@remote.test"].last_reply == "250 2.0.0 ok"
    assert by_rcpt["y@remote.test"].status == "delivered"
    assert await claim(database, worker="w", now=_later(29), limit=10, lease=LEASE) == []
    (again,) = await claim(database, worker="w", now=_later(31), limit=10, lease=LEASE)
    assert again.attempts == 1 and again.delay_warned
    async with database.read() as conn:
        rows = (await conn.execute(select(queue_attempts).order_by(queue_attempts.c.id))).all()
    assert [(r.mx_host, r.tls, r.code, r.outcome) for r in rows] == [
        ("mx.remote.test", True, 250, "deferred"),
        ("mx.remote.test", True, 250, "delivered"),
    ]


async def test_finished_message_is_deleted_with_its_blob(
    database: Database, blobs: BlobStore
) -> None:
    await _queue(database, blobs, ["x@remote.test", "y@remote.test"])
    x, y = await claim(database, worker="w", now=_later(), limit=10, lease=LEASE)
    await settle(database, blobs, worker="w", settlements=[_settled(x, "delivered")])
    assert len(await list_queue(database)) == 1
    assert await blobs.get(x.blob_key)
    # A failure whose DSN is not produced yet keeps the message (and the body for the DSN).
    await settle(database, blobs, worker="w", settlements=[_settled(y, "failed")])
    assert len(await list_queue(database)) == 1
    async with database.write() as conn:
        await conn.execute(
            queue_recipients.update()
            .where(queue_recipients.c.id == y.recipient_id)
            .values(status="queued", claimed_by=None)
        )
    (y2,) = await claim(database, worker="w", now=_later(), limit=10, lease=LEASE)
    await settle(database, blobs, worker="w", settlements=[_settled(y2, "failed", dsn_sent=True)])
    assert await list_queue(database) == []
    with pytest.raises(BlobMissing):
        await blobs.get(x.blob_key)


async def test_concurrent_claimers_never_share_a_recipient(
    database: Database, blobs: BlobStore
) -> None:
    await _queue(database, blobs, [f"r{i}@remote.test" for i in range(300)])

    async def drain(worker: str) -> list[int]:
        got: list[int] = []
        while batch := await claim(database, worker=worker, now=_later(), limit=7, lease=LEASE):
            got.extend(c.recipient_id for c in batch)
        return got

    results = await asyncio.gather(*(drain(f"w{i}") for i in range(4)))
    every = [rid for r in results for rid in r]
    assert len(every) == len(set(every)) == 300
