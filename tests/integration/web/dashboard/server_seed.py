"""Seeding the outbound queue for the dashboard's queue tests, through the delivery API.

A deferred recipient is made as the worker makes one: ``enqueue``, then ``claim`` and
``settle`` it with a deferred outcome (one attempt recorded, the next an hour later).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from courriel.delivery.claims import AttemptRecord, Settlement, claim, settle
from courriel.delivery.queue import enqueue
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database

BODY = b"From: shop@shop.test\r\nSubject: your order\r\n\r\nThanks!\r\n"


async def seed_deferred(
    db: Database, blobs: BlobStore, *, recipient: str = "bob@remote.test"
) -> tuple[int, datetime]:
    """Queue one message to ``recipient`` and defer it once; its id and next attempt time."""
    ref = await blobs.put(BODY)
    async with db.write() as conn:
        message_id = await enqueue(
            conn,
            sender="shop@shop.test",
            recipients=[recipient],
            blob_key=ref.key,
            size=len(BODY),
            trace_header=b"Received: test\r\n",
        )
    now = datetime.now(UTC)
    (claimed,) = await claim(db, worker="test", now=now, limit=1, lease=timedelta(minutes=5))
    later = now + timedelta(hours=1)
    attempt = AttemptRecord(
        attempted_at=now,
        mx_host="mx1.remote.test",
        tls=True,
        tls_verified=True,
        code=451,
        reply="451 4.3.0 mailbox busy, try later",
    )
    settled = await settle(
        db,
        blobs,
        worker="test",
        settlements=[
            Settlement(claim=claimed, outcome="deferred", attempt=attempt, next_attempt_at=later)
        ],
    )
    assert settled == [claimed.recipient_id]
    return message_id, later
