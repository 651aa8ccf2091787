"""Read bounces: RFC 3464 delivery status notifications first, the common non-standard texts next.

:func:`parse_bounce` is the one entry point for mail that arrives at a VERP address. It
looks for a ``message/delivery-status`` part (RFC 3464 §2, normally inside a
``multipart/report; report-type=delivery-status`` of RFC 6522 §3, but found anywhere in the
MIME tree, because some MTAs mislabel the container) or its internationalised twin
``message/global-delivery-status`` (RFC 6533 §6.2). Failing that it hands the message to
:mod:`courriel.mail.bounceheuristics`, which recognises the plain-text reports of qmail,
Exim, Postfix, Sendmail, Exchange/Office 365, Gmail and Yahoo.

Invariants:
- Pure: bytes in, a frozen report or None out; no I/O, no clock.
- Total: any bytes give a :class:`~courriel.mail.bouncetypes.BounceReport` or ``None``,
  never an exception (fuzzed in ``tests/fuzz/test_feedback_parsers.py``).
- ``None`` means "not a bounce": ordinary mail and auto-replies (RFC 3834) are never
  reported as bounces. A report always names at least one recipient.
"""

from __future__ import annotations

from email.message import Message

from courriel.mail.bounceheuristics import original_message_id, parse_heuristic
from courriel.mail.bouncetypes import (
    ACTIONS,
    BouncedRecipient,
    BounceReport,
    classify,
    load_message,
    parse_fields,
    part_text,
)
from courriel.mail.dsn import decode_utf8_address

__all__ = ["BounceReport", "BouncedRecipient", "parse_bounce", "parse_dsn_report"]

_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_HEADER_TYPES = ("text/rfc822-headers", "message/rfc822", "message/global-headers")


def _typed(value: str) -> tuple[str, str]:
    """Split an RFC 3464 §2.1.2 typed value (``rfc822; a@b``) into (type, value)."""
    kind, sep, rest = value.partition(";")
    if not sep:
        return "", value.strip()
    return kind.strip().lower(), rest.strip()


def _address(value: str) -> str:
    kind, address = _typed(value)
    address = address.strip().strip("<>").strip()
    # RFC 6533 §3: the utf-8 address type carries non-ASCII as \x{HEX} in 7-bit DSNs.
    return decode_utf8_address(address) if kind == "utf-8" else address


def _action(fields: dict[str, str]) -> str:
    action = fields.get("action", "").strip().lower().split(" ")[0]
    if action in ACTIONS:
        return action
    # An unknown or missing action (RFC 3464 §2.3.3 makes it required): infer it from the
    # status class so that a sloppy report still counts.
    klass = fields.get("status", "").strip()[:1]
    return {"5": "failed", "4": "delayed", "2": "delivered"}.get(klass, "")


def _recipient(fields: dict[str, str]) -> BouncedRecipient | None:
    """One per-recipient block (RFC 3464 §2.3); None without a recipient or an action."""
    final = _address(fields.get("final-recipient", ""))
    original = _address(fields.get("original-recipient", ""))
    action = _action(fields)
    if not (final or original) or not action:
        return None
    status = fields.get("status", "").strip().split(" ")[0]
    # RFC 3464 §2.3.6: Diagnostic-Code is "diagnostic-type; text"; keep the text.
    diagnostic = _typed(fields.get("diagnostic-code", ""))[1]
    return BouncedRecipient(
        final_recipient=final or original,
        original_recipient=original,
        action=action,  # type: ignore[arg-type]  # checked against ACTIONS above
        status=status,
        diagnostic=diagnostic,
        remote_mta=_typed(fields.get("remote-mta", ""))[1],
        kind=classify(action, status, diagnostic),
    )


def _lowered(block: list[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in block:
        # The first occurrence wins; RFC 3464 allows each field once per block.
        fields.setdefault(name.lower(), value)
    return fields


def _status_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in _STATUS_TYPES:
            return part
    return None


def parse_dsn_report(message: Message) -> BounceReport | None:
    """Read an already parsed message as an RFC 3464 DSN; None when it holds none.

    The first block of the delivery-status part holds the per-message fields (RFC 3464
    §2.2), each later block one recipient (§2.3). A report with a status part but no
    readable recipient block is not a DSN here (the caller may try the heuristics).
    """
    part = _status_part(message)
    if part is None:
        return None
    blocks = [_lowered(b) for b in parse_fields(part_text(part))]
    if not blocks:
        return None
    head = blocks[0]
    if "final-recipient" in head or "original-recipient" in head:
        # No per-message block at all (a broken report): every block is a recipient.
        head = {}
    else:
        blocks = blocks[1:]
    recipients = tuple(r for r in (_recipient(b) for b in blocks) if r is not None)
    if not recipients:
        return None
    return BounceReport(
        recipients=recipients,
        reporting_mta=_typed(head.get("reporting-mta", ""))[1],
        format="rfc3464",
        original_message_id=_original_id(message),
    )


def _original_id(message: Message) -> str:
    # RFC 3464 §2.1 / RFC 6522 §3: the third part returns the original message or its
    # header section; its Message-ID ties the bounce to what we sent.
    for part in message.walk():
        if part is not message and part.get_content_type() in _HEADER_TYPES:
            found = original_message_id(part_text(part))
            if found:
                return found
    return ""


def parse_bounce(message: bytes) -> BounceReport | None:
    """Read a bounce: an RFC 3464 DSN, else one of the common non-standard formats.

    Args:
        message: the whole message as received (any line ends, any MIME damage).

    Returns:
        The report, or ``None`` when the message is not a bounce (ordinary mail, an
        out-of-office or other RFC 3834 auto-reply, an unrecognised text).
    """
    parsed = load_message(message)
    report = parse_dsn_report(parsed)
    if report is not None:
        return report
    return parse_heuristic(parsed)
