"""The IMAP command parser (sans-I/O): received bytes in, :mod:`types` events out.

This module owns the framing of the client's stream: command lines, synchronising and
non-synchronising literals (RFC 9051 §4.3, RFC 7888), literal8 (RFC 3516), raw lines
(AUTHENTICATE responses, IDLE's DONE) and the size caps. The grammar of a complete
command lives in :mod:`courriel.protocols.imap.grammar`.

Invariants:
    * :meth:`ImapParser.next_event` never raises; junk becomes a :class:`BadCommand`.
    * Memory is bounded: the line parts of one command never exceed ``max_line`` octets
      and its literals ``max_literal``; past either cap the command is answered with
      ``TOOBIG`` at once (a line) or after its announced octets are skipped (a
      non-synchronising literal, RFC 7888 §4), and the rest of the command is skipped.
    * The parser always resynchronises: after a BadCommand the rest of that command,
      including literal octets the client will still send, is dropped, and the next
      command parses normally.
    * A synchronising literal is accepted (``Continue``) only when its size fits and the
      command's tag and verb are valid, so the client never sends octets for a command
      that is refused anyway (RFC 9051 §7.5).
"""

from __future__ import annotations

import enum
import re

from courriel.protocols.imap.grammar import command_head, parse_command, precheck
from courriel.protocols.imap.types import BadCommand, Continue, ParserEvent, RawLine

__all__ = ["LITERAL_MINUS_MAX", "ImapParser"]

# RFC 7888 §5: with LITERAL- only, a non-synchronising literal is at most 4096 octets.
LITERAL_MINUS_MAX = 4096
# A literal marker at the end of a line: "{n}", "{n+}", "~{n}", "~{n+}".
_MARKER = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")
_MARKER_TAIL = 26  # the longest marker: "~{" 20 digits "+}" plus slack
_COMPACT_AT = 65536
_TOO_LONG = "Too long command line"


class _Mode(enum.Enum):
    LINE = "line"  # reading a command line (or a raw line)
    LITERAL = "literal"  # reading the octets of an accepted literal
    DISCARD = "discard"  # dropping the octets of a refused non-synchronising literal
    SKIP = "skip"  # dropping the rest of a refused command, up to its line end


class _Again:
    """Returned by a step that changed mode without producing an event."""


_AGAIN = _Again()


