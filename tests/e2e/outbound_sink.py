"""Helpers for the outbound end-to-end tests: a counting MX sink, bulk enqueue, deliverers.

The sink is an aiosmtpd server (a peer we did not write) on 127.0.0.2, found through a
loopback :class:`~courriel.testing.dns.DnsServer`; it counts every (Message-ID, recipient)
pair it receives, so that tests can tell "delivered at least once" from "delivered twice".
Messages are queued straight into the database (``open_services`` + ``blobs.put`` +
``enqueue``) before ``courriel serve`` starts, which is much faster than submission.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import func, select

from courriel.app import open_services
from courriel.delivery.queue import enqueue
from courriel.storage.db import Database
from courriel.storage.models import queue_messages, queue_recipients
from courriel.testing.dns import DnsServer
from courriel.testing.subprocess_node import ServeProcess

SINK_HOST = "127.0.0.2"
DOMAIN = "remote.test"
SENDER = "shop@sender.test"  # not a local domain: a bounce would show up as queue residue

Pair = tuple[str, str]  # (Message-ID token, recipient)

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.MULTILINE | re.IGNORECASE)


@dataclass(slots=True)
class Sink:
    """An aiosmtpd handler that counts every (Message-ID, recipient) pair it receives.

    ``gate`` lets a test hold the 250 reply to DATA: a pair is counted when its data has
    arrived (the sink has the message), and only then does the handler wait for the gate.
    A client killed while waiting never sees the 250, which is exactly the window in
    which at-least-once delivery produces a duplicate.
    """

    expected: int  # distinct pairs the test will send
    received: collections.Counter[Pair] = field(default_factory=collections.Counter)
    helo_of: dict[Pair, str] = field(default_factory=dict)  # EHLO name of the first sender
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set at every arrival
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    hold_after: int = 0  # close the gate once this many distinct pairs arrived (0: never)
    held: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle_RCPT(
        self,
        server: AioSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: AioSMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        match = _MESSAGE_ID.search(content.partition(b"\r\n\r\n")[0])
        if match is None:
            return "554 5.6.0 no Message-ID"
        token = match.group(1).decode()
        for rcpt in envelope.rcpt_tos:
            pair = (token, rcpt)
            self.received[pair] += 1
            self.helo_of.setdefault(pair, str(session.host_name))
        self.arrived.set()
        if len(self.received) >= self.expected:
            self.complete.set()
        if self.hold_after and len(self.received) >= self.hold_after and not self.held.is_set():
            self.gate.clear()
            self.held.set()
            return "250 2.0.0 queued"  # the message that crossed the line is answered
        await self.gate.wait()
        return "250 2.0.0 queued"

    def duplicates(self) -> dict[Pair, int]:
        """The pairs received more than once, with their counts."""
        return {pair: n for pair, n in self.received.items() if n > 1}


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """The sink, and the config overrides that make a node deliver to it."""

    sink: Sink
    overrides: Mapping[str, str]


@asynccontextmanager
async def sink_world(sink: Sink) -> AsyncIterator[World]:
    """Run the sink on 127.0.0.2 and a DNS server giving ``remote.test`` that MX."""
    loop = asyncio.get_running_loop()
    # hostname given: aiosmtpd would otherwise ask the system resolver (socket.getfqdn).
    server = await loop.create_server(
        lambda: AioSMTP(sink, hostname="mx.remote.test"), SINK_HOST, 0
    )
    port = int(server.sockets[0].getsockname()[1])
    zone = {
        (DOMAIN, "MX"): ["10 mx.remote.test."],
        ("mx.remote.test", "A"): [SINK_HOST],
    }
    try:
        async with DnsServer(zone) as dns_port:
            yield World(
                sink=sink,
                overrides={
                    "dns.nameservers": f"127.0.0.1:{dns_port}",
                    "dns.timeout": "2s",
                    "delivery.mx_port": str(port),
                    # Nothing should be deferred; if something is, retry it soon.
                    "delivery.retry_schedule": "1s",
                },
            )
    finally:
        server.close()
        await server.wait_closed()


def recipients_of(n: int) -> list[str]:
    """Every tenth message has two recipients (one transaction, settled per recipient)."""
    first = f"buyer{n}@{DOMAIN}"
    return [first, f"other{n}@{DOMAIN}"] if n % 10 == 0 else [first]


def message(n: int, recipients: Sequence[str]) -> bytes:
    """A small, distinct message (CRLF) whose Message-ID is ``order-<n>@sender.test``."""
    lines = [
        "From: Shop <shop@sender.test>",
        f"To: {', '.join(recipients)}",
        f"Subject: Order {n} shipped",
        "Date: Fri, 27 Nov 2026 10:00:00 +0000",
        f"Message-ID: <order-{n}@sender.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        *(f"Line {i} of the notice for order {n}." for i in range(20)),
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


async def enqueue_messages(
    data_dir: Path, overrides: Mapping[str, str], count: int
) -> dict[int, str]:
    """Store ``count`` bodies and queue them in one transaction.

    Returns:
        queue message id -> Message-ID token.
    """
    async with open_services(data_dir, overrides, environ={}) as services:
        bodies = {n: message(n, recipients_of(n)) for n in range(count)}
        limit = asyncio.Semaphore(16)

        async def put(n: int) -> tuple[int, str]:
            async with limit:
                return n, (await services.blobs.put(bodies[n])).key

        keys = dict(await asyncio.gather(*(put(n) for n in bodies)))
        tokens: dict[int, str] = {}
        trace = b"Received: from shop.sender.test by mail.courriel.test; test\r\n"
        async with services.db.write() as conn:
            for n, body in bodies.items():
                queue_id = await enqueue(
                    conn,
                    sender=SENDER,
                    recipients=recipients_of(n),
                    blob_key=keys[n],
                    size=len(trace) + len(body),
                    trace_header=trace,
                )
                tokens[queue_id] = f"order-{n}@sender.test"
    return tokens


def all_pairs(count: int) -> set[Pair]:
    """Every (Message-ID token, recipient) pair :func:`enqueue_messages` queued."""
    return {(f"order-{n}@sender.test", r) for n in range(count) for r in recipients_of(n)}


async def claimed_unsettled(db_url: str, tokens: Mapping[int, str]) -> set[Pair]:
    """Pairs some worker claimed and has not settled (still queued, lease stamped)."""
    db = await Database.open(db_url)
    try:
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(queue_recipients.c.message_id, queue_recipients.c.recipient).where(
                        queue_recipients.c.status == "queued",
                        queue_recipients.c.claimed_by.is_not(None),
                    )
                )
            ).all()
    finally:
        await db.close()
    return {(tokens[r.message_id], r.recipient) for r in rows}


async def wait_queue_empty(db_url: str, seconds: float) -> None:
    """Poll until no message is left in the queue (another process is settling)."""
    db = await Database.open(db_url)
    try:
        async with asyncio.timeout(seconds):
            while True:
                async with db.read() as conn:
                    left = await conn.scalar(select(func.count()).select_from(queue_messages))
                if not left:
                    return
                await asyncio.sleep(0.1)
    finally:
        await db.close()


def RolesProcess(
    data_dir: Path,
    database_url: str = "",
    extra: Mapping[str, str] | None = None,
    roles: str = "delivery",
) -> ServeProcess:
    """``courriel serve --roles R`` as a :class:`ServeProcess`."""
    return ServeProcess(data_dir, database_url, extra=dict(extra or {}), roles=roles)
