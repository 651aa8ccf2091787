"""The load of ``bench/delivery.py``: the messages, courriel's queue, Postfix's injection, DKIM.

Every message is built by :func:`build_message`: about ``size`` octets, CRLF line ends, one
recipient ``rcpt<N>@d<N mod domains>.test``, and a unique ``Message-ID`` (the sink counts
(Message-ID, recipient) pairs, so a lost or a duplicated message shows). courriel gets them
through its own queue before it starts (:func:`enqueue_all`: blob store, then
``delivery.queue.enqueue_sync``, a batch per transaction); Postfix gets the very same bytes
over SMTP while its queue is held (:func:`inject_smtp`). DKIM is timed in-process on one
such message (:func:`time_dkim`).

Invariants:
    * The load never talks to anything but 127.0.0.1.
    * Enqueueing makes every body durable (``persist_files``) before the rows that point to
      it are committed, as the receiving path does.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from courriel.app import open_services
from courriel.delivery.dkimkeys import ensure_keys, load_signer
from courriel.delivery.queue import enqueue_sync
from courriel.errors import ProtocolError, StorageError
from courriel.mail.dkim import BodyHasher, split_message
from courriel.storage.blobs import PreparedBlob, persist_files

__all__ = ["SENDER", "DkimRate", "build_message", "domain_names", "enqueue_all", "inject_smtp"]

SENDER = "bench@sender.test"
_LINE = b"x" * 76 + b"\r\n"  # RFC 5322 §2.1.1: at most 78 characters plus CRLF
_BATCH = 1000  # messages per enqueue transaction


def domain_names(domains: int) -> list[str]:
    """The destination domains: d0.test, d1.test, ..."""
    return [f"d{n}.test" for n in range(domains)]


def recipient(seq: int, domains: int) -> str:
    """The one recipient of message ``seq``."""
    return f"rcpt{seq}@d{seq % domains}.test"


def build_message(seq: int, domains: int, size: int) -> bytes:
    """Message ``seq``: headers, then lines of ``x`` (never a leading dot) up to ``size``."""
    head = (
        f"From: Bench <{SENDER}>\r\n"
        f"To: <{recipient(seq, domains)}>\r\n"
        f"Subject: courriel delivery benchmark {seq}\r\n"
        "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
        f"Message-ID: <{seq}.bench@sender.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    lines = max(1, math.ceil((size - len(head)) / len(_LINE)))
    return head + _LINE * lines


async def enqueue_all(
    data_dir: Path, overrides: Mapping[str, str], *, messages: int, domains: int, size: int
) -> None:
    """Queue every message in courriel's data folder (created and migrated as needed)."""
    async with open_services(data_dir, overrides) as services:
        for first in range(0, messages, _BATCH):
            seqs = range(first, min(first + _BATCH, messages))
            prepared: list[PreparedBlob] = []
            for seq in seqs:
                writer = services.blobs.writer()
                await writer.write(build_message(seq, domains, size))
                prepared.append(writer.prepare())
            # Bodies are durable before any row refers to them (one flush per batch).
            await asyncio.to_thread(persist_files, prepared)
            async with services.db.write() as conn:
                await conn.run_sync(_rows, seqs, prepared, domains)


def _rows(
    conn: Connection, seqs: Sequence[int], prepared: Sequence[PreparedBlob], domains: int
) -> None:
    received = b"Received: from bench.localhost by courriel.bench.localhost; bench\r\n"
    for seq, blob in zip(seqs, prepared, strict=True):
        blob.persist_rows(conn)
        enqueue_sync(
            conn,
            sender=SENDER,
            recipients=[recipient(seq, domains)],
            blob_key=blob.ref.key,
            size=blob.ref.size + len(received),
            trace_header=received,
            priority="bulk",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimRate:
    """DKIM signing speed on one benchmark message."""

    selectors: tuple[str, ...]  # the keys each message is signed with (RSA first)
    messages_per_s: float  # DkimSigner.signatures calls per second (every key each)
    signatures_per_s: float  # DKIM-Signature fields per second
    hashed_per_s: float  # whole messages per second: body hash plus every signature


async def time_dkim(
    data_dir: Path, overrides: Mapping[str, str], *, size: int, seconds: float = 2.0
) -> DkimRate:
    """Time ``DkimSigner.signatures`` (RSA-2048 and Ed25519) on one message, in-process."""
    async with open_services(data_dir, overrides) as services:
        await services.mailstore.add_domain("sender.test")
        await ensure_keys(services.db, "sender.test", today=datetime.now(UTC).date())
        signer = await load_signer(services.db, "sender.test")
    if signer is None:
        raise StorageError("no DKIM key was created for sender.test")
    header, body = split_message(build_message(0, 1, size))
    hasher = BodyHasher()
    hasher.update(body)
    digest = hasher.digest()
    stamp = int(time.time())
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        signer.signatures(header, digest, stamp)
        calls += 1
    signing = time.perf_counter() - started
    whole, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        hasher = BodyHasher()
        hasher.update(body)
        signer.signatures(header, hasher.digest(), stamp)
        whole += 1
    hashing = time.perf_counter() - started
    keys = len(signer.selectors)
    return DkimRate(
        selectors=signer.selectors,
        messages_per_s=calls / signing,
        signatures_per_s=calls * keys / signing,
        hashed_per_s=whole / hashing,
    )


async def _reply(reader: asyncio.StreamReader) -> int:
    """Read one SMTP reply (RFC 5321 §4.2.1) and return its code."""
    while True:
        line = await asyncio.wait_for(reader.readline(), 60)
        if not line.endswith(b"\n"):
            raise ProtocolError(0, "", "connection closed by the server")
        if line[3:4] != b"-":
            return int(line[:3])


async def _expect(reader: asyncio.StreamReader, want: int, what: str) -> None:
    code = await _reply(reader)
    if code != want:
        raise ProtocolError(code, "", f"{what} answered {code}")


async def _inject_one(port: int, seqs: Sequence[int], domains: int, size: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await _expect(reader, 220, "greeting")
        writer.write(b"EHLO injector.bench.localhost\r\n")
        await _expect(reader, 250, "EHLO")
        for seq in seqs:
            # RFC 2920 §3.1: MAIL, RCPT and DATA in one group (Postfix offers PIPELINING).
            rcpt = recipient(seq, domains).encode()
            writer.write(b"MAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<" + rcpt + b">\r\n")
            writer.write(b"DATA\r\n")
            for want, what in ((250, "MAIL"), (250, "RCPT"), (354, "DATA")):
                await _expect(reader, want, what)
            writer.writelines((build_message(seq, domains, size), b".\r\n"))
            await _expect(reader, 250, "end of data")
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()


async def inject_smtp(
    port: int,
    *,
    messages: int,
    domains: int,
    size: int,
    clients: int = 8,
    per_connection: int = 500,
) -> None:
    """Send every message to an SMTP server on 127.0.0.1:port, ``clients`` connections at once."""
    batches = [
        range(first, min(first + per_connection, messages))
        for first in range(0, messages, per_connection)
    ]
    queue: asyncio.Queue[range] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def client() -> None:
        while not queue.empty():
            await _inject_one(port, queue.get_nowait(), domains, size)

    await asyncio.gather(*(client() for _ in range(clients)))
