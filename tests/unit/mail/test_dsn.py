"""DSN building and parsing (RFC 3464, RFC 6522, RFC 6533), read back with the stdlib ``email``."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message

from hypothesis import given
from hypothesis import strategies as st

from courriel.mail.dsn import (
    ParsedStatus,
    RecipientStatus,
    build_dsn,
    decode_utf8_address,
    dsn_status,
    encode_utf8_address,
    parse_dsn,
)

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
ARRIVAL = NOW - timedelta(hours=2)
ORIGINAL_HEADERS = (
    b"Received: from client.example (client.example [192.0.2.1])\r\n"
    b"\tby mail.shop.test; Mon, 10 Jun 2024 10:00:00 +0000\r\n"
    b"From: Alice <alice@shop.test>\r\n"
    b"To: bob@remote.test\r\n"
    b"Subject: Your order\r\n"
    b"Message-ID: <order-1@shop.test>\r\n"
)

BOUNCED = RecipientStatus(
    recipient="bob@remote.test",
    code=550,
    enhanced="5.1.1",
    text="<bob@remote.test>: Recipient address rejected: User unknown",
    remote_mta="mx1.remote.test",
    last_attempt=NOW - timedelta(minutes=1),
)


def _build(recipients: list[RecipientStatus], **kwargs: object) -> bytes:
    args: dict[str, object] = {
        "reporting_mta": "mail.shop.test",
        "original_sender": "alice@shop.test",
        "original_envelope_id": None,
        "recipients": recipients,
        "original_headers": ORIGINAL_HEADERS,
        "arrival_date": ARRIVAL,
        "now": NOW,
        "action": "failed",
        "message_id": "dsn-1@mail.shop.test",
    }
    args.update(kwargs)
    return build_dsn(**args)  # type: ignore[arg-type]


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _parts(message: EmailMessage) -> list[EmailMessage]:
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert all(isinstance(p, EmailMessage) for p in parts)
    return [p for p in parts if isinstance(p, EmailMessage)]


def _status_blocks(message: EmailMessage) -> list[Message]:
    blocks = _parts(message)[1].get_payload()
    assert isinstance(blocks, list)
    return [b for b in blocks if isinstance(b, Message)]


def _text(message: EmailMessage) -> str:
    text = _parts(message)[0].get_content()
    assert isinstance(text, str)
    return text


def test_bounce_is_a_multipart_report_with_three_parts() -> None:
    data = _build([BOUNCED])
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    message = _parse(data)
    # RFC 6522 §3: multipart/report with report-type=delivery-status.
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in _parts(message)] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]


def test_bounce_headers() -> None:
    message = _parse(_build([BOUNCED]))
    assert message["From"] == "Mail Delivery System <MAILER-DAEMON@mail.shop.test>"
    assert message["To"] == "alice@shop.test"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    # RFC 3834 §5: marked as an automatic reply.
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Message-ID"] == "<dsn-1@mail.shop.test>"
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime == NOW


def test_human_part_names_recipient_host_and_reply() -> None:
    message = _parse(_build([BOUNCED]))
    text = _text(message)
    assert "bob@remote.test" in text
    assert "mx1.remote.test" in text
    assert "550 5.1.1" in text
    assert "User unknown" in text


def test_per_message_and_per_recipient_fields() -> None:
    message = _parse(_build([BOUNCED], original_envelope_id="ENV123"))
    per_message, recipient = _status_blocks(message)
    assert per_message["Reporting-MTA"] == "dns; mail.shop.test"
    assert per_message["Original-Envelope-Id"] == "ENV123"
    assert email.utils.parsedate_to_datetime(per_message["Arrival-Date"]) == ARRIVAL
    assert recipient["Final-Recipient"] == "rfc822; bob@remote.test"
    assert recipient["Action"] == "failed"
    assert recipient["Status"] == "5.1.1"
    assert recipient["Remote-MTA"] == "dns; mx1.remote.test"
    diagnostic = " ".join(str(recipient["Diagnostic-Code"]).split())
    assert diagnostic == (
        "smtp; 550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown"
    )
    last = email.utils.parsedate_to_datetime(recipient["Last-Attempt-Date"])
    assert last == NOW - timedelta(minutes=1)
    assert recipient["Will-Retry-Until"] is None


def test_original_headers_part() -> None:
    message = _parse(_build([BOUNCED]))
    headers = _parts(message)[2].get_payload(decode=True)
    assert isinstance(headers, bytes)
    assert headers.replace(b"\r\n", b"\n") == ORIGINAL_HEADERS.replace(b"\r\n", b"\n")


def test_delay_warning() -> None:
    until = NOW + timedelta(days=3)
    delayed = RecipientStatus(
        recipient="carol@slow.test",
        code=451,
        enhanced="",
        text="try again later",
        remote_mta="mx.slow.test",
        last_attempt=NOW,
        will_retry_until=until,
    )
    message = _parse(_build([delayed], action="delayed"))
    assert message["Subject"] == "Delayed Mail (still being retried)"
    _, block = _status_blocks(message)
    assert block["Action"] == "delayed"
    assert block["Status"] == "4.0.0"  # derived from the basic code
    assert email.utils.parsedate_to_datetime(block["Will-Retry-Until"]) == until
    assert "keep trying" in _text(message)


def test_several_recipients_and_a_local_reason() -> None:
    null_mx = RecipientStatus(
        recipient="dave@nomail.test", code=0, text="domain accepts no mail (null MX)"
    )
    message = _parse(_build([BOUNCED, null_mx]))
    blocks = _status_blocks(message)
    assert len(blocks) == 3
    assert blocks[2]["Final-Recipient"] == "rfc822; dave@nomail.test"
    assert blocks[2]["Status"] == "5.0.0"
    assert blocks[2]["Remote-MTA"] is None
    assert blocks[2]["Diagnostic-Code"] == "X-Courriel; domain accepts no mail (null MX)"


def test_non_ascii_recipient_uses_utf8_address_type() -> None:
    item = RecipientStatus(recipient="jürgen@bücher.test", code=550, enhanced="5.1.1", text="no")
    data = _build([item])
    head, _, _ = data.partition(b"Content-Type: text/rfc822-headers")
    assert head.isascii()  # RFC 6533 §3: the 7-bit form keeps the report 7-bit
    message = _parse(data)
    _, block = _status_blocks(message)
    assert block["Final-Recipient"] == "utf-8; j\\x{FC}rgen@b\\x{FC}cher.test"
    assert "jürgen@bücher.test" in _text(message)
    assert parse_dsn(data)[0].recipient == "jürgen@bücher.test"


def test_non_ascii_original_headers_become_global_headers() -> None:
    headers = "From: Zoë <zoe@shop.test>\r\nSubject: Grüße\r\n".encode()
    message = _parse(_build([BOUNCED], original_headers=headers))
    assert _parts(message)[2].get_content_type() == "message/global-headers"


def test_round_trip_with_parse_dsn() -> None:
    other = RecipientStatus(
        recipient="erin@remote.test",
        code=552,
        enhanced="5.2.2",
        text="mailbox full " + "x" * 200,
        remote_mta="mx2.remote.test",
        original_recipient="Erin@Remote.test",
    )
    parsed = parse_dsn(_build([BOUNCED, other]))
    assert parsed == [
        ParsedStatus(
            recipient="bob@remote.test",
            action="failed",
            status="5.1.1",
            diagnostic="550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown",
            remote_mta="mx1.remote.test",
        ),
        ParsedStatus(
            recipient="erin@remote.test",
            action="failed",
            status="5.2.2",
            diagnostic="552 5.2.2 mailbox full " + "x" * 200,
            remote_mta="mx2.remote.test",
            original_recipient="Erin@Remote.test",
        ),
    ]


# A bounce in the shape Postfix writes it (RFC 3464 §2 fields, folded Diagnostic-Code,
# a vendor X- field), built by hand.
POSTFIX_DSN = b"""\
Return-Path: <>
Received: by mx.partner.test (Postfix) id 4F2C31C0A9; Mon, 10 Jun 2024 10:00:05 +0200 (CEST)
Date: Mon, 10 Jun 2024 10:00:05 +0200 (CEST)
From: MAILER-DAEMON@mx.partner.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: news@shop.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4F2C31C0A9.1718006405/mx.partner.test"
Message-Id: <20240610080005.4F2C31C0A9@mx.partner.test>

