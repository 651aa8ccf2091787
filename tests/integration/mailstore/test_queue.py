"""The outbound queue: enqueue inside a transaction, list, and rollback."""

from __future__ import annotations

import pytest

from courriel.delivery.queue import enqueue, list_queue
from courriel.errors import InvalidInput
from courriel.storage.db import Database

TRACE = b"Received: by mx.example.test\r\n"


async def test_enqueue_and_list(database: Database) -> None:
    async with database.write() as conn:
        first = await enqueue(
            conn,
            sender="a@example.test",
            recipients=["x@remote.test", "y@remote.test", "x@remote.test"],
            blob_key="ab" * 32,
            size=len(TRACE) + 10,
            trace_header=TRACE,
        )
        second = await enqueue(
            conn,
            sender="",
            recipients=["z@remote.test"],
            blob_key="cd" * 32,
            size=5,
            trace_header=TRACE,
            priority="bulk",
        )
    entries = await list_queue(database)
    assert [e.id for e in entries] == [first, second]
    one = entries[0]
    assert (one.sender, one.blob_key, one.size, one.priority) == (
        "a@example.test",
        "ab" * 32,
        len(TRACE) + 10,
        "transactional",
    )
    assert [r.recipient for r in one.recipients] == ["x@remote.test", "y@remote.test"]
    assert {(r.status, r.attempts, r.last_reply) for r in one.recipients} == {("queued", 0, "")}
    assert one.recipients[0].next_attempt_at.tzinfo is not None
    assert entries[1].sender == "" and entries[1].priority == "bulk"


async def test_enqueue_rolls_back_with_the_transaction(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.write() as conn:
            await enqueue(
                conn,
                sender="a@example.test",
                recipients=["x@remote.test"],
                blob_key="ab" * 32,
                size=1,
                trace_header=TRACE,
            )
            raise RuntimeError("crash before commit")
    assert await list_queue(database) == []


async def test_enqueue_rejects_bad_input(database: Database) -> None:
    async with database.write() as conn:
        with pytest.raises(InvalidInput):
            await enqueue(
                conn,
                sender="a@example.test",
                recipients=[],
                blob_key="ab" * 32,
                size=1,
                trace_header=TRACE,
            )
        with pytest.raises(InvalidInput):
            await enqueue(
                conn,
                sender="a@example.test",
                recipients=["x@remote.test"],
                blob_key="ab" * 32,
                size=1,
                trace_header=TRACE,
                priority="urgent",
            )
