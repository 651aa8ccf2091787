"""parse_arf on every complaint fixture (tests/fixtures/bounces/), with exact fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from courriel.mail.arf import ComplaintReport, parse_arf

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bounces"


def _parse(name: str) -> ComplaintReport | None:
    return parse_arf((FIXTURES / name).read_bytes())


def test_rfc5965_report_with_the_whole_message() -> None:
    assert _parse("arf.eml") == ComplaintReport(
        feedback_type="abuse",
        user_agent="SomeGenerator/1.0",
        version="1",
        original_mail_from="bounces+c140.abcdef@shop.example",
        original_rcpt_to=("user@isp.example", "user2@isp.example"),
        arrival_date=datetime(2024, 6, 13, 14, 0, tzinfo=timezone(timedelta(hours=-4))),
        reporting_mta="mail.isp.example",
        source_ip="192.0.2.1",
        source_port=49152,
        reported_domain="shop.example",
        original_headers=(
            ("Return-Path", "<bounces+c140.abcdef@shop.example>"),
            (
                "Received",
                "from shop.example (shop.example [192.0.2.1]) by mail.isp.example; "
                "Thu, 13 Jun 2024 14:00:00 -0400",
            ),
            ("From", "<news@shop.example>"),
            ("To", "<user@isp.example>"),
            ("Subject", "Summer sale"),
            ("Message-ID", "<c140@shop.example>"),
            ("Date", "Thu, 13 Jun 2024 13:59:00 -0400"),
        ),
        original_return_path="bounces+c140.abcdef@shop.example",
        original_message_id="c140@shop.example",
        format="arf",
    )


def test_not_spam_report_with_headers_only() -> None:
    report = _parse("arf_headers_only.eml")
    assert report == ComplaintReport(
        feedback_type="not-spam",
        user_agent="Mailbox-Feedback/2.0",
        version="1",
        original_mail_from="bounces+t9.abcdef@shop.example",
        original_rcpt_to=("redacted@mailbox.example",),
        # Received-Date is the obsolete name of Arrival-Date.
        arrival_date=datetime(2024, 6, 12, 9, 0, tzinfo=UTC),
        original_headers=(
            ("Return-Path", "<bounces+t9.abcdef@shop.example>"),
            ("Message-ID", "<t9@shop.example>"),
            ("Subject", "Your order has shipped"),
        ),
        original_return_path="bounces+t9.abcdef@shop.example",
        original_message_id="t9@shop.example",
    )
    assert report is not None
    assert not report.is_complaint


def test_jmrp_style_forward() -> None:
    report = _parse("jmrp.eml")
    assert report == ComplaintReport(
        feedback_type="abuse",
        original_mail_from="bounces+c141.abcdef@shop.example",
        original_rcpt_to=("complainer@hotmail.example",),
        original_headers=(
            ("X-HmXmrOriginalRecipient", "<complainer@hotmail.example>"),
            ("Return-Path", "bounces+c141.abcdef@shop.example"),
            ("Message-ID", "<c141@shop.example>"),
            ("Subject", "Summer sale"),
        ),
        original_return_path="bounces+c141.abcdef@shop.example",
        original_message_id="c141@shop.example",
        format="jmrp",
    )
    assert report is not None
    assert report.is_complaint


def test_unregistered_feedback_type_and_bad_port() -> None:
    report = _parse("arf_unknown_type.eml")
    assert report == ComplaintReport(feedback_type="other", version="1")


@pytest.mark.parametrize(
    "name",
    [
        "rfc3464_postfix.eml",
        "qmail.eml",
        "exchange.eml",
        "autoreply.eml",
        "plain.eml",
        "office365.eml",
    ],
)
def test_bounces_and_ordinary_mail_are_not_complaints(name: str) -> None:
    assert _parse(name) is None


def test_empty_is_not_a_complaint() -> None:
    assert parse_arf(b"") is None


# An Exchange NDR (RFC 3464 report) about a mail whose subject says "complaint", with the
# original attached: a bounce, not a JMRP-style complaint.
_NDR = (
    "From: postmaster@corp.partner.test\r\n"
    "To: bounces+c150.abcdef@shop.example\r\n"
    "Subject: Undeliverable: About your complaint\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="nd"\r\n'
    "\r\n"
    "--nd\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Delivery has failed to these recipients or groups.\r\n"
    "--nd\r\n"
    "Content-Type: {status}\r\n"
    "\r\n"
    "Reporting-MTA: dns; EX01.corp.partner.test\r\n"
    "\r\n"
    "Final-Recipient: rfc822; nobody@corp.partner.test\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "--nd\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Return-Path: <bounces+c150.abcdef@shop.example>\r\n"
    "Message-ID: <c150@shop.example>\r\n"
    "Subject: About your complaint\r\n"
    "\r\n"
    "hello\r\n"
    "--nd--\r\n"
)


@pytest.mark.parametrize("status", ["message/delivery-status", "message/global-delivery-status"])
def test_a_bounce_with_complaint_in_its_subject_is_not_a_jmrp_report(status: str) -> None:
    assert parse_arf(_NDR.format(status=status).encode()) is None
