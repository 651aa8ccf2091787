"""SMTP replies and the effects a session asks its server to carry out.

The session's output is a list of :data:`Action`: :class:`Reply` objects to
write, and effects (:class:`StartTls`, :class:`Close`, :class:`Delay`, re-exported
from :mod:`courriel.protocols.effects`) that only the server can perform. Replies
are built here and nowhere else, so that the wire form (multi-line continuation,
enhanced status codes) has one owner.

Invariant: reply text never carries hostnames of other systems, paths or
configuration; only the generic public texts below and the ``public`` text of a
:class:`courriel.errors.ProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.errors import ProtocolError
from courriel.protocols.effects import Close, Delay, StartTls

__all__ = [
    "Action",
    "Close",
    "Delay",
    "Reply",
    "StartTls",
    "reply_from_error",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One SMTP reply, possibly multi-line (RFC 5321 §4.2.1).

    ``enhanced`` is the RFC 3463 code put in front of every line's text, or ``""``
    for the replies RFC 2034 §3 exempts (the greeting, the EHLO/HELO answer,
    and 3xx intermediate replies).
    """

    code: int
    enhanced: str = ""
    lines: tuple[str, ...] = ("",)

    @classmethod
    def of(cls, code: int, enhanced: str, *lines: str) -> Reply:
        """Build a reply from its code, enhanced code and text lines."""
        return cls(code=code, enhanced=enhanced, lines=lines or ("",))

    def to_bytes(self) -> bytes:
        """Return the wire form: ``code-text`` continuation lines, ``code text`` last."""
        out: list[str] = []
        last = len(self.lines) - 1
        for index, text in enumerate(self.lines):
            sep = " " if index == last else "-"
            body = f"{self.enhanced} {text}" if self.enhanced else text
            out.append(f"{self.code}{sep}{body}")
        return ("\r\n".join(out) + "\r\n").encode("utf-8")

    def text(self) -> str:
        """The reply as text lines without CRLF (for transcripts and logs)."""
        return self.to_bytes().decode("utf-8").rstrip("\r\n")

    @property
    def is_error(self) -> bool:
        """True for 4xx and 5xx replies."""
        return self.code >= 400


Action = Reply | StartTls | Close | Delay


def reply_from_error(error: ProtocolError) -> Reply:
    """Turn a protocol error into its wire reply, with its public text only."""
    return Reply.of(error.code, error.enhanced, error.public)