class ImapParser:
    """Frames the client's byte stream into IMAP commands.

    Args:
        max_line: the most octets of command text (literals excluded) in one command.
        max_literal: the most literal octets in one command.
        literal_plus: LITERAL+ is advertised (RFC 7888); otherwise LITERAL-, and a
            non-synchronising literal over 4096 octets is refused.

    Attributes:
        utf8: set by the session after ``ENABLE UTF8=ACCEPT`` (RFC 6855): mailbox names
            are then UTF-8 and quoted strings may hold UTF-8.
    """

    def __init__(
        self,
        *,
        max_line: int = 65536,
        max_literal: int = 64 * 1024 * 1024,
        literal_plus: bool = True,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.literal_plus = literal_plus
        self.utf8 = False
        self._buf = bytearray()
        self._start = 0  # first unconsumed octet of _buf
        self._scan = 0  # where the search for the next LF resumes
        self._raw = False
        self._mode = _Mode.LINE
        self._need = 0  # octets still to read (LITERAL) or drop (DISCARD)
        self._literal = bytearray()
        self._pending: BadCommand | None = None  # sent once DISCARD is done
        self._skip_tail = b""  # the last octets of a skipped line, to spot a marker
        self._reset_command()

    def _reset_command(self) -> None:
        self._parts: list[bytes] = []
        self._literals: list[bytes] = []
        self._line_total = 0
        self._literal_total = 0

    # -- public API ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Add received octets."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Octets held: unparsed input, the current command's parts and literals."""
        held = len(self._buf) - self._start + len(self._literal)
        return held + self._line_total + self._literal_total

    def want_raw_line(self) -> None:
        """Return the next complete line as a :class:`RawLine`, then parse commands again."""
        self._raw = True

    def clear(self) -> None:
        """Drop buffered input and any half-read command (after STARTTLS, RFC 9051 §6.2.1)."""
        self._buf = bytearray()
        self._start = self._scan = 0
        self._raw = False
        self._mode = _Mode.LINE
        self._need = 0
        self._literal = bytearray()
        self._pending = None
        self._skip_tail = b""
        self._reset_command()

    def next_event(self) -> ParserEvent | None:
        """The next event, or None when more data is needed."""
        while True:
            if self._mode is _Mode.LINE:
                event = self._step_line()
            elif self._mode is _Mode.LITERAL:
                event = self._step_literal()
            elif self._mode is _Mode.DISCARD:
                event = self._step_discard()
            else:
                event = self._step_skip()
            if not isinstance(event, _Again):
                self._compact()
                return event

    # -- steps -----------------------------------------------------------------------

    def _compact(self) -> None:
        if self._start >= len(self._buf):
            self._buf.clear()
            self._start = self._scan = 0
        elif self._start >= _COMPACT_AT:
            del self._buf[: self._start]
            self._scan -= self._start
            self._start = 0

    def _step_line(self) -> ParserEvent | _Again | None:
        buf = self._buf
        nl = buf.find(b"\n", self._scan)
        if nl < 0:
            self._scan = len(buf)
            if len(buf) - self._start + self._line_total > self.max_line:
                return self._too_long()
            return None
        end = nl - 1 if nl > self._start and buf[nl - 1] == 0x0D else nl
        line = bytes(buf[self._start : end])
        self._start = self._scan = nl + 1
        if self._raw:
            self._raw = False
            if len(line) > self.max_line:
                return BadCommand(tag=None, text=_TOO_LONG, code="TOOBIG")
            return RawLine(text=line.decode("utf-8", "replace"))
        self._line_total += len(line)
        marker = None
        if line.endswith(b"}"):
            marker = _MARKER.search(line, max(0, len(line) - _MARKER_TAIL))
        if self._line_total > self.max_line:
            bad = self._bad_here(_TOO_LONG, line)
            return self._refuse(bad, marker)
        if marker is None:
            if not self._parts and not line:
                return _AGAIN  # an empty line between commands is ignored
            parts, literals = [*self._parts, line], self._literals
            self._reset_command()
            return parse_command(parts, literals, utf8=self.utf8)
        return self._announce(line, marker)

    def _bad_here(self, text: str, line: bytes) -> BadCommand:
        tag, verb = command_head(self._parts[0] if self._parts else line)
        return BadCommand(tag=tag, text=text, code="TOOBIG", verb=verb)

    def _too_long(self) -> BadCommand:
        """The line has no end within ``max_line``: refuse it now and skip to its end."""
        start = self._start
        if self._raw:
            self._raw = False
            bad = BadCommand(tag=None, text=_TOO_LONG, code="TOOBIG")
        else:
            bad = self._bad_here(_TOO_LONG, bytes(self._buf[start : start + 1024]))
        self._reset_command()
        self._skip_tail = bytes(self._buf[max(start, len(self._buf) - _MARKER_TAIL) :])
        self._start = self._scan = len(self._buf)
        self._mode = _Mode.SKIP
        return bad

    def _announce(self, line: bytes, marker: re.Match[bytes]) -> ParserEvent | _Again:
        """A line ends with a literal marker: accept the literal or refuse the command."""
        first = not self._parts
        self._parts.append(line)
        size = int(marker.group(2))
        sync = not marker.group(3)
        if first:
            bad = precheck(line)
            if bad is not None:
                return self._refuse(bad, marker)
        limit = self.max_literal
        if not sync and not self.literal_plus:
            limit = min(limit, LITERAL_MINUS_MAX)
        if size > limit or self._literal_total + size > self.max_literal:
            return self._refuse(self._bad_here("Literal too big", line), marker)
        self._mode = _Mode.LITERAL
        self._need = size
        return Continue() if sync else _AGAIN

    def _refuse(self, bad: BadCommand, marker: re.Match[bytes] | None) -> ParserEvent | _Again:
        """Drop the command; skip the octets of a non-synchronising literal it announced.

        A synchronising literal that is refused is never sent by the client (it waits
        for a continuation), so the next line starts a new command.
        """
        self._reset_command()
        if marker is None or not marker.group(3):
            return bad
        # RFC 7888 §4: the octets of a refused non-synchronising literal still arrive.
        self._mode = _Mode.DISCARD
        self._need = int(marker.group(2))
        self._pending = bad
        return _AGAIN

    def _step_literal(self) -> ParserEvent | _Again | None:
        take = min(len(self._buf) - self._start, self._need)
        if take == 0 and self._need:
            return None
        self._literal += self._buf[self._start : self._start + take]
        self._start += take
        self._need -= take
        if self._need:
            return None
        self._literals.append(bytes(self._literal))
        self._literal_total += len(self._literal)
        self._literal = bytearray()
        self._scan = self._start
        self._mode = _Mode.LINE
        return _AGAIN

    def _step_discard(self) -> ParserEvent | _Again | None:
        take = min(len(self._buf) - self._start, self._need)
        self._start += take
        self._need -= take
        if self._need:
            return None
        self._scan = self._start
        self._mode = _Mode.SKIP
        self._skip_tail = b""
        pending, self._pending = self._pending, None
        return pending if pending is not None else _AGAIN

    def _step_skip(self) -> _Again | None:
        """Drop the rest of a refused command's line; follow its non-sync literals."""
        buf = self._buf
        nl = buf.find(b"\n", self._scan)
        if nl < 0:
            tail = self._skip_tail + bytes(buf[max(self._start, len(buf) - _MARKER_TAIL) :])
            self._skip_tail = tail[-_MARKER_TAIL:]
            self._start = self._scan = len(buf)
            return None
        tail = self._skip_tail + bytes(buf[max(self._start, nl - _MARKER_TAIL) : nl])
        self._skip_tail = b""
        self._start = self._scan = nl + 1
        marker = _MARKER.search(tail.rstrip(b"\r"))
        if marker is not None and marker.group(3):
            self._mode = _Mode.DISCARD
            self._need = int(marker.group(2))
        else:
            self._mode = _Mode.LINE
        return _AGAIN
