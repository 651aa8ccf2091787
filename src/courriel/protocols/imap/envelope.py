"""The IMAP ENVELOPE structure (RFC 9051 §7.5.2) of a message header.

This module owns address-list parsing for ENVELOPE (RFC 5322 §3.4 with the obsolete
forms of §4.4 tolerated) and the envelope's wire form. It follows Dovecot, the
reference the differential tests compare with:

    * Date, Subject, In-Reply-To and Message-ID are the raw field text (line breaks of
      folding removed); display names are the raw phrase with quoted strings unquoted,
      and RFC 2047 encoded-words are passed through undecoded.
    * When a field occurs more than once, the last one counts.
    * A mailbox without ``@domain`` gets the host ``MISSING_DOMAIN``; an address without
      a local part gets ``MISSING_MAILBOX`` (Dovecot's "fill missing" placeholders).
    * An address with no phrase but a trailing comment uses the comment as its name.

Invariant: never raises; a field that yields no address is ``NIL``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from courriel.protocols.imap import encode
from courriel.protocols.imap.mimeparse import Field, Lexer, field_raw, field_text

__all__ = ["Address", "envelope", "format_addresses", "parse_addresses", "subject_for_humans"]

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"

# RFC 5322 §3.2.3: specials end an atom; "." is allowed inside phrases (obs-phrase).
_PHRASE_STOPS = frozenset('()<>@,;:\\"[] \t\r\n')
_ATOM_STOPS = frozenset('()<>@,;:\\".[] \t\r\n')


class Address(NamedTuple):
    """One RFC 9051 ``address``: a mailbox, or a group start/end marker (host None)."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


GROUP_END = Address(None, None, None, None)


def _phrase(lex: Lexer) -> str:
    """Words (atoms, dots, quoted strings) up to a special, joined by single spaces."""
    words: list[str] = []
    while True:
        lex.skip_cfws()
        c = lex.peek()
        if c == '"':
            words.append(lex.quoted())
        elif c and c not in _PHRASE_STOPS:
            words.append(lex.token(_PHRASE_STOPS))
        else:
            return " ".join(words)


def _dot_atom(lex: Lexer, stops: frozenset[str]) -> str:
    """A local part or domain: atoms and quoted strings joined by dots."""
    out: list[str] = []
    while True:
        lex.skip_cfws()
        c = lex.peek()
        if c == '"':
            out.append(lex.quoted())
        elif c == "[":
            end = lex.text.find("]", lex.pos)
            stop = len(lex.text) if end < 0 else end + 1
            out.append(lex.text[lex.pos : stop])
            lex.pos = stop
        elif c and c not in stops:
            out.append(lex.token(stops))
        else:
            return "".join(out)
        lex.skip_cfws()
        if lex.peek() != ".":
            return "".join(out)
        lex.pos += 1
        out.append(".")


def _addr_spec(lex: Lexer) -> tuple[str, str]:
    local = _dot_atom(lex, _ATOM_STOPS)
    lex.skip_cfws()
    domain = ""
    if lex.peek() == "@":
        lex.pos += 1
        domain = _dot_atom(lex, _ATOM_STOPS)
    return local or MISSING_MAILBOX, domain or MISSING_DOMAIN


def _angle(lex: Lexer, name: str) -> Address:
    """``<[route:]addr-spec>``; the cursor is on ``<``."""
    lex.pos += 1
    lex.skip_cfws()
    adl: str | None = None
    if lex.peek() == "@":
        colon = lex.text.find(":", lex.pos)
        close = lex.text.find(">", lex.pos)
        if colon >= 0 and (close < 0 or colon < close):
            adl = "".join(lex.text[lex.pos : colon].split())
            lex.pos = colon + 1
    mailbox, host = _addr_spec(lex)
    lex.skip_cfws()
    if lex.peek() == ">":
        lex.pos += 1
    return Address(name or None, adl, mailbox, host)


