"""The ``Received:`` trace header the SMTP server adds (RFC 5321 §4.4).

Form: ``Received: from <helo> ([<ip>]) by <hostname> (courriel) with <protocol>
id <id> for <rcpt>; <date>``. The protocol keyword is the RFC 3848 / RFC 6531
§4.3 registry value. The header is folded at clause boundaries so that no line
exceeds 78 characters when it can be helped (RFC 5322 §2.2.3), and ends in CRLF.
Client-supplied text (the HELO name) is reduced to printable characters so it
can never break the header.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from email.utils import format_datetime

__all__ = ["protocol_keyword", "received_header"]

FOLD_AT = 78


def protocol_keyword(*, esmtp: bool, tls: bool, authenticated: bool, smtputf8: bool) -> str:
    """Return the ``with`` keyword (RFC 3848 §2, RFC 6531 §4.3).

    Args:
        esmtp: the client greeted with EHLO (else HELO: plain ``SMTP``).
        tls: the transaction ran over TLS (``S``).
        authenticated: the client authenticated (``A``).
        smtputf8: the transaction used SMTPUTF8 (``UTF8SMTP`` family).
    """
    suffix = ("S" if tls else "") + ("A" if authenticated else "")
    if smtputf8:
        return "UTF8SMTP" + suffix
    if not esmtp and not suffix:
        return "SMTP"
    return "ESMTP" + suffix


def _clean(text: str) -> str:
    cleaned = "".join(c if c.isprintable() and not c.isspace() else "?" for c in text)
    return cleaned[:255] or "unknown"


def _literal(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "[unknown]"
    # RFC 5321 §4.1.3: IPv6 address literals carry the "IPv6:" tag.
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def _fold(clauses: list[str]) -> str:
    lines: list[str] = []
    current = ""
    for clause in clauses:
        if current and len(current) + 1 + len(clause) > FOLD_AT:
            lines.append(current)
            current = "\t" + clause
        else:
            current = f"{current} {clause}" if current else clause
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def received_header(
    *,
    helo: str,
    peer_ip: str,
    hostname: str,
    protocol: str,
    message_id: str,
    recipients: list[str],
    when: datetime,
) -> bytes:
    """Build the CRLF-terminated ``Received:`` field.

    Args:
        helo: the EHLO/HELO name the client gave.
        peer_ip: the client's IP address.
        hostname: our host name.
        protocol: from :func:`protocol_keyword`.
        message_id: the session's id for this transaction.
        recipients: accepted recipients; named in a ``for`` clause only when single.
        when: the time of receipt (timezone-aware).
    """
    clauses = [
        "Received:",
        f"from {_clean(helo)}",
        f"({_literal(peer_ip)})",
        f"by {hostname}",
        "(courriel)",
        f"with {protocol}",
        f"id {_clean(message_id)}",
    ]
    if len(recipients) == 1:
        clauses.append(f"for <{_clean(recipients[0])}>;")
    else:
        clauses[-1] += ";"
    clauses.append(format_datetime(when))
    return _fold(clauses).encode("utf-8")
