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

Speed: a SEARCH tests every message of the folder, so :func:`compile_key` turns a key
into nested closures once per command, and they read one mutable :class:`Probe` that
the caller refills per message: no object is built per message, and flag tests fold
case only when the exact spelling is not there.

Invariant: pure; never raises for a key the parser can produce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.types import SearchKey

__all__ = [
    "ADDRESS_FIELDS",
    "Candidate",
    "Probe",
    "compile_key",
    "matches",
    "needs_message",
    "only_fact",
]

_NO_DATE = date(1970, 1, 1)
ADDRESS_FIELDS = frozenset({"FROM", "TO", "CC", "BCC"})  # searched in their address form
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


class Probe:
    """The message under test: refilled by the caller for each message of a search."""

    __slots__ = ("flags", "internal_date", "message", "modseq", "recent", "seq", "size", "uid")

    def __init__(self) -> None:
        self.seq = 0
        self.uid = 0
        self.flags: frozenset[str] = frozenset()
        self.recent = False
        self.size = 0
        self.internal_date = datetime(1970, 1, 1)
        self.modseq = 0
        self.message: ParsedMessage | None = None  # content, when a key needs it


_FACT_OF = {"ALL": "", "FLAG": "flags", "BEFORE": "date", "ON": "date", "SINCE": "date"}


def only_fact(key: SearchKey) -> str | None:
    """``"flags"`` or ``"date"`` when ``key`` looks at nothing but the flags, or nothing
    but the internal date, of a message (``""`` for ALL alone); None otherwise."""
    if key.op in ("AND", "OR", "NOT"):
        facts = {only_fact(k) for k in key.keys} - {""}
        if None in facts or len(facts) > 1:
            return None
        return facts.pop() if facts else ""
    return _FACT_OF.get(key.op)


def needs_message(key: SearchKey) -> bool:
    """True when evaluating ``key`` needs the message content (a :class:`ParsedMessage`)."""
    if key.op in _CONTENT_OPS:
        return True
    return any(needs_message(k) for k in key.keys)


Test = Callable[[Probe], bool]
_EMPTY = ParsedMessage.parse(b"")


def _message(p: Probe) -> ParsedMessage:
    # The caller must load content when needs_message() says so; an empty message else.
    return _EMPTY if p.message is None else p.message


def _flag_test(flag: str, negate: bool) -> Test:
    folded = flag.casefold()

    def test(p: Probe) -> bool:
        flags = p.flags
        found = flag in flags or any(f.casefold() == folded for f in flags)
        return found != negate

    return test


def _header_test(key: SearchKey) -> Test:
    name, needle = key.field, key.text.casefold()
    address = name in ADDRESS_FIELDS

    def test(p: Probe) -> bool:
        return any(needle in value for value in _message(p).search_values(name, address=address))

    return test


def _day_test(key: SearchKey, day_of: Callable[[Probe], date | None]) -> Test:
    wanted = key.day
    if wanted is None:
        return lambda p: False
    if key.op.endswith("BEFORE"):
        return lambda p: (d := day_of(p)) is not None and d < wanted
    if key.op.endswith("ON"):
        return lambda p: day_of(p) == wanted
    return lambda p: (d := day_of(p)) is not None and d >= wanted


def _internal_day(p: Probe) -> date:
    # The internal date's own zone: the day the client saw in INTERNALDATE.
    return p.internal_date.date()


def _sent_day(p: Probe) -> date:
    # Without a readable Date: field the message counts as sent on 1 January 1970, so
    # SENTBEFORE matches it, as in Dovecot.
    return _message(p).sent_date() or _NO_DATE


def _set_test(key: SearchKey, largest: int, number: Callable[[Probe], int]) -> Test:
    seqset = key.seqset
    if seqset is None:
        return lambda p: False
    return lambda p: seqset.contains(number(p), largest)


def _all(tests: list[Test]) -> Test:
    return lambda p: all(t(p) for t in tests)


def _compile_group(key: SearchKey, largest_seq: int, largest_uid: int) -> Test | None:
    tests = [compile_key(k, largest_seq=largest_seq, largest_uid=largest_uid) for k in key.keys]
    if key.op == "AND":
        return tests[0] if len(tests) == 1 else _all(tests)
    if key.op == "OR":
        return lambda p: any(t(p) for t in tests)
    if key.op == "NOT":
        inner = _all(tests)
        return lambda p: not inner(p)
    return None


_SEEN = _flag_test("\\Seen", False)

_SIMPLE: dict[str, Test] = {
    "ALL": lambda p: True,
    "RECENT": lambda p: p.recent,
    # RFC 3501 §6.4.4: NEW is (RECENT UNSEEN); OLD is NOT RECENT.
    "NEW": lambda p: p.recent and not _SEEN(p),
    "OLD": lambda p: not p.recent,
}


def compile_key(key: SearchKey, *, largest_seq: int, largest_uid: int) -> Test:
    """A predicate over a :class:`Probe` that says whether it satisfies ``key``.

    Args:
        key: the search key (usually an ``AND`` of the command's criteria).
        largest_seq: the number ``*`` stands for in a SEQ set (the message count).
        largest_uid: the number ``*`` stands for in a UID set (the largest UID in use).
    """
    op, number = key.op, key.number
    group = _compile_group(key, largest_seq, largest_uid)
    if group is not None:
        return group
    if op in _SIMPLE:
        return _SIMPLE[op]
    if op == "FLAG":
        return _flag_test(key.text, key.negate)
    if op == "HEADER":
        return _header_test(key)
    if op in ("BODY", "TEXT"):
        needle, headers = key.text, op == "TEXT"
        return lambda p: _message(p).contains_text(needle, include_headers=headers)
    if op in ("BEFORE", "ON", "SINCE"):
        return _day_test(key, _internal_day)
    if op in ("SENTBEFORE", "SENTON", "SENTSINCE"):
        return _day_test(key, _sent_day)
    if op in ("LARGER", "SMALLER"):
        larger = op == "LARGER"
        return lambda p: p.size > number if larger else p.size < number
    if op == "SEQ":
        return _set_test(key, largest_seq, lambda p: p.seq)
    if op == "UID":
        return _set_test(key, largest_uid, lambda p: p.uid)
    if op == "MODSEQ":
        return lambda p: p.modseq >= number
    return lambda p: False


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
    probe = Probe()
    probe.seq, probe.uid, probe.flags, probe.recent = c.seq, c.uid, c.flags, c.recent
    probe.size, probe.internal_date, probe.modseq = c.size, c.internal_date, c.modseq
    probe.message = message
    return compile_key(key, largest_seq=largest_seq, largest_uid=largest_uid)(probe)