This is a MIME-encapsulated message.

--4F2C31C0A9.1718006405/mx.partner.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.partner.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@partner.test>: host mail.partner.test[192.0.2.25] said: 550 5.1.1
    <nobody@partner.test>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4F2C31C0A9.1718006405/mx.partner.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.partner.test
X-Postfix-Queue-ID: 4F2C31C0A9
X-Postfix-Sender: rfc822; news@shop.test
Arrival-Date: Mon, 10 Jun 2024 10:00:04 +0200 (CEST)

Final-Recipient: rfc822; nobody@partner.test
Original-Recipient: rfc822;nobody@partner.test
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.partner.test
Diagnostic-Code: smtp; 550 5.1.1 <nobody@partner.test>: Recipient address
    rejected: User unknown in virtual mailbox table

Final-Recipient: rfc822; slow@partner.test
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mail.partner.test[192.0.2.25]:25:
    Connection timed out

--4F2C31C0A9.1718006405/mx.partner.test
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: News <news@shop.test>
To: nobody@partner.test
Subject: Summer sale

--4F2C31C0A9.1718006405/mx.partner.test--
""".replace(b"\n", b"\r\n")


def test_postfix_style_dsn() -> None:
    assert parse_dsn(POSTFIX_DSN) == [
        ParsedStatus(
            recipient="nobody@partner.test",
            action="failed",
            status="5.1.1",
            diagnostic=(
                "550 5.1.1 <nobody@partner.test>: Recipient address rejected: "
                "User unknown in virtual mailbox table"
            ),
            remote_mta="mail.partner.test",
            original_recipient="nobody@partner.test",
        ),
        ParsedStatus(
            recipient="slow@partner.test",
            action="delayed",
            status="4.4.1",
            diagnostic="connect to mail.partner.test[192.0.2.25]:25: Connection timed out",
        ),
    ]


def test_global_delivery_status_is_read() -> None:
    # RFC 6533 §6.4: message/global-delivery-status carries UTF-8 as is; the stdlib
    # leaves it as text, parse_dsn splits the blocks itself.
    data = POSTFIX_DSN.replace(
        b"Content-Type: message/delivery-status", b"Content-Type: message/global-delivery-status"
    ).replace(b"rfc822; slow@partner.test", "utf-8; slöw@partner.test".encode())
    parsed = parse_dsn(data)
    assert [p.recipient for p in parsed] == ["nobody@partner.test", "slöw@partner.test"]
    assert parsed[0].diagnostic.endswith("User unknown in virtual mailbox table")


def test_a_message_that_is_not_a_dsn() -> None:
    assert parse_dsn(ORIGINAL_HEADERS + b"\r\nhello\r\n") == []
    assert parse_dsn(b"") == []


def test_dsn_status() -> None:
    assert dsn_status(550, "5.7.1", "failed") == "5.7.1"
    assert dsn_status(550, "", "failed") == "5.0.0"
    assert dsn_status(450, "bogus", "delayed") == "4.0.0"
    assert dsn_status(0, "", "failed") == "5.0.0"
    assert dsn_status(0, "", "delayed") == "4.0.0"


@given(st.text(min_size=1, max_size=40))
def test_utf8_address_encoding_round_trips(address: str) -> None:
    encoded = encode_utf8_address(address)
    assert encoded.isascii()
    assert all(0x21 <= ord(c) <= 0x7E for c in encoded)
    assert decode_utf8_address(encoded) == address


@given(st.binary(max_size=2000))
def test_parse_dsn_never_raises(data: bytes) -> None:
    assert isinstance(parse_dsn(data), list)
