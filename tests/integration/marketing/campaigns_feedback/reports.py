"""Feedback mail as it arrives: DSNs (built by our own RFC 3464 writer), ARF, mailto, chatter.

And the two ways a test puts one in front of the processor: a stored ``feedback_reports``
row with its body, as the router leaves it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, select

from courriel.mail.dsn import DsnAction, RecipientStatus, build_dsn
from courriel.marketing.campaigns.tokens import Ref, verp_address
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models.campaigns import bounce_state, feedback_reports

KEY = b"v" * 32
DOMAIN = "shop.test"
ORIGINAL = b"From: shop@shop.test\r\nSubject: Spring!\r\nMessage-ID: <m1@shop.test>\r\n\r\n"


def dsn(
    recipient: str,
    *,
    code: int,
    enhanced: str,
    text: str,
    now: datetime,
    action: DsnAction = "failed",
    sender: str = "bounces@shop.test",
) -> bytes:
    """A DSN from a remote MTA about ``recipient``."""
    until = now + timedelta(days=4) if action == "delayed" else None
    return build_dsn(
        reporting_mta="mx.remote.test",
        original_sender=sender,
        original_envelope_id=None,
        recipients=[
            RecipientStatus(
                recipient=recipient,
                code=code,
                enhanced=enhanced,
                text=text,
                remote_mta="mx.remote.test",
                last_attempt=now,
                will_retry_until=until,
            )
        ],
        original_headers=ORIGINAL,
        arrival_date=now,
        now=now,
        action=action,
        message_id="dsn-1@mx.remote.test",
    )


def arf(recipient: str, verp: str, feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 report (abuse by default), as a mailbox provider's feedback loop sends it."""
    return (
        "From: fbl@isp.test\r\n"
        "To: " + verp + "\r\n"
        "Subject: FW: Spring!\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "This is an email abuse report.\r\n"
        "--b1\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        "Feedback-Type: " + feedback_type + "\r\n"
        "User-Agent: ISP-FBL/1.0\r\n"
        "Version: 1\r\n"
        "Original-Mail-From: <" + verp + ">\r\n"
        "Original-Rcpt-To: <" + recipient + ">\r\n"
        "Reporting-MTA: dns; fbl.isp.test\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: shop@shop.test\r\n"
        "Subject: Spring!\r\n"
        "Message-ID: <m1@shop.test>\r\n"
        "\r\n"
        "--b1--\r\n"
    ).encode()


def mailto_unsubscribe(sender: str) -> bytes:
    """What a mail client sends for the List-Unsubscribe mailto (RFC 2369 §3.2)."""
    return f"From: {sender}\r\nSubject: unsubscribe\r\n\r\n".encode()


AUTO_REPLY = (
    b"From: ann@example.com\r\nAuto-Submitted: auto-replied\r\n"
    b"Subject: Out of office\r\n\r\nI am away until Monday.\r\n"
)


def verp(ref: Ref) -> str:
    return verp_address(KEY, ref, DOMAIN)


async def store_report(
    db: Database, blobs: BlobStore, recipient: str, data: bytes, at: datetime
) -> int:
    """A report row and its body, as the router's group commit writes them."""
    ref = await blobs.put(data)
    async with db.write() as conn:
        return int(
            (
                await conn.execute(
                    insert(feedback_reports)
                    .values(recipient=recipient, blob_key=ref.key, size=ref.size, received_at=at)
                    .returning(feedback_reports.c.id)
                )
            ).scalar_one()
        )


async def report_row(db: Database, report_id: int) -> dict[str, object]:
    async with db.read() as conn:
        row = (
            await conn.execute(select(feedback_reports).where(feedback_reports.c.id == report_id))
        ).mappings()
        return dict(row.one())


async def soft_in_row(db: Database, email: str) -> int | None:
    async with db.read() as conn:
        value = await conn.scalar(
            select(bounce_state.c.soft_in_row).where(bounce_state.c.email == email)
        )
    return None if value is None else int(value)
