"""Evaluating an IMAP search key (RFC 9051 §6.4.4) against one message.

This module owns SEARCH semantics; the session decides which messages to test and
loads their content only when :func:`needs_message` says a key looks inside it.

Choices (as Dovecot makes them):
    * BEFORE, ON and SINCE compare the day of the internal date in the internal date's
      own time zone; SENTBEFORE, SENTON and SENTSINCE the day of the Date: field in its
      own zone (a message without a readable Date: field counts as sent on
      1970-01-01).
    * Flags and keywords compare case-insensitively.
    * HEADER with an empty string matches every message that has the field; string
      matches are case-insensitive substrings of RFC 2047-decoded values whose runs of
      blanks count as one space. FROM, TO, CC and BCC look in the parsed addresses
      written back in one form (``"Doe, Jane" <jane@example.org>``), so an address
      without a domain is found as ``...@MISSING_DOMAIN``.
    * NEW is RECENT and not \\Seen, OLD is not RECENT (RFC 3501 §6.4.4).
    * MODSEQ matches a modseq greater than or equal to the given one (RFC 7162 §3.1.5).

Invariant: pure; never raises for a key the parser can produce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.types import SearchKey

__all__ = ["Candidate", "matches", "needs_message"]

_NO_DATE = date(1970, 1, 1)
_ADDRESS_FIELDS = frozenset({"FROM", "TO", "CC", "BCC"})
_CONTENT_OPS = frozenset(
    {"HEADER", "BODY", "TEXT", "SENTBEFORE", "SENTON", "SENTSINCE"},
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """What the mailbox knows about a message without reading its content."""

    seq: int
    uid: int
    flags: frozenset[str]  # system flags (``\\Seen``) and keywords, as stored
    recent: bool
    size: int  # RFC822.SIZE
    internal_date: datetime
    modseq: int


def needs_message(key: SearchKey) -> bool:
    """True when evaluating ``key`` needs the message content (a :class:`ParsedMessage`)."""
    if key.op in _CONTENT_OPS:
        return True
    return any(needs_message(k) for k in key.keys)


@dataclass(frozen=True, slots=True)
class _Context:
    candidate: Candidate
    message: ParsedMessage | None
    largest_seq: int
    largest_uid: int


def _has_flag(c: Candidate, flag: str) -> bool:
    folded = flag.casefold()
    return any(f.casefold() == folded for f in c.flags)


def _flag(key: SearchKey, ctx: _Context) -> bool:
    return _has_flag(ctx.candidate, key.text) != key.negate


def _header(key: SearchKey, ctx: _Context) -> bool:
    message = _message(ctx)
    if key.field in _ADDRESS_FIELDS:
        values = message.address_values(key.field)
    else:
        values = message.header_values(key.field)
    needle = key.text.casefold()
    return any(needle in value.casefold() for value in values)


def _message(ctx: _Context) -> ParsedMessage:
    if ctx.message is None:
        # The session must load content when needs_message() says so.
        return ParsedMessage.parse(b"")
    return ctx.message


def _day(key: SearchKey, day: date | None) -> bool:
    if day is None or key.day is None:
        return False
    if key.op.endswith("BEFORE"):
        return day < key.day
    if key.op.endswith("ON"):
        return day == key.day
    return day >= key.day


def _internal(key: SearchKey, ctx: _Context) -> bool:
    # The internal date's own zone: the day the client saw in INTERNALDATE.
    return _day(key, ctx.candidate.internal_date.date())


def _sent(key: SearchKey, ctx: _Context) -> bool:
    # Without a readable Date: field the message counts as sent on 1 January 1970, so
    # SENTBEFORE matches it, as in Dovecot.
    return _day(key, _message(ctx).sent_date() or _NO_DATE)


def _seq(key: SearchKey, ctx: _Context) -> bool:
    if key.seqset is None:
        return False
    return key.seqset.contains(ctx.candidate.seq, ctx.largest_seq)


def _uid(key: SearchKey, ctx: _Context) -> bool:
    if key.seqset is None:
        return False
    return key.seqset.contains(ctx.candidate.uid, ctx.largest_uid)


_Eval = Callable[[SearchKey, _Context], bool]

_OPS: dict[str, _Eval] = {
    "ALL": lambda k, x: True,
    "AND": lambda k, x: all(_eval(s, x) for s in k.keys),
    "OR": lambda k, x: any(_eval(s, x) for s in k.keys),
    "NOT": lambda k, x: not all(_eval(s, x) for s in k.keys),
    "FLAG": _flag,
    "RECENT": lambda k, x: x.candidate.recent,
    # RFC 3501 §6.4.4: NEW is (RECENT UNSEEN); OLD is NOT RECENT.
    "NEW": lambda k, x: x.candidate.recent and not _has_flag(x.candidate, "\\Seen"),
    "OLD": lambda k, x: not x.candidate.recent,
    "HEADER": _header,
    "BODY": lambda k, x: _message(x).contains_text(k.text, include_headers=False),
    "TEXT": lambda k, x: _message(x).contains_text(k.text, include_headers=True),
    "BEFORE": _internal,
    "ON": _internal,
    "SINCE": _internal,
    "SENTBEFORE": _sent,
    "SENTON": _sent,
    "SENTSINCE": _sent,
    "LARGER": lambda k, x: x.candidate.size > k.number,
    "SMALLER": lambda k, x: x.candidate.size < k.number,
    "SEQ": _seq,
    "UID": _uid,
    "MODSEQ": lambda k, x: x.candidate.modseq >= k.number,
}


def _eval(key: SearchKey, ctx: _Context) -> bool:
    handler = _OPS.get(key.op)
    return False if handler is None else handler(key, ctx)


def matches(
    key: SearchKey,
    c: Candidate,
    message: ParsedMessage | None,
    *,
    largest_seq: int,
    largest_uid: int,
) -> bool:
    """True when message ``c`` satisfies ``key`` (RFC 9051 §6.4.4).

    Args:
        key: the search key (usually an ``AND`` of the command's criteria).
        c: the message's metadata.
        message: its content; needed only when :func:`needs_message` is True (a key
            that needs content is evaluated against an empty message otherwise).
        largest_seq: the number ``*`` stands for in a SEQ set (the message count).
        largest_uid: the number ``*`` stands for in a UID set (the largest UID in use).
    """
    return _eval(key, _Context(c, message, largest_seq, largest_uid))
