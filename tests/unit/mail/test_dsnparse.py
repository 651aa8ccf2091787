"""parse_bounce on every bounce fixture (tests/fixtures/bounces/), with exact fields."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.mail.bouncetypes import BouncedRecipient, BounceReport
from courriel.mail.dsn import RecipientStatus, build_dsn
from courriel.mail.dsnparse import parse_bounce

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bounces"


def _parse(name: str) -> BounceReport | None:
    return parse_bounce((FIXTURES / name).read_bytes())


def test_rfc3464_postfix_dsn() -> None:
    assert _parse("rfc3464_postfix.eml") == BounceReport(
        recipients=(
            BouncedRecipient(
                final_recipient="nobody@partner.test",
                original_recipient="nobody@partner.test",
                action="failed",
                status="5.1.1",
                diagnostic=(
                    "550 5.1.1 <nobody@partner.test>: Recipient address rejected: "
                    "User unknown in virtual mailbox table"
                ),
                remote_mta="mail.partner.test",
                kind="hard",
            ),
        ),
        reporting_mta="mx.partner.test",
        format="rfc3464",
        original_message_id="c123.1718006000@shop.example",
    )


def test_rfc3464_every_action_and_classification() -> None:
    report = _parse("rfc3464_mixed.eml")
    assert report is not None
    assert report.reporting_mta == "relay.partner.test"
    # RFC 3464 §2.3.3 actions are case-insensitive; the folded Message-ID of the returned
    # message (message/rfc822) is read from its header section, not from its body.
    assert report.original_message_id == "c124.folded@shop.example"
    assert report.recipients == (
        BouncedRecipient(
            final_recipient="full@partner.test",
            action="failed",
            status="5.2.2",
            diagnostic="552 5.2.2 Mailbox full: quota exceeded",
            remote_mta="mx2.partner.test",
            kind="soft",
        ),
        BouncedRecipient(
            final_recipient="gone@partner.test",
            action="failed",
            status="5.7.1",
            diagnostic="550 5.7.1 Message rejected as spam by content filter",
            kind="soft",
        ),
        BouncedRecipient(
            final_recipient="later@partner.test", action="delayed", status="4.4.7", kind="delay"
        ),
        BouncedRecipient(
            final_recipient="ok@partner.test", action="delivered", status="2.0.0", kind="none"
        ),
    )
    assert report.kind == "soft"


def test_rfc6533_global_delivery_status() -> None:
    report = _parse("rfc3464_global.eml")
    assert report == BounceReport(
        recipients=(
            BouncedRecipient(
                final_recipient="jürgen@bücher.test",
                original_recipient="jürgen@bücher.test",
                action="failed",
                status="5.1.1",
                diagnostic="550 5.1.1 no such user",
                kind="hard",
            ),
        ),
        reporting_mta="mx.xn--bcher-kva.test",
        format="rfc3464",
        original_message_id="c125@shop.example",
    )


NON_STANDARD: list[tuple[str, str, str, str, list[tuple[str, str, str, str, str, str]]]] = [
    # file, format, reporting MTA, original Message-ID,
    # [(recipient, action, status, kind, remote MTA, diagnostic)]
    (
        "qmail.eml",
        "qmail",
        "mail.partner.test",
        "c126@shop.example",
        [
            (
                "nobody@partner.test",
                "failed",
                "5.1.1",
                "hard",
                "192.0.2.10",
                "550 5.1.1 <nobody@partner.test>: Recipient address rejected: User unknown",
            ),
            (
                "local@mail.partner.test",
                "failed",
                "5.1.1",
                "hard",
                "",
                "Sorry, no mailbox here by that name. (#5.1.1)",
            ),
        ],
    ),
    (
        "yahoo.eml",
        "yahoo",
        "yahoo.example",
        "c127@shop.example",
        [
            (
                "nobody@yahoo.example",
                "failed",
                "",
                "hard",
                "",
                "554 delivery error: dd This user doesn't have a yahoo.example account "
                "(nobody@yahoo.example) [0] - mta1001.mail.yahoo.example",
            )
        ],
    ),
    (
        "exim.eml",
        "exim",
        "mx.partner.test",
        "c128@shop.example",
        [
            (
                "nobody@partner.test",
                "failed",
                "5.1.1",
                "hard",
                "mail.partner.test",
                "550 5.1.1 <nobody@partner.test>: Recipient address rejected: User unknown",
            ),
            ("nowhere@unrouted.test", "failed", "", "hard", "", "Unrouteable address"),
        ],
    ),
    (
        "exim_delay.eml",
        "exim",
        "mx.partner.test",
        "",
        [
            (
                "slow@partner.test",
                "delayed",
                "",
                "delay",
                "mail.partner.test",
                "host mail.partner.test [192.0.2.25]: Connection timed out",
            )
        ],
    ),
    (
        "postfix_plain.eml",
        "postfix",
        "mx.partner.test",
        "c130@shop.example",
        [
            (
                "full@partner.test",
                "failed",
                "5.2.2",
                "soft",
                "mail.partner.test",
                "552 5.2.2 <full@partner.test>: Mailbox full",
            )
        ],
    ),
    (
        "sendmail.eml",
        "sendmail",
        "relay.partner.test",
        "",
        [
            (
                "nobody@partner.test",
                "failed",
                "5.1.1",
                "hard",
                "mail.partner.test",
                "550 5.1.1 <nobody@partner.test>... User unknown",
            )
        ],
    ),
    (
        "exchange.eml",
        "exchange",
        "EX01.corp.partner.test",
        "c132@shop.example",
        [
            (
                "nobody@corp.partner.test",
                "failed",
                "5.1.1",
                "hard",
                "EX01.corp.partner.test",
                "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
            )
        ],
    ),
    (
        "office365.eml",
        "exchange",
        "AM0PR01MB1234.eurprd01.prod.outlook.test",
        "c133@shop.example",
        [
            (
                "nobody@partner.test",
                "failed",
                "5.1.10",
                "hard",
                "AM0PR01MB1234.eurprd01.prod.outlook.test",
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
                "address lookup",
            )
        ],
    ),
    (
        "gmail.eml",
        "gmail",
        "googlemail.example",
        "c134@shop.example",
        [
            (
                "nobody@partner.test",
                "failed",
                "5.1.1",
                "hard",
                "",
                "550 5.1.1 The email account that you tried to reach does not exist. Please "
                "try double-checking the recipient's email address for typos or unnecessary "
                "spaces.",
            )
        ],
    ),
    (
        "gmail_delay.eml",
        "gmail",
        "googlemail.example",
        "",
        [
            (
                "slow@partner.test",
                "delayed",
                "4.7.0",
                "delay",
                "",
                "421 4.7.0 Try again later, closing connection.",
            )
        ],
    ),
]


@pytest.mark.parametrize(("name", "fmt", "mta", "message_id", "expected"), NON_STANDARD)
def test_non_standard_bounce(
    name: str,
    fmt: str,
    mta: str,
    message_id: str,
    expected: list[tuple[str, str, str, str, str, str]],
) -> None:
    report = _parse(name)
    assert report is not None
    assert (report.format, report.reporting_mta, report.original_message_id) == (
        fmt,
        mta,
        message_id,
    )
    assert report.recipients == tuple(
        BouncedRecipient(
            final_recipient=rcpt,
            action=action,  # type: ignore[arg-type]
            status=status,
            kind=kind,  # type: ignore[arg-type]
            remote_mta=remote,
            diagnostic=diagnostic,
        )
        for rcpt, action, status, kind, remote, diagnostic in expected
    )


def test_qmail_does_not_report_addresses_of_the_returned_copy() -> None:
    report = _parse("qmail.eml")
    assert report is not None
    assert "quoted2@partner.test" not in {r.final_recipient for r in report.recipients}


@pytest.mark.parametrize("name", ["autoreply.eml", "out_of_office.eml", "plain.eml"])
def test_auto_replies_and_ordinary_mail_are_not_bounces(name: str) -> None:
    assert _parse(name) is None


@pytest.mark.parametrize(
    "name", ["arf.eml", "arf_headers_only.eml", "jmrp.eml", "arf_unknown_type.eml"]
)
def test_complaint_reports_are_not_bounces(name: str) -> None:
    assert _parse(name) is None


def test_empty_and_garbage_are_not_bounces() -> None:
    assert parse_bounce(b"") is None
    assert parse_bounce(b"\xff\xfe\x00garbage") is None


def test_reads_the_dsns_courriel_itself_builds() -> None:
    data = build_dsn(
        reporting_mta="mx.shop.example",
        original_sender="bounces+c1.abcdef@shop.example",
        original_envelope_id=None,
        recipients=[
            RecipientStatus(
                recipient="nobody@partner.test",
                code=550,
                enhanced="5.1.1",
                text="user unknown",
                remote_mta="mail.partner.test",
            )
        ],
        original_headers=b"Message-ID: <c1@shop.example>\r\nSubject: x\r\n",
        arrival_date=datetime(2024, 6, 10, tzinfo=UTC),
        now=datetime(2024, 6, 10, 0, 5, tzinfo=UTC),
        action="failed",
        message_id="dsn1@mx.shop.example",
    )
    assert parse_bounce(data) == BounceReport(
        recipients=(
            BouncedRecipient(
                final_recipient="nobody@partner.test",
                action="failed",
                status="5.1.1",
                diagnostic="550 5.1.1 user unknown",
                remote_mta="mail.partner.test",
                kind="hard",
            ),
        ),
        reporting_mta="mx.shop.example",
        format="rfc3464",
        original_message_id="c1@shop.example",
    )
