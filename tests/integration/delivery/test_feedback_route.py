"""Mail to VERP addresses over real SMTP (stdlib smtplib to our MX listener), both engines.

A valid VERP address is accepted and stored as a ``feedback_reports`` row, never in a
mailbox, even where the domain has a catch-all; a forged one is refused 550 5.1.1; a
report's body survives the blob collector until the report row is gone.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, func, select

from courriel.delivery.committer import GroupCommitter
from courriel.delivery.router import Router
from courriel.errors import BlobMissing
from courriel.mailstore.messages import free_blobs
from courriel.mailstore.service import MailStore
from courriel.marketing.campaigns.feedback import feedback_address_check
from courriel.marketing.campaigns.tokens import Ref, verp_address
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.server import SmtpServer
from courriel.protocols.smtp.session import SmtpSettings
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import messages
from courriel.storage.models.campaigns import feedback_reports

KEY = b"k" * 32
DSN = (
    b"From: MAILER-DAEMON@mx.remote.test\r\n"
    b"To: bounces@shop.test\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"\r\n"
    b"The mail system could not deliver your message.\r\n"
)


@pytest.fixture
async def mx_port(
    database: Database, blobs: BlobStore, mailstore: MailStore, server_tls: ssl.SSLContext
) -> AsyncIterator[int]:
    """Our MX listener on loopback, routing with the VERP check of ``KEY``."""
    await mailstore.add_domain("shop.test")
    await mailstore.add_account("alice@shop.test", "pw-alice-1")
    # A catch-all: a forged VERP address must still be refused, not land here.
    await mailstore.add_alias("@shop.test", ["alice@shop.test"])
    committer = GroupCommitter(database, mailstore)
    router = Router(mailstore, blobs, committer, is_feedback_address=feedback_address_check(KEY))
    server = SmtpServer(
        SmtpSettings(hostname="mx.shop.test", listener="mx", tls_available=True),
        router,
        None,
        AuthThrottle(base=0.0, ceiling=0.0),
        server_tls,
    )
    _host, port = await server.start("127.0.0.1", 0)
    yield port
    await server.stop(0)
    await committer.close()


def _send(port: int, sender: str, recipients: list[str], data: bytes) -> dict[str, object]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.remote.test") as smtp:
        return dict(smtp.sendmail(sender, recipients, data))


async def _count(db: Database, table: object) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_valid_verp_is_a_report_not_a_mailbox_copy(
    mx_port: int, database: Database, blobs: BlobStore
) -> None:
    address = verp_address(KEY, Ref("c", 7), "shop.test")
    # A bounce has the null reverse-path (RFC 5321 §4.5.5).
    assert await asyncio.to_thread(_send, mx_port, "", [address], DSN) == {}
    async with database.read() as conn:
        [row] = (await conn.execute(select(feedback_reports))).all()
    assert row.recipient == address
    assert row.processed_at is None
    assert row.size == len(DSN)
    assert await blobs.get(row.blob_key) == DSN
    assert await _count(database, messages) == 0


async def test_verp_case_folded_by_a_relay_is_still_ours(mx_port: int, database: Database) -> None:
    address = verp_address(KEY, Ref("t", 12), "shop.test").upper()
    assert await asyncio.to_thread(_send, mx_port, "", [address], DSN) == {}
    assert await _count(database, feedback_reports) == 1
    assert await _count(database, messages) == 0


async def test_forged_verp_is_refused_550_5_1_1(mx_port: int, database: Database) -> None:
    good = verp_address(KEY, Ref("c", 7), "shop.test")
    forged = good.replace("bounces+c7.", "bounces+c8.")
    other_key = verp_address(b"x" * 32, Ref("c", 7), "shop.test")
    for address in (forged, other_key):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await asyncio.to_thread(_send, mx_port, "", [address], DSN)
        code, text = refused.value.recipients[address]
        assert code == 550
        assert text.startswith(b"5.1.1")
    assert await _count(database, feedback_reports) == 0
    assert await _count(database, messages) == 0


async def test_report_and_mailbox_copy_in_one_transaction(mx_port: int, database: Database) -> None:
    address = verp_address(KEY, Ref("c", 9), "shop.test")
    data = b"Subject: both\r\n\r\nhello\r\n"
    refused = await asyncio.to_thread(
        _send, mx_port, "someone@remote.test", [address, "alice@shop.test"], data
    )
    assert refused == {}
    async with database.read() as conn:
        [report] = (await conn.execute(select(feedback_reports))).all()
        [copy] = (await conn.execute(select(messages))).all()
    assert report.blob_key == copy.blob_key


async def test_report_body_outlives_blob_collection_until_the_row_goes(
    mx_port: int, database: Database, blobs: BlobStore
) -> None:
    address = verp_address(KEY, Ref("c", 7), "shop.test")
    await asyncio.to_thread(_send, mx_port, "", [address], DSN)
    async with database.read() as conn:
        key = await conn.scalar(select(feedback_reports.c.blob_key))
    assert isinstance(key, str)
    # Nothing in messages or the queue points to it: only the report keeps it.
    await free_blobs(database, blobs, [key])
    assert await blobs.get(key) == DSN
    async with database.write() as conn:
        await conn.execute(delete(feedback_reports))
    await free_blobs(database, blobs, [key])
    with pytest.raises(BlobMissing):
        await blobs.get(key)