def _mailbox(lex: Lexer) -> Address | None:
    """One mailbox (name-addr or addr-spec) or None when nothing is left to read."""
    start = lex.pos
    lex.comment = None
    name = _phrase(lex)
    c = lex.peek()
    if c == "<":
        return _angle(lex, name)
    if c in ("@", "."):
        # Only a comment after the local part starts can stand for the name.
        lex.pos = start
        lex.skip_cfws()
        lex.comment = None
        mailbox, host = _addr_spec(lex)
        lex.skip_cfws()
        return Address(lex.comment or None, None, mailbox, host)
    if name:
        return Address(None, None, name, MISSING_DOMAIN)
    return None


def _skip_junk(lex: Lexer, stops: str) -> None:
    """Skip to the next character in ``stops`` (recovering from broken syntax)."""
    while not lex.at_end() and lex.peek() not in stops:
        if lex.peek() == '"':
            lex.quoted()
        else:
            lex.pos += 1


# The common shapes, ``Name <local@domain>`` and ``local@domain``, read without the
# lexer; anything with quotes, comments, groups, routes or literals takes the full path.
_HARD = re.compile(r'["(\\:;\[\]]')
_DOT_ATOM = r"[^<>@\s.]+(?:\.[^<>@\s.]+)*"
_SIMPLE = re.compile(
    rf"[ \t]*(?:([^<>@]*?)[ \t]*<[ \t]*({_DOT_ATOM})@({_DOT_ATOM})[ \t]*>"
    rf"|({_DOT_ATOM})@({_DOT_ATOM}))[ \t]*"
)


def _simple_addresses(text: str) -> list[Address] | None:
    elements = text.split(",")
    out: list[Address] = []
    for i, element in enumerate(elements):
        if not element.strip(" \t"):
            # An empty element before a comma is a missing mailbox; after the last
            # comma it is nothing.
            if i < len(elements) - 1:
                out.append(Address(None, None, MISSING_MAILBOX, MISSING_DOMAIN))
            continue
        m = _SIMPLE.fullmatch(element)
        if m is None:
            return None
        if m.group(2) is not None:
            name = " ".join(m.group(1).split())
            out.append(Address(name or None, None, m.group(2), m.group(3)))
        else:
            out.append(Address(None, None, m.group(4), m.group(5)))
    return out


def parse_addresses(text: str) -> list[Address]:
    """The addresses of an address-list field value (RFC 5322 §3.4), groups flattened.

    A group becomes its start marker ``(NIL NIL name NIL)``, its members and the end
    marker ``(NIL NIL NIL NIL)`` (RFC 9051 §7.5.2).
    """
    if not _HARD.search(text):
        simple = _simple_addresses(text)
        if simple is not None:
            return simple
    return _parse_addresses(text)


def _parse_addresses(text: str) -> list[Address]:
    lex = Lexer(text)
    out: list[Address] = []
    in_group = False
    empty = True  # nothing read since the last separator
    while True:
        lex.skip_cfws()
        c = lex.peek()
        if not c:
            break
        if c == ",":
            # An empty list element is a mailbox with nothing filled in (Dovecot).
            if empty:
                out.append(Address(None, None, MISSING_MAILBOX, MISSING_DOMAIN))
            lex.pos += 1
            empty = True
            continue
        empty = False
        if c == ";" and in_group:
            lex.pos += 1
            out.append(GROUP_END)
            in_group = False
            continue
        mark = lex.pos
        if not in_group:
            group = _phrase(lex)
            if lex.peek() == ":":
                lex.pos += 1
                out.append(Address(None, None, group, None))
                in_group = True
                empty = True
                continue
            lex.pos = mark
        address = _mailbox(lex)
        if address is not None:
            out.append(address)
        _skip_junk(lex, ",;" if in_group else ",")
        if lex.pos == mark:
            lex.pos += 1
    if in_group:
        out.append(GROUP_END)
    return out


