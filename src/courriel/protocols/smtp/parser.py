"""The SMTP wire parser: bytes in, typed events out, no I/O.

The parser has four modes, switched by the session as replies are decided:

* ``COMMAND``: CRLF-terminated command lines, parsed by
  :func:`courriel.protocols.smtp.commands.parse_command`. Every complete line in
  the buffer is returned in turn, so a pipelined packet yields all its commands
  (RFC 2920 §3.1).
* ``LINE``: raw CRLF-terminated lines (SASL responses during AUTH, RFC 4954 §4).
* ``DATA``: the message after ``354``: dot-unstuffed chunks, then :class:`DataEnd`.
* ``BDAT``: exactly N octets, no dot-stuffing (RFC 3030 §2), then :class:`BdatEnd`.

Invariants:

* ``next_event`` returns ``None`` when it needs more data, and raises only
  :class:`courriel.errors.SyntaxProblem`, after consuming the bad line, so the
  next call starts at the next line (resynchronisation at CRLF).
* In DATA mode the only end marker is ``CRLF.CRLF`` (RFC 5321 §4.1.1.4). A bare
  CR or LF anywhere, or a text line over 1000 octets, never ends or splits the
  message: it is flagged on :class:`DataEnd` and the stream is still read to
  ``CRLF.CRLF``, so nothing smuggled after ``LF.LF`` is taken as a command (the
  2023 SMTP-smuggling defence).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from courriel.errors import SyntaxProblem
from courriel.protocols.smtp.commands import Command, parse_command

__all__ = [
    "AuthResponse",
    "BdatChunk",
    "BdatEnd",
    "DataChunk",
    "DataEnd",
    "Event",
    "Mode",
    "SmtpParser",
]

# RFC 5321 §4.5.3.1.4: a command line is at most 512 octets, CRLF included.
MAX_COMMAND_LINE = 512
# RFC 5321 §4.5.3.1.4 lets extensions lengthen MAIL/RCPT lines (RFC 1870 §3 SIZE,
# RFC 6531 UTF-8 addresses); we allow this much when ESMTP parameters are used.
MAX_PARAM_LINE = 2048
# RFC 4954 §4: AUTH command and SASL response lines may be 12288 octets long.
MAX_AUTH_LINE = 12288
# RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
MAX_TEXT_LINE = 1000

_CRLF = b"\r\n"
_END = b".\r\n"


class Mode(enum.Enum):
    """What the next octets are."""

    COMMAND = "command"
    LINE = "line"
    DATA = "data"
    BDAT = "bdat"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    """One SASL response line (LINE mode), without CRLF; never log it."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DataChunk:
    """Message octets from DATA: dot-unstuffed, whole CRLF-terminated lines."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DataEnd:
    """``CRLF.CRLF`` was read; the flags say whether the message must be refused."""

    bare_line_ending: bool = False  # a CR or LF not part of a CRLF pair was seen
    line_too_long: bool = False  # a text line exceeded 1000 octets


@dataclass(frozen=True, slots=True, kw_only=True)
class BdatChunk:
    """Octets of the current BDAT chunk (as sent, no unstuffing)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BdatEnd:
    """The announced number of BDAT octets has been read."""


Event = Command | AuthResponse | DataChunk | DataEnd | BdatChunk | BdatEnd


