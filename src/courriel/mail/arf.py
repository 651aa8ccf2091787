"""Read complaint (feedback) reports: ARF (RFC 5965) and Microsoft JMRP-style forwards.

An ARF report is a ``multipart/report; report-type=feedback-report`` (RFC 5965 §2, on RFC
6522) with three parts: a human text, the machine-readable ``message/feedback-report``
fields (§3.1), and the reported message as ``message/rfc822`` or its header section as
``text/rfc822-headers`` (§2 item 4). The feedback part is found anywhere in the MIME tree
(some reporters mislabel the container). Fields read: Feedback-Type, User-Agent, Version,
Original-Mail-From, Original-Rcpt-To (repeatable), Arrival-Date (also the obsolete
``Received-Date``), Reporting-MTA, Source-IP, Source-Port (RFC 6692 §3), Reported-Domain.
Feedback types are those of the IANA registry: abuse, fraud, other, virus (RFC 5965 §7.3),
not-spam (added to the registry later) and auth-failure (RFC 6591); an unregistered
type is read as "other".

JMRP-style reports (Microsoft's Junk Mail Reporting Program, and forwards that imitate
it) carry no feedback part: the complained-about message is attached as
``message/rfc822``; the reporting mailbox often appears in ``X-HmXmrOriginalRecipient``.
They are accepted when the subject or sender says "complaint"/"abuse report" and no part
is a (global) delivery-status (a bounce quoting such a subject is no complaint), and read as
``feedback_type="abuse"``, ``format="jmrp"``, with ``original_mail_from`` taken from the
original's Return-Path. Not handled: reports whose only copy of the
original is inline text (no MIME part), and redacted recipients (kept as given).

Invariants: pure and total (any bytes give a report or None, never an exception); the
returned original headers are in message order with folded values unfolded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from courriel.mail.bounceheuristics import original_message_id
from courriel.mail.bouncetypes import load_message, parse_fields, part_text

__all__ = ["ComplaintReport", "parse_arf"]

_KNOWN_TYPES = frozenset(("abuse", "fraud", "other", "virus", "not-spam", "auth-failure"))
_COMPLAINTS = frozenset(("abuse", "fraud", "virus", "other"))
_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global-headers")
_DSN_TYPES = frozenset(("message/delivery-status", "message/global-delivery-status"))
_JMRP_HINT = re.compile(r"complaint|abuse report|junk mail report", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplaintReport:
    """One feedback report about a message we sent."""

    feedback_type: str  # "abuse" | "fraud" | "virus" | "other" | "not-spam" | "auth-failure"
    user_agent: str = ""  # RFC 5965 §3.1 User-Agent of the reporter, "" when absent
    version: str = ""  # RFC 5965 §3.1 Version ("1")
    original_mail_from: str = ""  # envelope sender of the reported message (our VERP address)
    original_rcpt_to: tuple[str, ...] = ()  # envelope recipients, often redacted by the reporter
    arrival_date: datetime | None = None  # when the reporter received the message
    reporting_mta: str = ""  # RFC 5965 §3.1 Reporting-MTA host, type removed
    source_ip: str = ""  # IP address the reported message came from
    source_port: int | None = None  # RFC 6692 §3 Source-Port, when given
    reported_domain: str = ""  # first Reported-Domain, "" when absent
    original_headers: tuple[tuple[str, str], ...] = ()  # the reported message's header fields
    original_return_path: str = ""  # its Return-Path address without <>, "" when absent
    original_message_id: str = ""  # its Message-ID without <>, "" when absent
    format: str = "arf"  # "arf" or "jmrp"

    @property
    def is_complaint(self) -> bool:
        """A complaint (abuse, fraud, virus, other), not a not-spam or auth-failure report."""
        return self.feedback_type in _COMPLAINTS


def _bare(value: str) -> str:
    return value.strip().strip("<>").strip()


def _typed(value: str) -> str:
    # RFC 5965 §3.1 Reporting-MTA is "dns; host" (RFC 3464 §2.1.2 typed value).
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep else kind.strip()


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _port(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and int(value) < 65536 else None


def _feedback_type(value: str) -> str:
    kind = value.strip().lower()
    return kind if kind in _KNOWN_TYPES else "other"


def _first(fields: list[tuple[str, str]], name: str) -> str:
    return next((v for n, v in fields if n.lower() == name), "")


def _all(fields: list[tuple[str, str]], name: str) -> tuple[str, ...]:
    return tuple(_bare(v) for n, v in fields if n.lower() == name and _bare(v))


def _original(message: Message) -> tuple[tuple[tuple[str, str], ...], str, str]:
    """(headers, return path, message id) of the reported message (RFC 5965 §2 item 4)."""
    for part in message.walk():
        if part is not message and part.get_content_type() in _ORIGINAL_TYPES:
            text = part_text(part).lstrip("\n")
            head = re.split(r"\n[ \t]*\n", text, maxsplit=1)[0]
            blocks = parse_fields(head)
            headers = tuple(blocks[0]) if blocks else ()
            return_path = _bare(_first(list(headers), "return-path"))
            return headers, return_path, original_message_id(head)
    return (), "", ""


def _feedback_fields(message: Message) -> list[tuple[str, str]] | None:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            blocks = parse_fields(part_text(part))
            return [field for block in blocks for field in block]
    return None


def _report(fields: list[tuple[str, str]], message: Message, fmt: str) -> ComplaintReport:
    headers, return_path, message_id = _original(message)
    arrival = _first(fields, "arrival-date") or _first(fields, "received-date")
    return ComplaintReport(
        feedback_type=_feedback_type(_first(fields, "feedback-type")),
        user_agent=_first(fields, "user-agent"),
        version=_first(fields, "version"),
        original_mail_from=_bare(_first(fields, "original-mail-from")),
        original_rcpt_to=_all(fields, "original-rcpt-to"),
        arrival_date=_date(arrival),
        reporting_mta=_typed(_first(fields, "reporting-mta")),
        source_ip=_first(fields, "source-ip"),
        source_port=_port(_first(fields, "source-port")),
        reported_domain=_first(fields, "reported-domain"),
        original_headers=headers,
        original_return_path=return_path,
        original_message_id=message_id,
        format=fmt,
    )


def _is_dsn(message: Message) -> bool:
    # RFC 3464 §2, RFC 6533 §6: a delivery-status part makes it a bounce, whatever its subject.
    return any(part.get_content_type() in _DSN_TYPES for part in message.walk())


def _jmrp(message: Message) -> ComplaintReport | None:
    hint = f"{message.get('Subject', '')} {message.get('From', '')}"
    if not _JMRP_HINT.search(hint) or _is_dsn(message):
        return None
    headers, return_path, _message_id = _original(message)
    if not headers:
        return None
    # Microsoft names the complaining mailbox in X-HmXmrOriginalRecipient; the envelope
    # sender is known only from the original's Return-Path.
    rcpt = _all(list(headers), "x-hmxmroriginalrecipient")
    fields = [
        ("Feedback-Type", "abuse"),
        ("Original-Mail-From", return_path),
        *(("Original-Rcpt-To", r) for r in rcpt),
    ]
    return _report(fields, message, "jmrp")


def parse_arf(message: bytes) -> ComplaintReport | None:
    """Read a complaint report (RFC 5965 ARF, or a JMRP-style forward).

    Args:
        message: the whole report as received.

    Returns:
        The report, or ``None`` when the message is not a feedback report. An ARF report
        without Feedback-Type (required by RFC 5965 §3.1) is still read, as "other".
    """
    parsed = load_message(message)
    fields = _feedback_fields(parsed)
    if fields is not None:
        return _report(fields, parsed, "arf")
    return _jmrp(parsed)
