"""Delivery status notifications: build the bounces we send, read the ones we receive.

A DSN (RFC 3464) is a ``multipart/report; report-type=delivery-status`` message
(RFC 6522) with three parts: a human explanation (``text/plain``), the machine-readable
``message/delivery-status`` (one per-message block, then one block per recipient), and the
header section of the original message (``text/rfc822-headers``).

Invariants:
- :func:`build_dsn` returns a complete RFC 5322 message with CRLF line ends and no line
  longer than 998 octets (RFC 5322 §2.1.1), its first two parts 7-bit: a non-ASCII
  recipient is written in the ``utf-8`` address type's 7-bit form (RFC 6533 §3) and the
  human part is quoted-printable when it is not ASCII. Only non-ASCII original headers
  (from an SMTPUTF8 message) make the third part ``message/global-headers`` (RFC 6533 §6.3).
- The human part names recipients, the remote host and its reply, never a local path or
  a configuration value.
- :func:`parse_dsn` never raises on malformed input: what it cannot read it leaves out.

Pure: no I/O, the clock and the Message-ID are given by the caller.
"""

from __future__ import annotations

import email.parser
import email.policy
import quopri
import re
import secrets
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime
from typing import Literal

__all__ = [
    "DsnAction",
    "ParsedStatus",
    "RecipientStatus",
    "build_dsn",
    "decode_utf8_address",
    "dsn_status",
    "encode_utf8_address",
    "parse_dsn",
]

DsnAction = Literal["failed", "delayed"]

SUBJECTS: dict[str, str] = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
}
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
# RFC 6533 §3: EmbeddedUnicodeChar is "\x{" HEXPOINT "}".
_EMBEDDED = re.compile(r"\\x\{([0-9A-Fa-f]{2,6})\}")
_FOLD_AT = 78


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientStatus:
    """What happened to one recipient, as reported in a DSN."""

    recipient: str  # the envelope recipient (RFC 3464 Final-Recipient)
    code: int  # the basic SMTP reply code, 0 when no server replied
    enhanced: str = ""  # the RFC 3463 code of the reply ("5.1.1"), "" when it had none
    text: str = ""  # the reply text without its codes, or the local reason
    remote_mta: str = ""  # the MX host that gave the reply, "" when none was reached
    last_attempt: datetime | None = None  # RFC 3464 Last-Attempt-Date
    will_retry_until: datetime | None = None  # RFC 3464 Will-Retry-Until (delayed only)
    original_recipient: str | None = None  # RFC 3461 ORCPT, when the client gave one


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedStatus:
    """One per-recipient block read from a DSN."""

    recipient: str  # Final-Recipient address, decoded, without its type
    action: str  # "failed" | "delayed" | "delivered" | "relayed" | "expanded" (lower case)
    status: str  # RFC 3463 code, "5.1.1"
    diagnostic: str = ""  # Diagnostic-Code text without its type ("550 5.1.1 ..."), unfolded
    remote_mta: str = ""  # Remote-MTA host without its type, "" when absent
    original_recipient: str | None = None  # Original-Recipient address, when present


def dsn_status(code: int, enhanced: str, action: str) -> str:
    """The RFC 3464 §2.3.4 Status of a recipient.

    The reply's RFC 3463 enhanced code when it has a valid one, else the class derived
    from the basic code (``5.0.0`` / ``4.0.0``), else (no reply at all) ``5.0.0`` for a
    failure and ``4.0.0`` for a delay.
    """
    if _ENHANCED.match(enhanced):
        return enhanced
    if 500 <= code < 600:
        return "5.0.0"
    if 400 <= code < 500:
        return "4.0.0"
    return "5.0.0" if action == "failed" else "4.0.0"


def encode_utf8_address(address: str) -> str:
    """Encode an address for the ``utf-8`` address type in 7 bits (RFC 6533 §3).

    This is the ``utf-8-addr-xtext`` form: non-ASCII characters, controls, ``+``, ``=``
    and ``\\`` become ``\\x{HEX}``.
    """
    out: list[str] = []
    for char in address:
        point = ord(char)
        if 0x21 <= point <= 0x7E and char not in "+=\\":
            out.append(char)
        else:
            out.append(f"\\x{{{point:02X}}}")
    return "".join(out)


def decode_utf8_address(text: str) -> str:
    """Decode ``\\x{HEX}`` escapes of the ``utf-8`` address type (RFC 6533 §3)."""

    def _char(match: re.Match[str]) -> str:
        point = int(match.group(1), 16)
        return chr(point) if point <= 0x10FFFF else match.group(0)

    return _EMBEDDED.sub(_char, text)


def _address_field(address: str) -> str:
    # RFC 3464 §2.3.2 address-type "rfc822"; RFC 6533 §3 "utf-8" for non-ASCII ones.
    if address.isascii():
        return f"rfc822; {address}"
    return f"utf-8; {encode_utf8_address(address)}"


