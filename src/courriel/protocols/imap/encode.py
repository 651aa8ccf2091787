"""Building pieces of IMAP responses: strings, flag lists, dates, mailbox names, sets.

This module owns the choice between atom, quoted string and literal for every string
courriel sends (RFC 9051 §4.3). Everything returns ``bytes`` (or ``str`` for number
sets, which are pure ASCII and embedded in response codes) and never raises on any
``str`` input.

Invariants:
    * A quoted string never contains CR, LF or NUL, and never 8-bit octets unless the
      client enabled ``UTF8=ACCEPT`` (RFC 9051 §4.3, RFC 6855 §3); anything else goes
      as a literal ``{n}\\r\\n...``.
    * Inside quotes only ``\\`` and ``"`` are escaped (RFC 9051 §9 ``quoted-specials``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from courriel.protocols.imap.utf7 import encode_mutf7

__all__ = [
    "astring",
    "flag_list",
    "internal_date",
    "literal",
    "mailbox",
    "nstring",
    "number_set",
    "quoted_or_literal",
    "string",
]

# RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials
# ("(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]"); ASTRING-CHAR adds "]".
_ASTRING_SAFE = re.compile(rb"[!#$&'+,\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+")
# Octets that force a literal, by (utf8, escape): CR, LF and NUL always; 8-bit unless
# UTF8=ACCEPT; '"' and '\' when escaping is not wanted.
_LITERAL_IF = {
    (False, True): re.compile(rb"[\x00\r\n\x80-\xff]"),
    (True, True): re.compile(rb"[\x00\r\n]"),
    (False, False): re.compile(rb'[\x00\r\n\x80-\xff"\\]'),
    (True, False): re.compile(rb'[\x00\r\n"\\]'),
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """A literal: ``{n}\\r\\n`` then the octets (RFC 9051 §4.3).

    Args:
        data: the octets.
        binary: send RFC 3516's ``~{n}`` literal8 form.
    """
    prefix = b"~{" if binary else b"{"
    return prefix + str(len(data)).encode("ascii") + b"}\r\n" + data


def quoted_or_literal(data: bytes, *, utf8: bool = False, escape: bool = True) -> bytes:
    """``data`` as a quoted string when it may be one, else as a literal.

    Args:
        data: the octets.
        utf8: 8-bit octets may be quoted (``UTF8=ACCEPT``).
        escape: quote ``"`` and ``\\`` with a backslash; when False a string holding
            either goes as a literal (Dovecot 2.3 does so in ENVELOPE and
            BODYSTRUCTURE, which the differential tests compare byte for byte).
    """
    if _LITERAL_IF[utf8, escape].search(data):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _octets(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogateescape")


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An RFC 9051 ``string``: quoted, or a literal when it has CR, LF, NUL or 8-bit.

    Args:
        value: text (encoded as UTF-8) or raw octets.
        utf8: the client enabled ``UTF8=ACCEPT``, so 8-bit text may be quoted.
    """
    return quoted_or_literal(_octets(value), utf8=utf8)


def astring(s: str, *, utf8: bool = False) -> bytes:
    """An RFC 9051 ``astring``: a bare atom when every character allows it.

    ``NIL`` is always quoted so that it is not read as the NIL token.
    """
    data = _octets(s)
    if _ASTRING_SAFE.fullmatch(data) and data.upper() != b"NIL":
        return data
    return quoted_or_literal(data, utf8=utf8)


def nstring(value: bytes | str | None, *, utf8: bool = False) -> bytes:
    """An RFC 9051 ``nstring``: ``NIL`` for None, else :func:`string`."""
    if value is None:
        return b"NIL"
    return string(value, utf8=utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    """A parenthesised flag list, ``(\\Seen foo)`` (RFC 9051 §7.5.2 FLAGS).

    Flags and keywords are atoms by construction (the parser accepts nothing else),
    so they are written as they are.
    """
    return b"(" + b" ".join(f.encode("utf-8", "surrogateescape") for f in flags) + b")"


def internal_date(dt: datetime) -> bytes:
    """An RFC 9051 §9 ``date-time``: ``"17-Jul-1996 02:44:25 -0700"``.

    A naive ``dt`` is taken as UTC. The day is space-padded to two characters
    (``date-day-fixed``).
    """
    offset = dt.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    text = (
        f'"{dt.day:2d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} '
        f'{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{hours:02d}{mins:02d}"'
    )
    return text.encode("ascii")


def mailbox(name: str, *, utf8: bool) -> bytes:
    """A mailbox name as an astring (RFC 9051 §5.1).

    ``INBOX`` in any case is sent as ``INBOX``. Without ``UTF8=ACCEPT`` the name is
    modified UTF-7 (RFC 3501 §5.1.3); with it, UTF-8 (RFC 6855 §3).
    """
    if name.upper() == "INBOX":
        return b"INBOX"
    wire = name if utf8 else encode_mutf7(name)
    return astring(wire, utf8=utf8)


def number_set(numbers: Iterable[int]) -> str:
    """Compress numbers into an RFC 9051 ``sequence-set``: ``1:3,5,8:10``.

    Duplicates are dropped and the numbers sorted; an empty input gives ``""``.
    """
    ordered = sorted(set(numbers))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        start = end = ordered[i]
        while i + 1 < len(ordered) and ordered[i + 1] == end + 1:
            i += 1
            end = ordered[i]
        parts.append(str(start) if start == end else f"{start}:{end}")
        i += 1
    return ",".join(parts)
