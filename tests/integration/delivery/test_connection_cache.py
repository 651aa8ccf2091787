"""Sessions kept between delivery rounds, with courriel's own SMTP client against aiosmtpd.

Round after round (a campaign queues its copies a few at a time), the worker reuses the
session its previous round parked instead of opening one per round; a session the
receiver closed while it was parked (aiosmtpd's idle timeout: 421, then EOF) is never
handed out again, so the next message goes over a new session instead of being deferred.
On both engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from courriel.delivery.queue import enqueue, list_queue
from courriel.delivery.worker import DeliveryWorker, WorkerSettings
from courriel.dns.memory import MemoryResolver
from courriel.protocols.smtp.client import SmtpConnector
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database

BODY = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


@dataclass(frozen=True)
class Hop:
    host: str
    addresses: tuple[str, ...]


@dataclass
class Mx:
    """Counts sessions (EHLO) and delivered recipients."""

    sessions: int = 0
    delivered: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 2.0.0 queued"


@pytest.fixture
async def mx_server() -> AsyncIterator[Callable[[float], Any]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(idle_timeout: float) -> tuple[Mx, int]:
        handler = Mx()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="mx.remote.test", timeout=idle_timeout),
            host="127.0.0.2",
            port=0,
        )
        servers.append(server)
        return handler, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _worker(db: Database, blobs: BlobStore, port: int, cache_seconds: float) -> DeliveryWorker:
    async def route(domain: str) -> list[Hop]:
        return [Hop("mx.remote.test", ("127.0.0.2",))]

    async def no_notice(*_args: Any) -> None:
        raise AssertionError("nothing may fail or be deferred here")

    settings = WorkerSettings(
        retry_schedule=(timedelta(minutes=5),),
        expire_after=timedelta(days=5),
        smtp_port=port,
        connection_cache_time=cache_seconds,
    )
    return DeliveryWorker(
        db,
        blobs,
        MemoryResolver({}),
        SmtpConnector("courriel.test", starttls="none"),
        settings=settings,
        on_failure=no_notice,
        on_delay=no_notice,
        router=route,
    )


async def _queue(db: Database, blobs: BlobStore, recipient: str) -> None:
    ref = await blobs.put(BODY)
    async with db.write() as conn:
        await enqueue(conn, sender="a@example.test", recipients=[recipient], blob_key=ref.key,
                      size=ref.size, trace_header=b"")  # fmt: skip


async def test_rounds_reuse_the_parked_session(
    database: Database, blobs: BlobStore, mx_server: Any
) -> None:
    mx, port = await mx_server(300.0)
    worker = _worker(database, blobs, port, cache_seconds=30.0)
    for round_ in range(4):
        await _queue(database, blobs, f"user{round_}@remote.test")
        assert await worker.run_once() == 1
    assert mx.delivered == [f"user{i}@remote.test" for i in range(4)]
    assert mx.sessions == 1  # one session for four rounds
    assert await list_queue(database) == []


async def test_without_the_cache_each_round_opens_its_own_session(
    database: Database, blobs: BlobStore, mx_server: Any
) -> None:
    mx, port = await mx_server(300.0)
    worker = _worker(database, blobs, port, cache_seconds=0.0)
    for round_ in range(3):
        await _queue(database, blobs, f"user{round_}@remote.test")
        assert await worker.run_once() == 1
    assert mx.sessions == 3


async def test_a_session_the_receiver_closed_is_not_reused(
    database: Database, blobs: BlobStore, mx_server: Any
) -> None:
    mx, port = await mx_server(0.2)  # aiosmtpd says 421 and closes after 0.2 s idle
    worker = _worker(database, blobs, port, cache_seconds=30.0)
    await _queue(database, blobs, "first@remote.test")
    await worker.run_once()
    await asyncio.sleep(0.6)  # the parked session times out at the receiver
    await _queue(database, blobs, "second@remote.test")
    await worker.run_once()
    assert mx.delivered == ["first@remote.test", "second@remote.test"]
    assert mx.sessions == 2  # a new session, not a deferral (no_notice would fail)
    assert await list_queue(database) == []


async def test_stopping_the_worker_quits_parked_sessions(
    database: Database, blobs: BlobStore, mx_server: Any
) -> None:
    mx, port = await mx_server(300.0)
    worker = _worker(database, blobs, port, cache_seconds=30.0)
    await _queue(database, blobs, "user@remote.test")
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        if mx.delivered:
            break
        await asyncio.sleep(0.01)
    assert worker._sessions is not None and len(worker._sessions) == 1
    worker.stop()
    await asyncio.wait_for(task, 10)
    assert len(worker._sessions) == 0
