"""POP3 command parser (sans-I/O): bytes in, typed commands out.

This module owns the POP3 line grammar and nothing else. It never touches a
socket, a clock or the mail store.

Invariants:
    * The only exception that leaves this module is :class:`courriel.errors.SyntaxProblem`;
      its ``public`` text is safe to send after ``-ERR``.
    * :class:`LineReader` never holds more than ``limit`` octets of an unfinished line: a
      longer line is reported once and then skipped up to its LF (resynchronisation).
    * Keywords are case-insensitive (RFC 1939 §3); arguments keep their case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from courriel.errors import SyntaxProblem
from courriel.protocols.sasl import b64decode_response

__all__ = [
    "AUTH_LINE_LIMIT",
    "LINE_LIMIT",
    "Auth",
    "AuthResponse",
    "Capa",
    "Command",
    "Dele",
    "LineReader",
    "List",
    "Noop",
    "Pass",
    "Quit",
    "Retr",
    "Rset",
    "Stat",
    "Stls",
    "Top",
    "Uidl",
    "User",
    "parse_auth_response",
    "parse_command",
]

# RFC 2449 §4: a command line is at most 255 octets, including the terminating CRLF.
LINE_LIMIT = 255
# RFC 5034 §4 limits the AUTH command line (above) but not the client's continuation
# responses; PLAIN needs far less than this, and the bound keeps memory per session small.
AUTH_LINE_LIMIT = 8192
# RFC 1939 §3: "Each argument may be up to 40 characters long."
ARG_LIMIT = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every parsed command; ``verb`` is the upper-case keyword."""

    verb: ClassVar[str] = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class User(Command):
    """``USER name`` (RFC 1939 §7)."""

    verb: ClassVar[str] = "USER"
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Pass(Command):
    """``PASS string`` (RFC 1939 §7); the password may contain spaces."""

    verb: ClassVar[str] = "PASS"
    password: str = ""

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return "Pass(password=[redacted])"


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth(Command):
    """``AUTH [mechanism [initial-response]]`` (RFC 5034 §4)."""

    verb: ClassVar[str] = "AUTH"
    mechanism: str | None = None  # upper case; None: the client asks for the list
    initial: str | None = None  # base64 text as sent ("=" means empty); None: absent

    def __repr__(self) -> str:
        return f"Auth(mechanism={self.mechanism!r}, initial=[redacted])"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stat(Command):
    """``STAT`` (RFC 1939 §5)."""

    verb: ClassVar[str] = "STAT"


@dataclass(frozen=True, slots=True, kw_only=True)
class List(Command):
    """``LIST [msg]`` (RFC 1939 §5)."""

    verb: ClassVar[str] = "LIST"
    msg: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Retr(Command):
    """``RETR msg`` (RFC 1939 §5)."""

    verb: ClassVar[str] = "RETR"
    msg: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dele(Command):
    """``DELE msg`` (RFC 1939 §5)."""

    verb: ClassVar[str] = "DELE"
    msg: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Command):
    """``NOOP`` (RFC 1939 §5)."""

    verb: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rset(Command):
    """``RSET`` (RFC 1939 §5)."""

    verb: ClassVar[str] = "RSET"


@dataclass(frozen=True, slots=True, kw_only=True)
class Quit(Command):
    """``QUIT`` (RFC 1939 §4 and §6)."""

    verb: ClassVar[str] = "QUIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Top(Command):
    """``TOP msg n`` (RFC 1939 §7)."""

    verb: ClassVar[str] = "TOP"
    msg: int
    lines: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Uidl(Command):
    """``UIDL [msg]`` (RFC 1939 §7)."""

    verb: ClassVar[str] = "UIDL"
    msg: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capa(Command):
    """``CAPA`` (RFC 2449 §5)."""

    verb: ClassVar[str] = "CAPA"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stls(Command):
    """``STLS`` (RFC 2595 §4)."""

    verb: ClassVar[str] = "STLS"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResponse:
    """A client line inside an AUTH exchange (RFC 5034 §4)."""

    cancelled: bool  # the client sent "*"
    data: bytes = b""  # the decoded response

    def __repr__(self) -> str:
        return f"AuthResponse(cancelled={self.cancelled}, data=[redacted])"


