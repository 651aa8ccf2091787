"""The SMTP client's sans-I/O core: reply parsing, EHLO reading, command encoding.

This module owns how the client reads a server's octets and writes its commands;
:mod:`courriel.protocols.smtp.client` only moves octets and waits.

Invariants:
    * :meth:`ReplyParser.next_reply` returns ``None`` when it needs more data and
      raises only :class:`courriel.errors.SyntaxProblem` (a line without a valid
      code, codes that change inside one multi-line reply, or a reply over the
      size caps). After such an error the stream cannot be trusted: the caller
      drops the connection.
    * Encoded commands never contain CR or LF from the caller's strings (an
      address with a line break is refused before it reaches the wire).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from courriel.errors import InvalidInput, SyntaxProblem

__all__ = [
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "Extensions",
    "ReplyParser",
    "ServerReply",
    "dot_stuff",
    "encode_mail_from",
    "encode_rcpt_to",
    "parse_ehlo",
]

# RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets, but servers in the wild
# send longer ones; we accept up to this much before calling the stream broken.
MAX_REPLY_LINE = 4096
# A cap on the lines of one multi-line reply (an EHLO answer has about twenty).
MAX_REPLY_LINES = 256

# RFC 3463 §2: class.subject.detail, class 2, 4 or 5; subject and detail 1-3 digits.
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerReply:
    """One complete reply (RFC 5321 §4.2), multi-line replies joined.

    Attributes:
        code: the three-digit reply code.
        enhanced: the RFC 3463 code of the first line when its class matches the
            reply's first digit (RFC 2034 §4), else ``""``.
        lines: the text of each line, without the code and without the enhanced code.
    """

    code: int
    enhanced: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The reply text, lines joined by ``"\\n"``."""
        return "\n".join(self.lines)


def _split_enhanced(code: int, text: str) -> tuple[str, str]:
    """Return ``(enhanced, rest)`` when ``text`` starts with a matching RFC 3463 code."""
    match = _ENHANCED.match(text)
    # RFC 2034 §4: the enhanced code's class must equal the reply's first digit.
    if match is None or int(match.group(1)) != code // 100:
        return "", text
    return match.group(0).strip(), text[match.end() :]


class ReplyParser:
    """Incremental parser of server replies; see the module docstring."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._lines: list[tuple[int, str]] = []

    @property
    def buffered(self) -> int:
        """Octets received and not yet turned into replies."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received octets."""
        self._buf += data

    def discard_buffer(self) -> int:
        """Drop buffered input (RFC 3207 §4.2: nothing read before TLS is kept)."""
        dropped = len(self._buf)
        self._buf.clear()
        self._lines.clear()
        return dropped

    def next_reply(self) -> ServerReply | None:
        """Return the next complete reply, or ``None`` when more octets are needed.

        Raises:
            SyntaxProblem: the octets are not an SMTP reply.
        """
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > MAX_REPLY_LINE:
                    raise SyntaxProblem("reply line too long")
                return None
            raw = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            if len(raw) > MAX_REPLY_LINE:
                raise SyntaxProblem("reply line too long")
            code, last, text = self._parse_line(raw)
            if self._lines and self._lines[0][0] != code:
                # RFC 5321 §4.2.1: every line of a multi-line reply has the same code.
                raise SyntaxProblem("reply code changed inside a multi-line reply")
            self._lines.append((code, text))
            if len(self._lines) > MAX_REPLY_LINES:
                raise SyntaxProblem("reply has too many lines")
            if last:
                return self._finish()

    @staticmethod
    def _parse_line(raw: bytes) -> tuple[int, bool, str]:
        # RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
        #   Reply-code [ SP textstring ] CRLF. A bare LF is tolerated (Postel).
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        head = line[:3]
        if len(head) != 3 or not head.isascii() or not head.isdigit() or head[0] not in "2345":
            raise SyntaxProblem("reply line without a reply code")
        sep = line[3:4]
        if sep not in ("", " ", "-"):
            raise SyntaxProblem("reply code not followed by space or hyphen")
        return int(head), sep != "-", line[4:]

    def _finish(self) -> ServerReply:
        code = self._lines[0][0]
        enhanced, first = _split_enhanced(code, self._lines[0][1])
        texts = [first]
        for _, text in self._lines[1:]:
            # RFC 2034 §4: each line carries the enhanced code; show it once.
            texts.append(_split_enhanced(code, text)[1] if enhanced else text)
        self._lines.clear()
        return ServerReply(code=code, enhanced=enhanced, lines=tuple(texts))