def _date(value: datetime) -> str:
    # RFC 5322 §3.3 date-time; naive datetimes are taken as UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return format_datetime(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _field(name: str, value: str) -> str:
    """One header field, folded at spaces near 78 columns (RFC 5322 §2.2.3), CRLF-ended."""
    lines: list[str] = []
    current = f"{name}:"
    started = False  # a word is on the current line already
    for word in _one_line(value).split(" "):
        if started and len(current) + 1 + len(word) > _FOLD_AT:
            lines.append(current)
            current = ""
        current = f"{current} {word}"
        started = True
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _reply(item: RecipientStatus) -> str:
    """The reply as one line: ``550 5.1.1 text`` (codes left out when there are none)."""
    parts = (str(item.code) if item.code else "", item.enhanced, _one_line(item.text))
    return " ".join(p for p in parts if p)


def _diagnostic(item: RecipientStatus) -> str | None:
    """RFC 3464 §2.3.6 Diagnostic-Code: ``smtp;`` with the whole reply, or ours."""
    if item.code:
        return f"smtp; {_reply(item)}"
    if item.text.strip():
        # RFC 3464 §2.3.6: an "X-" diagnostic type for a reason no server gave.
        return f"X-Courriel; {_one_line(item.text)}"
    return None


def _recipient_block(item: RecipientStatus, action: str) -> str:
    fields: list[tuple[str, str]] = []
    if item.original_recipient:
        fields.append(("Original-Recipient", _address_field(item.original_recipient)))
    fields.append(("Final-Recipient", _address_field(item.recipient)))
    fields.append(("Action", action))
    fields.append(("Status", dsn_status(item.code, item.enhanced, action)))
    if item.remote_mta:
        fields.append(("Remote-MTA", f"dns; {item.remote_mta}"))
    diagnostic = _diagnostic(item)
    if diagnostic is not None:
        fields.append(("Diagnostic-Code", diagnostic))
    if item.last_attempt is not None:
        fields.append(("Last-Attempt-Date", _date(item.last_attempt)))
    if action == "delayed" and item.will_retry_until is not None:
        fields.append(("Will-Retry-Until", _date(item.will_retry_until)))
    return "".join(_field(name, value) for name, value in fields)


def _status_part(
    reporting_mta: str,
    original_envelope_id: str | None,
    arrival_date: datetime,
    recipients: Sequence[RecipientStatus],
    action: str,
) -> str:
    # RFC 3464 §2.2: per-message fields, then a blank line before each recipient block.
    head = [_field("Reporting-MTA", f"dns; {reporting_mta}")]
    if original_envelope_id:
        # RFC 3461 §4.4: ENVID is xtext, carried as given.
        head.append(_field("Original-Envelope-Id", original_envelope_id))
    head.append(_field("Arrival-Date", _date(arrival_date)))
    blocks = ["".join(head), *(_recipient_block(r, action) for r in recipients)]
    return "\r\n".join(blocks)


