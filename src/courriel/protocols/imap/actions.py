"""What an IMAP session asks its server to do: write octets, or perform an effect.

This module owns the action types of :mod:`courriel.protocols.imap.session` and the
small builders of response lines. :class:`Send` is untagged output (or a continuation
request); :class:`Tagged` is the one tagged completion of a command, before which the
session inserts pending untagged updates (RFC 9051 §7: status updates may come before
any tagged response); :class:`Stream` is output produced while it is written
(FETCH). :class:`WaitForChange` is the IDLE effect (RFC 2177): the server
waits for a change of the account while it keeps reading the client's input.

Invariant: a line built here always ends with CRLF and never contains a bare CR or LF
outside a literal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from courriel.protocols.effects import Close, Delay, StartTls

__all__ = [
    "INTERNAL_ERROR",
    "Action",
    "Close",
    "Delay",
    "Send",
    "StartTls",
    "Stream",
    "Tagged",
    "WaitForChange",
    "bad",
    "no",
    "ok",
    "untagged",
    "untagged_lines",
]

# Dovecot's public text for a failure whose cause only the log shows.
INTERNAL_ERROR = "Internal error occurred. Refer to server log for more information."


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Write these octets (complete lines, literals included)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Tagged:
    """Write the tagged completion of a command (its last response line)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Stream:
    """Write these parts one by one, draining after each; the last is the tagged line.

    FETCH answers this way so that large bodies are read and written one message at a
    time instead of all at once. The session processes no further command until the
    server has written the whole stream (see ``ImapSession.more``).
    """

    parts: AsyncIterator[bytes] = field(compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForChange:
    """IDLE (RFC 2177): wait for a change of the account after a feed position.

    The server waits up to ``keepalive`` seconds, concurrently with reading; on a change
    it calls the session's ``idle_changed``, on a quiet interval ``idle_keepalive``.
    """

    account_id: int | None  # None: nothing selected, only keepalives
    after_change_id: int
    keepalive: float


Action = Send | Tagged | Stream | StartTls | Close | Delay | WaitForChange


def untagged(text: str | bytes) -> Send:
    """``* <text>`` as one line."""
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    return Send(data=b"* " + data + b"\r\n")


def untagged_lines(lines: list[bytes]) -> Send:
    """``* <line>`` for each of ``lines``, written as one send."""
    return Send(data=b"".join(b"* " + line + b"\r\n" for line in lines))


def _status(tag: str, kind: str, text: str, code: str | None) -> Tagged:
    body = f"[{code}] {text}" if code else text
    return Tagged(data=f"{tag} {kind} {body}\r\n".encode())


def ok(tag: str, text: str, code: str | None = None) -> Tagged:
    """``<tag> OK [code] text``."""
    return _status(tag, "OK", text, code)


def no(tag: str, text: str, code: str | None = None) -> Tagged:
    """``<tag> NO [code] text``."""
    return _status(tag, "NO", text, code)


def bad(tag: str, text: str, code: str | None = None) -> Tagged:
    """``<tag> BAD [code] text``."""
    return _status(tag, "BAD", text, code)
