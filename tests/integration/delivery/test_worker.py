"""The delivery worker against aiosmtpd receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from courriel.delivery.claims import Claim, claim
from courriel.delivery.queue import enqueue, list_queue
from courriel.delivery.worker import DeliveryWorker, FailedRecipient, WorkerSettings
from courriel.dns.memory import MemoryResolver
from courriel.errors import DnsError
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import queue_attempts

# The receiver and connector classes come from this folder's conftest, through fixtures.
Receiver = Any

TRACE = b"Received: by courriel.test\r\n"
BODY = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


@dataclass(frozen=True)
class Hop:
    host: str
    addresses: tuple[str, ...]


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Notices:
    failures: list[tuple[list[str], list[FailedRecipient]]] = field(default_factory=list)
    delays: list[tuple[list[str], list[FailedRecipient]]] = field(default_factory=list)

    async def failure(self, claims: Sequence[Claim], rcpts: Sequence[FailedRecipient]) -> None:
        self.failures.append(([c.recipient for c in claims], list(rcpts)))

    async def delay(self, claims: Sequence[Claim], rcpts: Sequence[FailedRecipient]) -> None:
        self.delays.append(([c.recipient for c in claims], list(rcpts)))


def _router(table: dict[str, list[Hop] | DnsError]) -> Callable[[str], Any]:
    async def route(domain: str) -> Sequence[Hop]:
        entry = table[domain]
        if isinstance(entry, DnsError):
            raise entry
        return entry

    return route


CONNECTORS: list[Any] = []


@pytest.fixture(autouse=True)
def _connectors(make_connector: Any) -> None:
    CONNECTORS[:] = [make_connector]


SETTINGS = WorkerSettings(retry_schedule=(timedelta(minutes=5),), expire_after=timedelta(days=5))


def _worker(
    db: Database,
    blobs: BlobStore,
    receivers: Sequence[Receiver],
    table: dict[str, list[Hop] | DnsError] | None,
    *,
    resolver: MemoryResolver | None = None,
    notices: Notices | None = None,
    clock: Callable[[], datetime] | None = None,
    settings: WorkerSettings = SETTINGS,
    worker_id: str = "w1",
    router: Callable[[str], Any] | None = None,
) -> tuple[DeliveryWorker, Any]:
    connector = CONNECTORS[0](list(receivers))
    notices = notices or Notices()
    worker = DeliveryWorker(
        db,
        blobs,
        resolver or MemoryResolver({}),
        connector,
        settings=settings,
        on_failure=notices.failure,
        on_delay=notices.delay,
        clock=clock or Clock(),
        worker_id=worker_id,
        router=router or (None if table is None else _router(table)),
    )
    return worker, connector


async def _queue(
    db: Database, blobs: BlobStore, recipients: list[str], sender: str = "a@example.test"
) -> int:
    ref = await blobs.put(BODY)
    async with db.write() as conn:
        return await enqueue(
            conn,
            sender=sender,
            recipients=recipients,
            blob_key=ref.key,
            size=len(TRACE) + ref.size,
            trace_header=TRACE,
        )


async def _run_until_delivered(
    worker: DeliveryWorker, database: Database, blobs: BlobStore, mx1: Receiver
) -> None:
    """run() the worker, queue one message for x@remote.test, wake it, stop once it got there."""
    task = asyncio.create_task(worker.run())
    await _queue(database, blobs, ["x@remote.test"])
    worker.wake()
    await asyncio.wait_for(mx1.arrived.wait(), 30)
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert mx1.delivered_to() == ["x@remote.test"]


async def _outcomes(db: Database) -> list[tuple[str, int, str]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(queue_attempts).order_by(queue_attempts.c.id))).all()
    return [(r.mx_host, r.code, r.outcome) for r in rows]


MX1 = Hop("mx1.remote.test", ("127.0.0.2",))
MX2 = Hop("mx2.remote.test", ("127.0.0.3",))


async def test_delivers_to_the_primary_mx_with_the_trace_header(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    mx2: Receiver = await receivers("127.0.0.3")
    await _queue(database, blobs, ["x@remote.test", "y@remote.test"])
    worker, _ = _worker(database, blobs, [mx1, mx2], {"remote.test": [MX1, MX2]})
    assert await worker.run_once() == 2
    assert [(m.sender, m.recipients) for m in mx1.messages] == [
        ("a@example.test", ["x@remote.test", "y@remote.test"])
    ]
    assert mx1.messages[0].data.replace(b"\r\n", b"\n") == (TRACE + BODY).replace(b"\r\n", b"\n")
    assert mx2.messages == []
    assert await list_queue(database) == []
    assert await worker.run_once() == 0


async def test_primary_down_goes_to_the_secondary(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx2: Receiver = await receivers("127.0.0.3")
    # A second, deferred recipient keeps the message (and its attempt log) in the queue.
    mx2.rcpt_script["later@remote.test"] = ["452 4.2.2 mailbox full"]
    await _queue(database, blobs, ["x@remote.test", "later@remote.test"])
    worker, connector = _worker(database, blobs, [mx2], {"remote.test": [MX1, MX2]})
    await worker.run_once()
    assert connector.attempts == [
        ("mx1.remote.test", "127.0.0.2"),
        ("mx2.remote.test", "127.0.0.3"),
    ]
    assert mx2.delivered_to() == ["x@remote.test"]
    assert await _outcomes(database) == [
        ("mx2.remote.test", 250, "delivered"),
        ("mx2.remote.test", 452, "deferred"),
    ]


async def test_tempfail_then_success_on_the_retry(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    mx1.rcpt_script["x@remote.test"] = ["451 4.7.1 greylisted, come back later"]
    await _queue(database, blobs, ["x@remote.test"])
    clock = Clock()
    worker, _ = _worker(database, blobs, [mx1], {"remote.test": [MX1]}, clock=clock)
    await worker.run_once()
    (entry,) = await list_queue(database)
    assert entry.recipients[0].status == "queued"
    assert entry.recipients[0].last_reply == "451 4.7.1 greylisted, come back later"
    assert await worker.run_once() == 0  # not due before the schedule says so
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1
    assert mx1.delivered_to() == ["x@remote.test"]
    assert await _outcomes(database) == []  # the message was finished and deleted
    assert await list_queue(database) == []


async def test_permanent_refusal_bounces_once_with_the_reply(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    mx1.rcpt_script["bad@remote.test"] = ["550 5.1.1 no such user"]
    mx1.rcpt_script["bad2@remote.test"] = ["550 5.1.1 no such user either"]
    await _queue(database, blobs, ["bad@remote.test", "ok@remote.test", "bad2@remote.test"])
    notices = Notices()
    worker, _ = _worker(database, blobs, [mx1], {"remote.test": [MX1]}, notices=notices)
    await worker.run_once()
    assert mx1.delivered_to() == ["ok@remote.test"]
    ((claimed, failed),) = notices.failures
    assert claimed == ["bad@remote.test", "ok@remote.test", "bad2@remote.test"]
    assert [(r, reply.code, reply.enhanced, host) for r, reply, host in failed] == [
        ("bad@remote.test", 550, "5.1.1", "mx1.remote.test"),
        ("bad2@remote.test", 550, "5.1.1", "mx1.remote.test"),
    ]
    assert await list_queue(database) == []


async def test_null_sender_is_never_bounced(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    mx1.rcpt_script["bad@remote.test"] = ["550 5.1.1 no such user"]
    await _queue(database, blobs, ["bad@remote.test"], sender="")
    notices = Notices()
    worker, _ = _worker(database, blobs, [mx1], {"remote.test": [MX1]}, notices=notices)
    await worker.run_once()
    assert notices.failures == []
    assert await list_queue(database) == []


async def test_null_mx_and_nxdomain_fail_at_once_dns_tempfail_defers(
    database: Database, blobs: BlobStore
) -> None:
    await _queue(database, blobs, ["x@nullmx.test", "y@gone.test", "z@flaky.test"])
    notices = Notices()
    table: dict[str, list[Hop] | DnsError] = {
        "nullmx.test": DnsError("nullmx.test accepts no mail (null MX)", temporary=False),
        "gone.test": DnsError("gone.test does not exist (NXDOMAIN)", temporary=False),
        "flaky.test": DnsError("SERVFAIL", temporary=True),
    }
    worker, connector = _worker(database, blobs, [], table, notices=notices)
    await worker.run_once()
    assert connector.attempts == []
    failed = sorted((r, reply.code, host) for _, rs in notices.failures for r, reply, host in rs)
    assert failed == [("x@nullmx.test", 550, ""), ("y@gone.test", 550, "")]
    (entry,) = await list_queue(database)
    by = {r.recipient: r.status for r in entry.recipients}
    assert by == {"x@nullmx.test": "failed", "y@gone.test": "failed", "z@flaky.test": "queued"}


async def test_tempfail_outliving_expiry_fails_and_delay_is_warned_once(
    database: Database, blobs: BlobStore
) -> None:
    await _queue(database, blobs, ["x@down.test"])
    clock = Clock()
    notices = Notices()
    settings = WorkerSettings(
        retry_schedule=(timedelta(hours=1),),
        expire_after=timedelta(hours=3),
        delay_warning_after=timedelta(minutes=90),
    )
    worker, _ = _worker(
        database, blobs, [], {"down.test": [MX1]}, notices=notices, clock=clock, settings=settings
    )
    for _hour in range(3):
        await worker.run_once()
        clock.now += timedelta(hours=1, minutes=1)
    # Attempts at +0h (deferred), +1h (deferred), +2h (deferred, warned), +3h (expired).
    assert len(notices.delays) == 1 and notices.failures == []
    await worker.run_once()
    ((_, failed),) = notices.failures
    assert [(r, reply.code) for r, reply, _ in failed] == [("x@down.test", 0)]
    assert await list_queue(database) == []


async def test_hundred_recipients_go_in_one_transaction(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    rcpts = [f"user{i}@remote.test" for i in range(100)]
    await _queue(database, blobs, rcpts)
    worker, _ = _worker(database, blobs, [mx1], {"remote.test": [MX1]})
    await worker.run_once()
    assert len(mx1.messages) == 1 and mx1.messages[0].recipients == rcpts
    assert mx1.sessions == 1


async def test_connections_are_reused_and_limited_per_domain(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    for i in range(12):
        await _queue(database, blobs, [f"user{i}@remote.test"])
    settings = WorkerSettings(
        retry_schedule=(timedelta(minutes=5),),
        expire_after=timedelta(days=5),
        max_connections_per_domain=2,
        max_messages_per_connection=3,
    )
    worker, connector = _worker(database, blobs, [mx1], {"remote.test": [MX1]}, settings=settings)
    await worker.run_once()
    assert len(mx1.messages) == 12
    # 12 messages, at most 3 per connection, over 2 lanes: ceil(a/3) + ceil(b/3) sessions
    # with a + b = 12 (how the lanes share the work is up to the scheduler): 4 or 5.
    assert 4 <= mx1.sessions <= 5
    assert connector.most_open <= 2
    assert connector.open_now == 0


async def test_a_crashed_workers_claim_is_taken_back(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    await _queue(database, blobs, ["x@remote.test"])
    clock = Clock()
    # "crashed" claims and never settles (it died).
    lost = await claim(database, worker="crashed", now=clock(), limit=10, lease=SETTINGS.lease)
    assert len(lost) == 1
    worker, _ = _worker(database, blobs, [mx1], {"remote.test": [MX1]}, clock=clock)
    assert await worker.run_once() == 0
    clock.now += SETTINGS.lease + timedelta(seconds=1)
    assert await worker.run_once() == 1
    assert mx1.delivered_to() == ["x@remote.test"]
    assert await list_queue(database) == []


ZONE = {
    ("remote.test", "MX"): ["10 mx1.remote.test.", "20 mx2.remote.test."],
    ("mx1.remote.test", "A"): ["127.0.0.2"],
    ("mx2.remote.test", "A"): ["127.0.0.3"],
    ("nomx.test", "A"): ["127.0.0.4"],
    ("nullmx.test", "MX"): ["0 ."],
}


async def test_mx_routing_through_dns(database: Database, blobs: BlobStore, receivers: Any) -> None:
    mx2: Receiver = await receivers("127.0.0.3")
    direct: Receiver = await receivers("127.0.0.4")
    await _queue(database, blobs, ["x@remote.test", "y@nomx.test", "z@nullmx.test"])
    notices = Notices()
    worker, connector = _worker(
        database, blobs, [mx2, direct], None, resolver=MemoryResolver(ZONE), notices=notices
    )
    await worker.run_once()
    # Primary (127.0.0.2) is down: the secondary takes it; no MX: the A record (RFC 5321 §5.1).
    remote = [a for a in connector.attempts if a[0].endswith("remote.test")]
    assert remote == [("mx1.remote.test", "127.0.0.2"), ("mx2.remote.test", "127.0.0.3")]
    assert mx2.delivered_to() == ["x@remote.test"]
    assert direct.delivered_to() == ["y@nomx.test"]
    # RFC 7505: the null MX fails at once, with no connection.
    ((_, failed),) = notices.failures
    assert [(r, reply.code) for r, reply, _ in failed] == [("z@nullmx.test", 550)]
    assert await list_queue(database) == []


async def test_run_delivers_on_wake_and_stops(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    mx1: Receiver = await receivers("127.0.0.2")
    # A poll interval far longer than the test: only wake() can make it send.
    settings = replace(SETTINGS, poll_interval=3600)
    worker, _ = _worker(
        database,
        blobs,
        [mx1],
        {"remote.test": [MX1]},
        settings=settings,
        clock=lambda: datetime.now(UTC),
    )
    await _run_until_delivered(worker, database, blobs, mx1)


async def test_two_workers_never_deliver_a_recipient_twice(
    database: Database, blobs: BlobStore, receivers: Any
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer; its claims are covered in test_claims.py")
    mx1: Receiver = await receivers("127.0.0.2")
    rcpts = [f"user{i}@remote.test" for i in range(5000)]
    for start in range(0, len(rcpts), 100):
        await _queue(database, blobs, rcpts[start : start + 100])
    # Small rounds so that the two workers' claims interleave (SKIP LOCKED on PostgreSQL).
    settings = WorkerSettings(
        retry_schedule=(timedelta(minutes=5),),
        expire_after=timedelta(days=5),
        batch_size=250,
    )
    workers = [
        _worker(database, blobs, [mx1], {"remote.test": [MX1]}, settings=settings, worker_id=w)[0]
        for w in ("w1", "w2")
    ]

    async def drain(worker: DeliveryWorker) -> int:
        claimed = 0
        while n := await worker.run_once():
            claimed += n
        return claimed

    counts = await asyncio.gather(*(drain(w) for w in workers))
    assert sum(counts) == 5000
    delivered = mx1.delivered_to()
    assert len(delivered) == len(set(delivered)) == 5000
    assert await list_queue(database) == []


async def test_an_unexpected_error_in_a_round_is_logged_and_delivery_goes_on(
    database: Database, blobs: BlobStore, receivers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, only CourrielError was caught: any other exception ended run() for good and
    # the node kept running without delivery, with nothing in the log.
    mx1: Receiver = await receivers("127.0.0.2")
    settings = replace(SETTINGS, poll_interval=0.05, lease=timedelta(milliseconds=200))
    routes = iter([SystemError("bad argument to internal function")])

    async def route(_domain: str) -> Sequence[Hop]:
        failure = next(routes, None)
        if failure is not None:
            raise failure
        return [MX1]

    worker, _ = _worker(
        database,
        blobs,
        [mx1],
        None,
        settings=settings,
        clock=lambda: datetime.now(UTC),
        router=route,
    )
    await _run_until_delivered(worker, database, blobs, mx1)
    failed = [r for r in caplog.records if r.message == "delivery round failed unexpectedly"]
    assert failed and failed[0].exc_info is not None