def _explanation(reporting_mta: str, recipients: Sequence[RecipientStatus], action: str) -> str:
    lines = [f"This is the mail system at host {reporting_mta}.", ""]
    if action == "failed":
        lines += [
            "Your message could not be delivered to one or more recipients.",
            "It is attached below (headers only).",
        ]
    else:
        lines += [
            "Your message could not be delivered yet to one or more recipients.",
            "The mail system will keep trying; you do not need to send it again.",
        ]
    lines.append("")
    for item in recipients:
        reply = _reply(item)
        where = f"host {item.remote_mta} said: " if item.remote_mta else ""
        # Wrapped, so that no line of a long multi-line reply exceeds RFC 5322 limits.
        lines += textwrap.wrap(
            f"<{item.recipient}>: {where}{reply or 'no reply'}",
            width=76,
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        if action == "delayed" and item.will_retry_until is not None:
            lines.append(f"    still trying until {_date(item.will_retry_until)}")
    return "\r\n".join(lines) + "\r\n"


def _text_part(text: str) -> str:
    if text.isascii():
        return (
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n" + text
        )
    encoded = quopri.encodestring(text.encode("utf-8")).decode("ascii")
    encoded = encoded.replace("\r\n", "\n").replace("\n", "\r\n")
    return (
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded
    )


def _normalize_crlf(data: bytes) -> bytes:
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def _headers_part(original_headers: bytes) -> bytes:
    headers = _normalize_crlf(original_headers)
    if headers.isascii():
        head = b"Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n"
    else:
        # RFC 6533 §6.3: the header section of an internationalised message.
        head = b"Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n"
    return head + b"Content-Description: Headers of the undelivered message\r\n\r\n" + headers


def _boundary(parts: Iterable[bytes]) -> str:
    while True:
        # MIME multipart: the boundary must not occur in any encapsulated part.
        candidate = f"=_courriel_{secrets.token_hex(12)}"
        if not any(candidate.encode() in part for part in parts):
            return candidate


def build_dsn(
    *,
    reporting_mta: str,
    original_sender: str,
    original_envelope_id: str | None,
    recipients: Sequence[RecipientStatus],
    original_headers: bytes,
    arrival_date: datetime,
    now: datetime,
    action: DsnAction,
    message_id: str,
) -> bytes:
    """Build a delivery status notification (RFC 3464 in an RFC 6522 multipart/report).

    Args:
        reporting_mta: our host name (``Reporting-MTA: dns; ...`` and ``MAILER-DAEMON@``).
        original_sender: the envelope sender of the original message; the DSN's ``To:``.
        original_envelope_id: the RFC 3461 ENVID of the original transaction, or None.
        recipients: one status per recipient reported (all with the same action).
        original_headers: the header section of the original message (any line ends).
        arrival_date: when the original message was queued.
        now: the DSN's ``Date:``.
        action: ``"failed"`` (a bounce) or ``"delayed"`` (a delay warning).
        message_id: the DSN's Message-ID, with or without angle brackets.

    Returns:
        The whole message, CRLF line ends.
    """
    explanation = _text_part(_explanation(reporting_mta, recipients, action)).encode("ascii")
    status = (
        "Content-Type: message/delivery-status\r\n"
        "Content-Description: Delivery report\r\n\r\n"
        + _status_part(reporting_mta, original_envelope_id, arrival_date, recipients, action)
    ).encode("ascii")
    headers = _headers_part(original_headers)
    boundary = _boundary((explanation, status, headers))
    head = "".join(
        (
            _field("From", f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"),
            _field("To", f"<{original_sender}>"),
            _field("Subject", SUBJECTS[action]),
            _field("Date", _date(now)),
            _field("Message-ID", f"<{message_id.strip().strip('<>')}>"),
            # RFC 3834 §5: a machine-generated reply; auto-responders must not answer it.
            "Auto-Submitted: auto-replied\r\n",
            "MIME-Version: 1.0\r\n",
            # RFC 6522 §3: report-type names the second part's type.
            "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            f' boundary="{boundary}"\r\n',
            "\r\n",
            "This is a MIME-encapsulated message.\r\n",
        )
    ).encode("utf-8")
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    closing = f"\r\n--{boundary}--\r\n".encode("ascii")
    return head + delimiter + explanation + delimiter + status + delimiter + headers + closing


def _blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a (global-)delivery-status part, names lower-cased, unfolded."""
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
        # The stdlib parses this type into one Message per block.
        return [
            {name.lower(): _one_line(str(value)) for name, value in block.items()}
            for block in payload
            if isinstance(block, Message)
        ]
    if isinstance(payload, list):
        # Other message/* types are parsed as one encapsulated message: the first block
        # is its header section and the other blocks its body; put the bytes back.
        raw: object = b"".join(m.as_bytes() for m in payload if isinstance(m, Message))
    else:
        raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    text = text.replace("\r\n", "\n")
    parser = email.parser.HeaderParser(policy=email.policy.compat32)
    blocks = []
    for chunk in re.split(r"\n[ \t]*\n", text):
        if chunk.strip():
            fields = parser.parsestr(chunk.strip("\n") + "\n\n")
            blocks.append({k.lower(): _one_line(str(v)) for k, v in fields.items()})
    return blocks


def _typed_value(value: str) -> tuple[str, str]:
    kind, sep, rest = value.partition(";")
    if not sep:
        return "", value.strip()
    return kind.strip().lower(), rest.strip()


def _address(value: str) -> str:
    kind, address = _typed_value(value)
    address = address.strip().strip("<>")
    return decode_utf8_address(address) if kind == "utf-8" else address


def _parsed(block: dict[str, str]) -> ParsedStatus | None:
    final = block.get("final-recipient")
    if not final:
        return None
    original = block.get("original-recipient")
    return ParsedStatus(
        recipient=_address(final),
        action=block.get("action", "").strip().lower(),
        status=block.get("status", "").split(" ")[0],
        diagnostic=_typed_value(block.get("diagnostic-code", ""))[1],
        remote_mta=_typed_value(block.get("remote-mta", ""))[1],
        original_recipient=_address(original) if original else None,
    )


def parse_dsn(data: bytes) -> list[ParsedStatus]:
    """Read the per-recipient statuses of a DSN (RFC 3464 §2.3, RFC 6533 global DSNs).

    Args:
        data: a whole message, as received.

    Returns:
        One entry per recipient block with a Final-Recipient, in order; an empty list
        when the message holds no delivery-status part (it is not a DSN).
    """
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            # The first block holds the per-message fields; the others, one per recipient.
            statuses = (_parsed(b) for b in _blocks(part)[1:])
            return [s for s in statuses if s is not None]
    return []