class LineReader:
    """Splits a byte stream into lines, bounded in length.

    ``feed`` appends bytes; ``next_line`` returns the next complete line without its
    line end, or None when more data is needed. A line longer than the current
    ``limit`` raises :class:`SyntaxProblem` once; its remainder is skipped.
    """

    __slots__ = ("_buffer", "_skipping", "limit")

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self._buffer = bytearray()
        self._skipping = False  # inside an overlong line: drop bytes up to its LF
        self.limit = limit

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def clear(self) -> None:
        """Forget buffered input (RFC 2595 §4: nothing sent before TLS survives it)."""
        self._buffer.clear()
        self._skipping = False

    @property
    def pending(self) -> int:
        """Octets buffered and not yet returned as a line."""
        return len(self._buffer)

    def next_line(self) -> bytes | None:
        """Return the next line (without CRLF), or None when a line is still incomplete.

        Raises:
            SyntaxProblem: the line is longer than ``limit`` octets including CRLF.
        """
        while True:
            end = self._buffer.find(b"\n")
            if self._skipping:
                if end == -1:
                    self._buffer.clear()
                    return None
                del self._buffer[: end + 1]
                self._skipping = False
                continue
            if end == -1:
                if len(self._buffer) >= self.limit:
                    self._buffer.clear()
                    self._skipping = True
                    raise SyntaxProblem(f"Line too long (max {self.limit} octets)")
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if len(line) + 1 + (not line.endswith(b"\r")) > self.limit:
                raise SyntaxProblem(f"Line too long (max {self.limit} octets)")
            return line.removesuffix(b"\r")


def _decode(line: bytes) -> str:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyntaxProblem("Invalid characters in command") from exc
    if any(ch < " " or ch == "\x7f" for ch in text):
        raise SyntaxProblem("Invalid characters in command")
    return text


def _argument(value: str) -> str:
    # RFC 1939 §3: arguments are at most 40 characters.
    if len(value) > ARG_LIMIT:
        raise SyntaxProblem(f"Argument too long (max {ARG_LIMIT} characters)")
    return value


def _number(value: str, what: str = "message number") -> int:
    value = _argument(value)
    if not (value.isascii() and value.isdigit()):
        raise SyntaxProblem(f"Invalid {what}")
    return int(value)


def _arity(verb: str, args: list[str], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        if high == 0:
            raise SyntaxProblem(f"{verb} takes no arguments")
        raise SyntaxProblem(f"Wrong number of arguments for {verb}")


def _simple(verb: str, args: list[str]) -> Command:
    cls = _NO_ARGS[verb]
    _arity(verb, args, 0, 0)
    return cls()


def _optional_msg(verb: str, args: list[str]) -> Command:
    _arity(verb, args, 0, 1)
    msg = _number(args[0]) if args else None
    return List(msg=msg) if verb == "LIST" else Uidl(msg=msg)


def _one_msg(verb: str, args: list[str]) -> Command:
    _arity(verb, args, 1, 1)
    msg = _number(args[0])
    return Retr(msg=msg) if verb == "RETR" else Dele(msg=msg)


def _top(verb: str, args: list[str]) -> Command:
    _arity(verb, args, 2, 2)
    return Top(msg=_number(args[0]), lines=_number(args[1], "line count"))


def _user(verb: str, args: list[str]) -> Command:
    _arity(verb, args, 1, 1)
    return User(name=_argument(args[0]))


def _auth(verb: str, args: list[str]) -> Command:
    _arity(verb, args, 0, 2)
    if not args:
        return Auth()
    mechanism = _argument(args[0]).upper()
    # RFC 5034 §4: the initial response is bounded only by the 255-octet line limit.
    return Auth(mechanism=mechanism, initial=args[1] if len(args) == 2 else None)


_NO_ARGS: dict[str, type[Command]] = {
    "STAT": Stat,
    "NOOP": Noop,
    "RSET": Rset,
    "QUIT": Quit,
    "CAPA": Capa,
    "STLS": Stls,
}

_PARSERS = {
    **dict.fromkeys(_NO_ARGS, _simple),
    "LIST": _optional_msg,
    "UIDL": _optional_msg,
    "RETR": _one_msg,
    "DELE": _one_msg,
    "TOP": _top,
    "USER": _user,
    "AUTH": _auth,
}


def parse_command(line: bytes) -> Command:
    """Parse one command line (without its CRLF).

    Args:
        line: the octets of the line, as returned by :meth:`LineReader.next_line`.

    Returns:
        The typed command.

    Raises:
        SyntaxProblem: unknown keyword, bad arguments or invalid characters.
    """
    text = _decode(line)
    keyword, _, rest = text.partition(" ")
    verb = keyword.upper()
    if verb == "PASS":
        # RFC 1939 §7: the server may treat spaces in the argument as part of the
        # password, so PASS takes the rest of the line. It is bounded by the line limit
        # (RFC 2449 §4) rather than by 40 characters, which real passwords exceed.
        if not rest:
            raise SyntaxProblem("Wrong number of arguments for PASS")
        return Pass(password=rest)
    parser = _PARSERS.get(verb)
    if parser is None:
        raise SyntaxProblem("Unknown command")
    return parser(verb, rest.split())


def parse_auth_response(line: bytes) -> AuthResponse:
    """Parse a client line sent inside an AUTH exchange (RFC 5034 §4).

    Args:
        line: the octets of the line without CRLF.

    Returns:
        ``cancelled=True`` for ``*``, else the decoded base64 data.

    Raises:
        SyntaxProblem: the line is not valid base64.
    """
    text = _decode(line).strip()
    if text == "*":
        return AuthResponse(cancelled=True)
    return AuthResponse(cancelled=False, data=b64decode_response(text))