def subject_for_humans(raw: str) -> bytes:
    """The Subject as Dovecot writes it: runs of blanks and line breaks become one
    space, leading and trailing blanks go, NUL becomes 0x80; a string changed that way,
    or holding ``"``, ``\\`` or 8-bit octets, is sent as a literal."""
    octets = raw.encode("latin-1")
    words = [w for w in re.split(rb"[ \t\r\n]+", octets) if w]
    clean = b" ".join(words).replace(b"\x00", b"\x80")
    if clean == octets and not re.search(rb'["\\\x80-\xff]', octets):
        return b'"' + octets + b'"'
    if not clean:
        return b'""'
    return encode.literal(clean)


# Anything but RFC 5322 atext (and "." for names) makes Dovecot quote a name or
# local part when it writes an address back.
_SPECIALS = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\uffff]")
_SPECIALS_NO_DOT = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\x80-\uffff]")


def _maybe_quote(text: str, pattern: re.Pattern[str]) -> str:
    if "=?" in text or not pattern.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_addresses(addresses: list[Address]) -> str:
    """An address list written back as text, the form Dovecot searches FROM/TO/CC/BCC in.

    ``mailbox@host``, ``name <mailbox@host>`` (names with specials quoted, encoded
    words left as they are), and ``group: members;``.
    """
    out: list[str] = []
    in_group = False
    for a in addresses:
        sep = "" if not out or out[-1].endswith(": ") else ", "
        if a.host is None:
            if not in_group:
                out.append(sep + _maybe_quote(a.mailbox or "", _SPECIALS) + ": ")
            elif out and out[-1].endswith(": "):
                out[-1] = out[-1][:-1] + ";"  # an empty group is "name:;"
            else:
                out.append(";")
            in_group = not in_group
            continue
        spec = _maybe_quote(a.mailbox or "", _SPECIALS_NO_DOT) + "@" + a.host
        if a.name or a.adl:
            name = _maybe_quote(a.name, _SPECIALS) + " " if a.name else ""
            route = a.adl + ":" if a.adl else ""
            spec = f"{name}<{route}{spec}>"
        out.append(sep + spec)
    return "".join(out)


def _nstr(value: str | None) -> bytes:
    if value is None:
        return b"NIL"
    return encode.quoted_or_literal(value.encode("latin-1"), escape=False)


def _addresses(data: bytes, field: Field | None) -> list[Address]:
    return [] if field is None else parse_addresses(field_text(data, field))


def _address_list(addresses: list[Address]) -> bytes:
    """The parenthesised list, or ``b""`` when empty (the caller writes NIL)."""
    if not addresses:
        return b""
    items = (
        b"(" + b" ".join(_nstr(v) for v in (a.name, a.adl, a.mailbox, a.host)) + b")"
        for a in addresses
    )
    return b"(" + b"".join(items) + b")"


def envelope(data: bytes, fields: Sequence[Field]) -> bytes:
    """The ENVELOPE of a header (RFC 9051 §7.5.2), parentheses included.

    Args:
        data: the message octets the ``fields`` point into.
        fields: the header fields of the message (or encapsulated message).
    """
    last: dict[str, Field] = {}
    for f in fields:
        last[f.name] = f

    def text(name: str) -> bytes:
        f = last.get(name)
        return b"NIL" if f is None else _nstr(field_text(data, f))

    def addresses(name: str) -> bytes:
        return _address_list(_addresses(data, last.get(name)))

    from_list = addresses("from")
    subject = last.get("subject")
    parts = [
        text("date"),
        b"NIL" if subject is None else subject_for_humans(field_raw(data, subject)),
        from_list or b"NIL",
        # RFC 9051 §7.5.2: sender and reply-to default to from.
        addresses("sender") or from_list or b"NIL",
        addresses("reply-to") or from_list or b"NIL",
        addresses("to") or b"NIL",
        addresses("cc") or b"NIL",
        addresses("bcc") or b"NIL",
        text("in-reply-to"),
        text("message-id"),
    ]
    return b"(" + b" ".join(parts) + b")"
