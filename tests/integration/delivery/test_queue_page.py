"""The queue's one state rule (Python and SQL agree) and its filtered, keyset-paged read.

Issue 7 review: the dashboard's queue page read the whole queue and filtered it in
Python, and the queued/deferred/failed rule was written twice. SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from tests.integration.web.dashboard.statements import Statements

from courriel.delivery.health import queue_health
from courriel.delivery.queue import (
    RECIPIENT_STATES,
    enqueue,
    list_queue,
    queue_page,
    recipient_state,
    state_column,
    state_condition,
)
from courriel.errors import InvalidInput
from courriel.storage.db import Database
from courriel.storage.models import queue_recipients

TRACE = b"Received: by mx.example.test\r\n"
# (recipient, stored status, attempts) -> the state people read
SEEDS = [
    ("new@gmail.test", "queued", 0, "queued"),
    ("again@Remote.test", "queued", 2, "deferred"),
    ("gone@remote.test", "failed", 1, "failed"),
    ("done@gmail.test", "delivered", 1, "delivered"),
    ("odd@a_b.test", "queued", 0, "queued"),
]


async def _seed(database: Database, messages: list[list[int]]) -> list[int]:
    """One message per item, its recipients the SEEDS at those indexes, set as SEEDS says."""
    ids = []
    async with database.write() as conn:
        for indexes in messages:
            message_id = await enqueue(
                conn,
                sender="shop@shop.test",
                recipients=[SEEDS[i][0] for i in indexes],
                blob_key="ab" * 32,
                size=10,
                trace_header=TRACE,
            )
            ids.append(message_id)
            for i in indexes:
                rcpt, status, attempts, _ = SEEDS[i]
                await conn.execute(
                    update(queue_recipients)
                    .where(
                        queue_recipients.c.message_id == message_id,
                        queue_recipients.c.recipient == rcpt,
                    )
                    .values(status=status, attempts=attempts)
                )
    return ids


async def test_python_and_sql_read_the_same_state(database: Database) -> None:
    await _seed(database, [[0, 1, 2, 3, 4]])
    async with database.read() as conn:
        rows = (
            await conn.execute(
                select(
                    queue_recipients.c.recipient,
                    queue_recipients.c.status,
                    queue_recipients.c.attempts,
                    state_column(),
                )
            )
        ).all()
        selected = {
            state: set(
                (
                    await conn.execute(
                        select(queue_recipients.c.recipient).where(state_condition(state))
                    )
                ).scalars()
            )
            for state in RECIPIENT_STATES
        }
    expected = {rcpt: state for rcpt, _, _, state in SEEDS}
    assert {r[0]: recipient_state(r[1], r[2]) for r in rows} == expected
    assert {r[0]: r[3] for r in rows} == expected
    assert {rcpt: s for s, found in selected.items() for rcpt in found} == expected
    [entry] = await list_queue(database)
    assert {r.recipient: r.state for r in entry.recipients} == expected
    async with database.read() as conn:
        health = await queue_health(conn)
    assert (health.queued, health.deferred, health.failed) == (2, 1, 1)


def test_an_unknown_status_has_no_state() -> None:
    with pytest.raises(ValueError, match="unknown queue recipient status"):
        recipient_state("bounced", 1)


async def test_the_filters_run_in_sql_and_keep_whole_messages(database: Database) -> None:
    ids = await _seed(database, [[0], [1, 3], [2], [3], [4]])

    async def shown(**kwargs: str) -> list[int]:
        return [e.id for e in (await queue_page(database, **kwargs)).entries]

    assert await shown() == ids
    assert await shown(state="deferred") == [ids[1]]
    assert await shown(state="delivered") == [ids[1], ids[3]]
    assert await shown(state="failed") == [ids[2]]
    assert await shown(domain="REMOTE.test") == [ids[1], ids[2]]
    assert await shown(domain="gmail.test", state="queued") == [ids[0]]
    assert await shown(domain="remote.test", state="delivered") == []  # one recipient, both
    assert await shown(domain="a_b.test") == [ids[4]]
    assert await shown(domain="a%b.test") == []  # LIKE wildcards are plain characters
    assert await shown(domain="_b.test") == []  # the whole domain, not a suffix of it
    page = await queue_page(database, state="deferred")
    [entry] = page.entries
    assert [r.recipient for r in entry.recipients] == ["again@Remote.test", "done@gmail.test"]
    assert [r.state for r in entry.recipients] == ["deferred", "delivered"]


async def test_pages_follow_each_other_in_two_statements(database: Database) -> None:
    ids = await _seed(database, [[0]] * 7)
    seen: list[int] = []
    after = 0
    pages = 0
    while True:
        with Statements(database) as statements:
            page = await queue_page(database, after_id=after, limit=3)
        assert len(statements.selects()) == 2, statements.sql
        assert statements.touching("trace_header") == []
        seen += [e.id for e in page.entries]
        pages += 1
        if page.following is None:
            break
        after = page.following
    assert seen == ids and pages == 3
    assert (await queue_page(database, after_id=ids[-1])).entries == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"state": "bounced"}, "state"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit")],
)
async def test_bad_arguments_are_refused(
    database: Database, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await queue_page(database, **kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field
