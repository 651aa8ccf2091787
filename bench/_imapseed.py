"""The mailbox of ``bench/imap.py``: N deterministic messages, and seeding them fast.

Both servers get the same messages with the same INTERNALDATE: courriel through its mail
store (bodies made durable in batches, then one ``deliver_many`` transaction per batch,
the path SMTP group commit takes), Dovecot as Maildir files (indexed on first SELECT).
Neither path goes through IMAP APPEND, which would measure APPEND rather than seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from courriel.app import open_services
from courriel.mailstore.batch import Copy, deliver_many
from courriel.storage.blobs import PreparedBlob, persist_files
from courriel.storage.db import Database

__all__ = ["DATE", "DOMAIN", "PASSWORD", "USER", "messages", "seed_courriel"]

DOMAIN = "bench.test"
USER = f"user@{DOMAIN}"
PASSWORD = "bench-password-not-secret"
DATE = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
_WORDS = ("order", "invoice", "shipping", "refund", "newsletter", "winter", "scarf", "gift")
_BATCH = 1000


def messages(count: int, seed: int = 7) -> Iterator[bytes]:
    """``count`` plain-text messages of 1-6 KB with varied senders, subjects and dates."""
    rng = random.Random(seed)
    for number in range(1, count + 1):
        word = rng.choice(_WORDS)
        sender = rng.randrange(100)
        day = 1 + number % 28
        lines = "".join(
            f"Line {i} of message {number}: {' '.join(rng.choices(_WORDS, k=8))}\r\n"
            for i in range(rng.randint(15, 90))
        )
        yield (
            f"Date: Wed, {day:02d} Jan 2026 09:{number % 60:02d}:00 +0000\r\n"
            f"From: Customer {sender} <customer{sender}@example.test>\r\n"
            f"To: Shop <{USER}>\r\n"
            f"Subject: {word.capitalize()} #{number}\r\n"
            f"Message-ID: <bench-{number}@example.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n" + lines
        ).encode()


async def seed_courriel(data_dir: Path, settings: Mapping[str, str], count: int) -> None:
    """Create the data folder, the domain and USER, and deliver ``count`` messages."""
    async with open_services(data_dir, settings, environ={}) as services:
        store = services.mailstore
        await store.add_domain(DOMAIN)
        await store.add_account(USER, PASSWORD)
        account = (await store.principal(USER)).account_id
        batch: list[PreparedBlob] = []
        for data in messages(count):
            writer = store.blobs.writer()
            await writer.write(data)
            batch.append(writer.prepare())
            if len(batch) == _BATCH:
                await _commit(services.db, batch, account)
                batch = []
        if batch:
            await _commit(services.db, batch, account)


async def _commit(db: Database, batch: list[PreparedBlob], account: int) -> None:
    await asyncio.to_thread(persist_files, batch)
    copies = [
        Copy(
            account_ids=(account,),
            blob_key=item.ref.key,
            size=item.ref.size,
            trace_header=b"",
            internal_date=DATE,
        )
        for item in batch
    ]

    def work(conn: Connection) -> None:
        for item in batch:
            item.persist_rows(conn)
        deliver_many(conn, copies)

    await db.run_write(work)