class SmtpParser:
    """Incremental SMTP parser; see the module docstring for the modes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._mode = Mode.COMMAND
        self._skip = False  # dropping the rest of an over-long line, up to its CRLF
        self._bdat_left = 0
        self._bare = False
        self._too_long = False

    @property
    def mode(self) -> Mode:
        """The current mode."""
        return self._mode

    def feed(self, data: bytes) -> None:
        """Append received octets."""
        self._buf += data

    def discard_buffer(self) -> int:
        """Drop buffered input (RFC 3207 §4.2 after STARTTLS); return how much."""
        dropped = len(self._buf)
        self._buf.clear()
        self._skip = False
        return dropped

    def expect_command(self) -> None:
        """Parse command lines from now on."""
        self._mode = Mode.COMMAND

    def expect_line(self) -> None:
        """Return the next lines raw (SASL responses)."""
        self._mode = Mode.LINE

    def expect_data(self) -> None:
        """Read a DATA message next (after the 354 reply)."""
        self._mode = Mode.DATA
        self._bare = False
        self._too_long = False

    def expect_bdat(self, size: int) -> None:
        """Read exactly ``size`` octets of a BDAT chunk next."""
        self._mode = Mode.BDAT
        self._bdat_left = size

    def next_event(self) -> Event | None:
        """Return the next event, or None when more data is needed.

        Raises:
            SyntaxProblem: a command line is unreadable (it has been consumed).
        """
        if self._mode is Mode.DATA:
            return self._data_event()
        if self._mode is Mode.BDAT:
            return self._bdat_event()
        line = self._next_line()
        if line is None:
            return None
        if self._mode is Mode.LINE:
            return AuthResponse(text=line.decode("latin-1"))
        return parse_command(_decode_command(line))

    # Line framing -------------------------------------------------------------

    def _drop_to_crlf(self) -> bool:
        """Drop the rest of an over-long line; True once its CRLF was consumed."""
        idx = self._buf.find(_CRLF)
        if idx < 0:
            # Keep a trailing CR: its LF may come in the next packet.
            keep = 1 if self._buf.endswith(b"\r") else 0
            del self._buf[: len(self._buf) - keep]
            return False
        del self._buf[: idx + 2]
        self._skip = False
        return True

    def _next_line(self) -> bytes | None:
        if self._skip and not self._drop_to_crlf():
            return None
        idx = self._buf.find(_CRLF, 0, MAX_AUTH_LINE)
        if idx < 0:
            if len(self._buf) >= MAX_AUTH_LINE:
                self._skip = True
                self._drop_to_crlf()
                raise SyntaxProblem("Line too long", code=500, enhanced="5.5.2")
            return None
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 2]
        if self._mode is Mode.COMMAND:
            _check_command_length(line)
        return line

    # DATA ---------------------------------------------------------------------

    def _data_event(self) -> Event | None:
        if self._skip and not self._drop_to_crlf():
            return None
        buf = self._buf
        # Invariant here: the buffer starts at the beginning of a line.
        if buf.startswith(_END):
            del buf[:3]
            self._mode = Mode.COMMAND
            return DataEnd(bare_line_ending=self._bare, line_too_long=self._too_long)
        if len(buf) < 3 and _END.startswith(bytes(buf)):
            return None
        end = buf.find(b"\r\n.\r\n")
        cut = end + 2 if end >= 0 else buf.rfind(_CRLF) + 2
        if cut < 2:
            # No complete line yet; a line this long without CRLF is over the limit.
            if len(buf) > MAX_TEXT_LINE:
                self._too_long = True
                self._bare = self._bare or b"\n" in buf or b"\r" in buf[:-1]
                self._skip = True
                self._drop_to_crlf()
            return None
        chunk = bytes(buf[:cut])
        del buf[:cut]
        return DataChunk(data=self._unstuff(chunk))

    def _unstuff(self, chunk: bytes) -> bytes:
        """Check and dot-unstuff whole lines (RFC 5321 §4.5.2)."""
        pairs = chunk.count(_CRLF)
        if chunk.count(b"\r") != pairs or chunk.count(b"\n") != pairs:
            # The 2023 SMTP-smuggling defence: refuse bare CR / bare LF.
            self._bare = True
        if len(chunk) > MAX_TEXT_LINE and (
            max(len(line) for line in chunk.split(_CRLF)) + 2 > MAX_TEXT_LINE
        ):
            self._too_long = True
        if chunk.startswith(b"."):
            chunk = chunk[1:]
        return chunk.replace(b"\r\n.", _CRLF)

    # BDAT ---------------------------------------------------------------------

    def _bdat_event(self) -> Event | None:
        if self._bdat_left == 0:
            self._mode = Mode.COMMAND
            return BdatEnd()
        if not self._buf:
            return None
        take = min(len(self._buf), self._bdat_left)
        chunk = bytes(self._buf[:take])
        del self._buf[:take]
        self._bdat_left -= take
        return BdatChunk(data=chunk)


def _check_command_length(line: bytes) -> None:
    size = len(line) + 2
    if size <= MAX_COMMAND_LINE:
        return
    verb = line[:4].upper()
    if verb in (b"MAIL", b"RCPT") and size <= MAX_PARAM_LINE:
        return
    if verb == b"AUTH":
        return
    raise SyntaxProblem("Line too long", code=500, enhanced="5.5.2")


def _decode_command(line: bytes) -> str:
    if b"\r" in line or b"\n" in line or b"\x00" in line:
        raise SyntaxProblem("Bare CR, LF or NUL in command", code=500, enhanced="5.5.2")
    try:
        # RFC 6531 §3.3: command arguments may be UTF-8 once SMTPUTF8 is in use.
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyntaxProblem("Invalid octets in command", code=500, enhanced="5.5.2") from exc