@dataclass(frozen=True, slots=True, kw_only=True)
class Extensions:
    """What a server offered in its EHLO answer (RFC 5321 §4.1.1.1).

    A HELO answer (RFC 5321 §4.1.1.1, no extensions) is ``Extensions()``.
    """

    esmtp: bool = False  # the session started with EHLO
    pipelining: bool = False  # RFC 2920
    size: int | None = None  # RFC 1870 SIZE; 0 = declared without a fixed limit
    eight_bit_mime: bool = False  # RFC 6152
    smtputf8: bool = False  # RFC 6531
    chunking: bool = False  # RFC 3030
    starttls: bool = False  # RFC 3207
    enhanced_status_codes: bool = False  # RFC 2034
    auth: frozenset[str] = frozenset()  # RFC 4954 SASL mechanisms, upper case


def parse_ehlo(reply: ServerReply) -> Extensions:
    """Read the extensions of a 250 EHLO answer; unknown keywords are ignored."""
    found: dict[str, list[str]] = {}
    # RFC 5321 §4.1.1.1: the first line is the server's name, each further line
    # one ehlo-keyword with its parameters.
    for line in reply.lines[1:]:
        words = line.split()
        if words:
            found[words[0].upper()] = words[1:]
    size: int | None = None
    if "SIZE" in found:
        params = found["SIZE"]
        digits = params[0] if params else ""
        size = int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 19 else 0
    return Extensions(
        esmtp=True,
        pipelining="PIPELINING" in found,
        size=size,
        eight_bit_mime="8BITMIME" in found,
        smtputf8="SMTPUTF8" in found,
        chunking="CHUNKING" in found,
        starttls="STARTTLS" in found,
        enhanced_status_codes="ENHANCEDSTATUSCODES" in found,
        auth=frozenset(m.upper() for m in found.get("AUTH", [])),
    )


def _path(address: str) -> str:
    if any(c in address for c in "\r\n<>") or any(ord(c) < 32 for c in address):
        raise InvalidInput("an address contains a control character or an angle bracket")
    return f"<{address}>"


def encode_mail_from(sender: str, *, size: int | None, body: str | None, smtputf8: bool) -> bytes:
    """Return the ``MAIL FROM`` line (CRLF included).

    Args:
        sender: the reverse-path, ``""`` for the null sender (RFC 5321 §4.5.5).
        size: the message size for RFC 1870 §3 ``SIZE=``, or None.
        body: ``"8BITMIME"`` for RFC 6152 §3 ``BODY=``, or None.
        smtputf8: add the RFC 6531 §3.4 ``SMTPUTF8`` parameter.

    Raises:
        InvalidInput: the address would break the command line.
    """
    parts = [f"MAIL FROM:{_path(sender)}"]
    if size is not None:
        parts.append(f"SIZE={size}")
    if body is not None:
        parts.append(f"BODY={body}")
    if smtputf8:
        parts.append("SMTPUTF8")
    return (" ".join(parts) + "\r\n").encode("utf-8")


def encode_rcpt_to(recipient: str) -> bytes:
    """Return the ``RCPT TO`` line (CRLF included).

    Raises:
        InvalidInput: the address would break the command line.
    """
    return f"RCPT TO:{_path(recipient)}\r\n".encode()


def dot_stuff(data: bytes) -> bytes:
    """Return ``data`` ready for DATA: dot-stuffed and ended by ``CRLF.CRLF``.

    RFC 5321 §4.5.2: a line that starts with a period gets one more period. A
    message that does not end with CRLF gets one so that the end marker is a line
    of its own (RFC 5321 §4.1.1.4).
    """
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"
