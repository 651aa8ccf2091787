"""The Bouncer: failure and delay DSNs from the worker's claims, never for a null sender."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from courriel.delivery.bounces import MAX_HEADERS, Bouncer, header_section
from courriel.delivery.claims import Claim
from courriel.delivery.transport import RemoteReply
from courriel.mail.dsn import ParsedStatus, parse_dsn
from courriel.storage.blobs import FsBlobStore

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
TRACE = b"Received: from client.test by mail.shop.test; Mon, 10 Jun 2024 10:00:00 +0000\r\n"
BODY = (
    b"From: Alice <alice@shop.test>\r\nTo: bob@remote.test\r\nSubject: order 42\r\n\r\n"
    b"SECRET BODY TEXT\r\n"
)


class Outbox:
    """The submit port, recording what the Bouncer hands to delivery."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str], bytes]] = []

    async def __call__(self, sender: str, recipients: Sequence[str], message: bytes) -> None:
        self.sent.append((sender, list(recipients), message))


@pytest.fixture
def store(tmp_path: Path) -> FsBlobStore:
    return FsBlobStore(tmp_path / "blobs")


async def _claim(
    store: FsBlobStore, *, sender: str = "alice@shop.test", body: bytes = BODY
) -> Claim:
    ref = await store.put(body)
    return Claim(
        recipient_id=7,
        message_id=3,
        sender=sender,
        recipient="bob@remote.test",
        blob_key=ref.key,
        trace_header=TRACE,
        size=len(TRACE) + len(body),
        smtputf8=False,
        eight_bit=False,
        priority="transactional",
        attempts=1,
        created_at=NOW - timedelta(hours=1),
        delay_warned=False,
    )


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _quoted(message: EmailMessage) -> bytes:
    """The third part of a DSN: the quoted original headers."""
    parts = message.get_payload()
    assert isinstance(parts, list)
    third = parts[2]
    assert isinstance(third, EmailMessage)
    quoted = third.get_payload(decode=True)
    assert isinstance(quoted, bytes)
    return quoted


async def test_failure_dsn_goes_from_null_sender_to_the_sender(store: FsBlobStore) -> None:
    outbox = Outbox()
    bouncer = Bouncer(outbox, "mail.shop.test", store, clock=lambda: NOW)
    claim = await _claim(store)
    await bouncer.failed(
        claim,
        [
            (
                "bob@remote.test",
                RemoteReply(code=550, enhanced="5.1.1", text="no such user"),
                "mx1.remote.test",
            ),
            (
                "eve@remote.test",
                RemoteReply(code=552, enhanced="", text="quota"),
                "mx1.remote.test",
            ),
        ],
    )
    [(sender, recipients, data)] = outbox.sent
    assert sender == ""
    assert recipients == ["alice@shop.test"]
    message = _parse(data)
    assert message["To"] == "alice@shop.test"
    assert message["From"] == "Mail Delivery System <MAILER-DAEMON@mail.shop.test>"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"].endswith("@mail.shop.test>")
    assert parse_dsn(data) == [
        ParsedStatus(
            recipient="bob@remote.test",
            action="failed",
            status="5.1.1",
            diagnostic="550 5.1.1 no such user",
            remote_mta="mx1.remote.test",
        ),
        ParsedStatus(
            recipient="eve@remote.test",
            action="failed",
            status="5.0.0",
            diagnostic="552 quota",
            remote_mta="mx1.remote.test",
        ),
    ]
    quoted = _quoted(message)
    # The trace header and the original header section, never the body.
    assert quoted.startswith(TRACE)
    assert b"Subject: order 42" in quoted
    assert b"SECRET BODY TEXT" not in data


async def test_delay_warning(store: FsBlobStore) -> None:
    outbox = Outbox()
    bouncer = Bouncer(outbox, "mail.shop.test", store, clock=lambda: NOW)
    until = NOW + timedelta(days=4)
    await bouncer.delayed(
        [await _claim(store)],
        [
            (
                "bob@remote.test",
                RemoteReply(code=451, enhanced="4.7.1", text="greylisted"),
                "mx1.remote.test",
            )
        ],
        until,
    )
    [(sender, recipients, data)] = outbox.sent
    assert (sender, recipients) == ("", ["alice@shop.test"])
    message = _parse(data)
    assert message["Subject"] == "Delayed Mail (still being retried)"
    [status] = parse_dsn(data)
    assert (status.action, status.status) == ("delayed", "4.7.1")
    assert f"Will-Retry-Until: {email.utils.format_datetime(until)}".encode() in data


async def test_null_sender_is_never_bounced(store: FsBlobStore) -> None:
    outbox = Outbox()
    bouncer = Bouncer(outbox, "mail.shop.test", store, clock=lambda: NOW)
    claim = await _claim(store, sender="")
    reply = RemoteReply(code=550, enhanced="5.1.1", text="no such user")
    await bouncer.failed(claim, [("bob@remote.test", reply, "mx1.remote.test")])
    await bouncer.delayed(claim, [("bob@remote.test", reply, "mx1.remote.test")], NOW)
    assert outbox.sent == []


async def test_nothing_to_report_sends_nothing(store: FsBlobStore) -> None:
    outbox = Outbox()
    bouncer = Bouncer(outbox, "mail.shop.test", store, clock=lambda: NOW)
    await bouncer.failed([], [])
    assert outbox.sent == []


async def test_missing_body_quotes_the_trace_header(store: FsBlobStore) -> None:
    outbox = Outbox()
    bouncer = Bouncer(outbox, "mail.shop.test", store, clock=lambda: NOW)
    claim = replace(await _claim(store), blob_key="0" * 64)
    reply = RemoteReply(code=0, enhanced="", text="domain has a null MX")
    await bouncer.failed(claim, [("bob@remote.test", reply, "")])
    [(_, _, data)] = outbox.sent
    assert TRACE in data
    [status] = parse_dsn(data)
    assert (status.status, status.remote_mta) == ("5.0.0", "")
    assert status.diagnostic == "domain has a null MX"


async def test_huge_headers_are_capped(store: FsBlobStore) -> None:
    outbox = Outbox()
    bouncer = Bouncer(outbox, "mail.shop.test", store, clock=lambda: NOW)
    many = b"".join(b"X-Filler-%06d: %s\r\n" % (i, b"y" * 60) for i in range(3000))
    claim = await _claim(store, body=many + b"Subject: last\r\n\r\nbody\r\n")
    reply = RemoteReply(code=550, enhanced="5.7.1", text="refused")
    await bouncer.failed(claim, [("bob@remote.test", reply, "mx.remote.test")])
    [(_, _, data)] = outbox.sent
    quoted = _quoted(_parse(data))
    assert MAX_HEADERS - 200 < len(quoted) <= MAX_HEADERS
    assert quoted.endswith(b"\r\n") and b"Subject: last" not in quoted


def test_header_section() -> None:
    assert header_section(b"A: 1\r\nB: 2\r\n\r\nbody\r\n") == b"A: 1\r\nB: 2\r\n"
    assert header_section(b"A: 1\nB: 2\n\nbody\n") == b"A: 1\nB: 2\n"
    assert header_section(b"A: 1\r\n") == b"A: 1\r\n"
    assert header_section(b"A: 1\r\nB: 2\r\n\r\n", limit=8) == b"A: 1\r\n"
    assert header_section(b"A: 123456789\r\n", limit=4) == b"A: 1"
