"""Token reading for one framed IMAP command (RFC 9051 §9, RFC 3501 §9).

This module owns :class:`Cursor`, which walks a command that the framer in
:mod:`courriel.protocols.imap.parser` has already cut into line parts and literals, and
reads the grammar's tokens from it: atoms, quoted strings, literals, numbers, sequence
sets, dates, flags and mailbox names. It scans with compiled patterns anchored at an
index, never over the whole buffer.

Invariants:
    * ``parts[i]`` ends with the literal marker (``{n}``, ``{n+}``, ``~{n}``) whose octets
      are ``literals[i]``; the last part ends the command. A literal is only read where
      the grammar allows a string, and only when its marker ends its part.
    * The only exception raised is :class:`courriel.errors.SyntaxProblem`, whose
      ``public`` text says what was wrong ("Invalid sequence set").
    * Quoted strings and atoms are ASCII unless ``utf8`` (RFC 6855 §3); NUL is refused
      everywhere except in a literal8 (RFC 3516 §4.1).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import TypeVar

from courriel.errors import SyntaxProblem
from courriel.protocols.imap.types import STAR, SeqSet
from courriel.protocols.imap.utf7 import decode_mutf7

__all__ = ["MAX_MODSEQ", "MAX_NUMBER", "Cursor", "canonical_flag"]

T = TypeVar("T")

# RFC 9051 §9: number is an unsigned 32-bit integer; mod-sequence-value is 63 bits
# (RFC 7162 §7).
MAX_NUMBER = 4294967295
MAX_MODSEQ = 9223372036854775807

# RFC 9051 §9: ATOM-CHAR is any CHAR except atom-specials
# ("(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials).
_ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\\]]+")
# ASTRING-CHAR = ATOM-CHAR / resp-specials
_ASTRING_ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\]+")
# list-char = ATOM-CHAR / list-wildcards / resp-specials (RFC 9051 §9 list-mailbox)
_LIST_ATOM = re.compile(rb"[^\x00-\x20\x7f-\xff(){\"\\]+")
# RFC 6855 §3: after ENABLE UTF8=ACCEPT, mailbox names and strings may be UTF-8; these
# variants also take 8-bit octets in astring atoms (checked as UTF-8 when decoded).
_ASTRING_ATOM_8 = re.compile(rb"[^\x00-\x20\x7f(){%*\"\\]+")
_LIST_ATOM_8 = re.compile(rb"[^\x00-\x20\x7f(){\"\\]+")
_DIGITS = re.compile(rb"[0-9]+")
_LITERAL = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}")
_QUOTED_STOP = re.compile(rb"[\"\\]")
_QUOTED_BAD = re.compile(rb"[\x00\r\n]")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")
_SEQ_CHARS = re.compile(rb"[0-9*:,]+")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
# RFC 9051 §9 date-time: DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
# RFC 9051 §2.3.2 system flags, in their canonical spelling (RFC 3501 adds \Recent).
_SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}

_SP, _LPAREN, _RPAREN, _DQUOTE, _LBRACE, _TILDE, _BACKSLASH = 32, 40, 41, 34, 123, 126, 92
_DOLLAR = 36  # RFC 5182 §3 seq-last-command


def canonical_flag(flag: str) -> str:
    """The canonical spelling of a system flag (``\\SEEN`` → ``\\Seen``); others as given."""
    return _SYSTEM_FLAGS.get(flag.upper(), flag) if flag.startswith("\\") else flag


class Cursor:
    """A reading position in one framed command.

    Args:
        parts: the command's line parts, CRLF removed.
        literals: the octets of the literal announced at the end of each part but the last.
        utf8: RFC 6855 UTF8=ACCEPT is enabled: UTF-8 mailbox names and quoted strings.
    """

    __slots__ = ("_buf", "_idx", "_literals", "_parts", "_pos", "utf8")

    def __init__(self, parts: list[bytes], literals: list[bytes], *, utf8: bool) -> None:
        self._parts = parts
        self._literals = literals
        self._idx = 0
        self._buf = parts[0]
        self._pos = 0
        self.utf8 = utf8

    # -- position --------------------------------------------------------------------

    def peek(self) -> int:
        """The next octet, or -1 at the end of the command."""
        pos, buf = self._pos, self._buf
        return buf[pos] if pos < len(buf) else -1

    def at_end(self) -> bool:
        """True when the whole command has been read."""
        return self._pos >= len(self._buf) and self._idx == len(self._parts) - 1

    def expect_end(self) -> None:
        """Fail unless the command has been read to its end."""
        if not self.at_end():
            raise SyntaxProblem("Unexpected extra arguments")

    def expect(self, octet: int, what: str) -> None:
        """Consume ``octet`` or fail with ``what`` (such as ``"Expected ("``)."""
        pos, buf = self._pos, self._buf
        if pos >= len(buf) or buf[pos] != octet:
            raise SyntaxProblem("Missing argument" if self.at_end() else what)
        self._pos = pos + 1

    def accept(self, octet: int) -> bool:
        """Consume ``octet`` if it is next; say whether it was."""
        pos, buf = self._pos, self._buf
        if pos < len(buf) and buf[pos] == octet:
            self._pos = pos + 1
            return True
        return False

    def sp(self) -> None:
        """Consume the single space between arguments."""
        self.expect(_SP, "Expected a space")

    def accept_sp(self) -> bool:
        """Consume a space if one is next."""
        return self.accept(_SP)

    def consume(self, pattern: re.Pattern[bytes]) -> re.Match[bytes] | None:
        """Match ``pattern`` at the cursor and consume the match, if there is one."""
        m = pattern.match(self._buf, self._pos)
        if m is not None:
            self._pos = m.end()
        return m

    def rest_of_part(self) -> bytes:
        """The unread octets of the current part (the whole rest of a one-line command)."""
        return self._buf[self._pos :]

    def lookahead(self, pattern: re.Pattern[bytes]) -> str:
        """The upper-cased match of ``pattern`` at the cursor, not consumed ("" if none)."""
        m = pattern.match(self._buf, self._pos)
        return m.group().decode("ascii").upper() if m is not None else ""

    # -- atoms and numbers -----------------------------------------------------------

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        m = pattern.match(self._buf, self._pos)
        if m is None:
            raise SyntaxProblem("Missing argument" if self.at_end() else what)
        self._pos = m.end()
        return m[0]

    def atom(self, what: str = "Invalid atom") -> str:
        """An RFC 9051 ``atom`` (ASCII), as sent."""
        return self._match(_ATOM, what).decode("ascii")

    def upper_atom(self, what: str = "Invalid atom") -> str:
        """An atom, upper-cased (for keywords the grammar makes case-insensitive)."""
        return self._match(_ATOM, what).decode("ascii").upper()

    def raw(self, pattern: re.Pattern[bytes], what: str) -> str:
        """The match of ``pattern`` at the cursor, as sent (ASCII patterns only)."""
        return self._match(pattern, what).decode("ascii")

    def word(self, pattern: re.Pattern[bytes], what: str) -> str:
        """The upper-cased match of ``pattern`` at the cursor."""
        return self._match(pattern, what).decode("ascii").upper()

    def number(self, *, maximum: int = MAX_NUMBER, nonzero: bool = False) -> int:
        """An RFC 9051 ``number`` (or ``nz-number``), at most ``maximum``."""
        digits = self._match(_DIGITS, "Expected a number")
        value = int(digits) if len(digits) <= 20 else maximum + 1
        if value > maximum or (nonzero and value == 0):
            raise SyntaxProblem("Invalid number")
        return value

    def modseq(self, *, zero: bool = False) -> int:
        """An RFC 7162 ``mod-sequence-value`` (``mod-sequence-valzer`` with ``zero``)."""
        return self.number(maximum=MAX_MODSEQ, nonzero=not zero)

    # -- strings ---------------------------------------------------------------------

    def literal(self, *, binary_ok: bool = False) -> tuple[bytes, bool]:
        """A literal's octets, and whether it was a literal8 (``~{n}``, RFC 3516 §4.1)."""
        m = _LITERAL.match(self._buf, self._pos)
        if m is None or m.end() != len(self._buf) or self._idx >= len(self._literals):
            raise SyntaxProblem("Invalid literal")
        binary = bool(m.group(1))
        if binary and not binary_ok:
            raise SyntaxProblem("Literal8 is not allowed here")
        data = self._literals[self._idx]
        if not binary and b"\x00" in data:
            raise SyntaxProblem("NUL octet in a literal")
        self._idx += 1
        self._buf = self._parts[self._idx]
        self._pos = 0
        return data, binary

    def _quoted(self) -> bytes:
        buf, i = self._buf, self._pos + 1
        out = bytearray()
        while True:
            stop = _QUOTED_STOP.search(buf, i)
            if stop is None:
                raise SyntaxProblem("Unterminated quoted string")
            k = stop.start()
            out += buf[i:k]
            if buf[k] == _DQUOTE:
                break
            # RFC 9051 §9 quoted-specials: only \" and \\ may be escaped.
            if k + 1 >= len(buf) or buf[k + 1] not in (_DQUOTE, _BACKSLASH):
                raise SyntaxProblem("Invalid escape in a quoted string")
            out.append(buf[k + 1])
            i = k + 2
        self._pos = k + 1
        if _QUOTED_BAD.search(out) is not None:
            raise SyntaxProblem("Invalid character in a quoted string")
        if not self.utf8 and _EIGHT_BIT.search(out) is not None:
            raise SyntaxProblem("8-bit character in a quoted string")
        return bytes(out)

    def string_bytes(self) -> bytes:
        """An RFC 9051 ``string``: quoted or literal."""
        c = self.peek()
        if c == _DQUOTE:
            return self._quoted()
        if c == _LBRACE:
            return self.literal()[0]
        raise SyntaxProblem("Missing argument" if c < 0 else "Expected a string")

    def astring_bytes(self, *, wildcards: bool = False) -> bytes:
        """An ``astring`` (atom with ``]`` allowed, or string), as octets.

        With ``wildcards``, a LIST ``list-mailbox``: the atom may also hold ``%`` and ``*``.
        """
        c = self.peek()
        if c in (_DQUOTE, _LBRACE):
            return self.string_bytes()
        if wildcards:
            pattern = _LIST_ATOM_8 if self.utf8 else _LIST_ATOM
        else:
            pattern = _ASTRING_ATOM_8 if self.utf8 else _ASTRING_ATOM
        return self._match(pattern, "Expected a string")

    def string(self) -> str:
        """A ``string`` as text."""
        return _text(self.string_bytes())

    def astring(self) -> str:
        """An ``astring`` as text."""
        return _text(self.astring_bytes())

    def nstring(self) -> str | None:
        """An ``nstring``: None for NIL."""
        if self.peek() not in (_DQUOTE, _LBRACE):
            if self.upper_atom("Expected a string or NIL") != "NIL":
                raise SyntaxProblem("Expected a string or NIL")
            return None
        return self.string()

    def mailbox(self) -> str:
        """A mailbox name, decoded (mUTF-7, or UTF-8 after ENABLE UTF8=ACCEPT); INBOX folded."""
        return self._decode_name(self.astring_bytes())

    def list_mailbox(self) -> str:
        """A LIST ``list-mailbox`` (wildcards allowed), decoded like a mailbox name."""
        return self._decode_name(self.astring_bytes(wildcards=True))

    def _decode_name(self, raw: bytes) -> str:
        if b"\x00" in raw:
            raise SyntaxProblem("NUL octet in a mailbox name")
        if self.utf8:
            # RFC 6855 §3: after ENABLE UTF8=ACCEPT, mailbox names are UTF-8.
            name = _text(raw)
        else:
            try:
                name = decode_mutf7(raw.decode("ascii"))
            except UnicodeDecodeError:
                raise SyntaxProblem("Mailbox name is not valid modified UTF-7") from None
        # RFC 9051 §5.1: INBOX is case-insensitive; only the whole name folds.
        return "INBOX" if len(name) == 5 and name.upper() == "INBOX" else name

    # -- structured values -----------------------------------------------------------

    def seqset(self, *, star: bool = True, saved: bool = False) -> SeqSet:
        """An RFC 9051 ``sequence-set`` (``*`` as STAR; 0 is invalid).

        With ``saved``, RFC 5182 §3's ``seq-last-command`` ``$`` is accepted too, alone.
        """
        if saved and self.accept(_DOLLAR):
            return SeqSet((), saved=True)
        raw = self._match(_SEQ_CHARS, "Invalid sequence set")
        ranges: list[tuple[int, int]] = []
        for item in raw.split(b","):
            bounds = item.split(b":")
            if len(bounds) > 2:
                raise SyntaxProblem("Invalid sequence set")
            low = _seq_number(bounds[0], star)
            ranges.append((low, _seq_number(bounds[1], star) if len(bounds) == 2 else low))
        return SeqSet(tuple(ranges))

    def parenthesised(self, item: Callable[[], T], *, empty: bool = False) -> tuple[T, ...]:
        """``"(" item *(SP item) ")"``; with ``empty``, ``"()"`` is allowed too."""
        self.expect(_LPAREN, "Expected (")
        if empty and self.accept(_RPAREN):
            return ()
        items = [item()]
        accept = self.accept
        while not accept(_RPAREN):
            self.expect(_SP, "Expected a space")
            items.append(item())
        return tuple(items)

    def flag(self) -> str:
        """A flag: ``\\`` atom (system flags in canonical spelling) or a keyword atom."""
        if self.accept(_BACKSLASH):
            return canonical_flag("\\" + self.atom("Invalid flag"))
        return self.atom("Invalid flag")

    def flag_list(self) -> tuple[str, ...]:
        """RFC 9051 ``flag-list``: ``"(" [flag *(SP flag)] ")"``."""
        return self.parenthesised(self.flag, empty=True)

    def date(self) -> date:
        """RFC 9051 ``date``: ``d-Mon-yyyy``, quoted or not."""
        quoted = self.accept(_DQUOTE)
        m = _DATE.match(self._buf, self._pos)
        if m is None:
            raise SyntaxProblem("Invalid date")
        self._pos = m.end()
        if quoted:
            self.expect(_DQUOTE, "Invalid date")
        month = _MONTHS.get(m.group(2).decode("ascii").upper())
        try:
            return date(int(m.group(3)), month or 0, int(m.group(1)))
        except ValueError:
            raise SyntaxProblem("Invalid date") from None

    def date_time(self) -> datetime:
        """RFC 9051 ``date-time``: ``"dd-Mon-yyyy hh:mm:ss +zzzz"``, timezone-aware."""
        m = _DATE_TIME.match(self._buf, self._pos)
        if m is None:
            raise SyntaxProblem("Invalid date-time")
        self._pos = m.end()
        day, mon, year, hh, mm, ss, sign, zh, zm = (g.decode("ascii") for g in m.groups())
        offset = timedelta(hours=int(zh), minutes=int(zm))
        try:
            tz = timezone(-offset if sign == "-" else offset)
            return datetime(
                int(year), _MONTHS.get(mon.upper(), 0), int(day), int(hh), int(mm), int(ss),
                tzinfo=tz,
            )  # fmt: skip
        except ValueError:
            raise SyntaxProblem("Invalid date-time") from None


def _seq_number(raw: bytes, star: bool) -> int:
    if raw == b"*" and star:
        return STAR
    if not raw.isdigit() or len(raw) > 10 or raw[0] == 0x30 or int(raw) > MAX_NUMBER:
        raise SyntaxProblem("Invalid sequence set")
    return int(raw)


def _text(raw: bytes) -> str:
    if b"\x00" in raw:
        raise SyntaxProblem("NUL octet in a string")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SyntaxProblem("String is not valid UTF-8") from None
