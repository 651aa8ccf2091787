"""The outbound transport port: how the delivery worker talks to a remote MTA.

The delivery layer must not import :mod:`courriel.protocols` (protocols sit above
delivery), so the worker receives an SMTP client through the small protocols
defined here; the composition root (``courriel.app``) passes the real client
(:class:`courriel.protocols.smtp.client.SmtpConnector`) in.

Invariants:
    * ``Connection.send`` never raises for protocol replies: every recipient gets a
      final :class:`RemoteReply` in the :class:`SendOutcome` (the RCPT refusal, or
      the DATA/BDAT reply for accepted recipients).
    * Connection loss and timeouts raise :class:`TransportError`; a reply code of 0
      means that no reply was received.
    * This module holds only dataclasses, protocols and the error type: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from courriel.errors import CourrielError

__all__ = [
    "Connection",
    "Connector",
    "Outgoing",
    "RemoteReply",
    "SendOutcome",
    "TransportError",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One message to hand to a remote server in one transaction.

    Attributes:
        sender: the reverse-path, ``""`` for the null sender ``<>``.
        recipients: the forward-paths, in order.
        data: the whole message, CRLF line ends, not dot-stuffed.
        smtputf8: the envelope or headers need RFC 6531 SMTPUTF8.
        eight_bit: the body has 8-bit bytes (RFC 6152 8BITMIME needed).
    """

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    smtputf8: bool
    eight_bit: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteReply:
    """A reply from a remote server (or its absence).

    Attributes:
        code: the basic reply code (RFC 5321 §4.2); 0 when no reply was received
            (connection lost or timed out).
        enhanced: the RFC 3463 enhanced status code (``"5.1.1"``) or ``""``.
        text: the reply text, lines joined by ``"\\n"``.
    """

    code: int
    enhanced: str
    text: str

    @property
    def temporary(self) -> bool:
        """True when the sender should retry later (4xx, or no reply at all)."""
        return self.code == 0 or 400 <= self.code < 500

    @property
    def success(self) -> bool:
        """True for a 2xx reply."""
        return 200 <= self.code < 300


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOutcome:
    """The final reply for each recipient of one :class:`Outgoing`."""

    recipients: Mapping[str, RemoteReply]


class TransportError(CourrielError):
    """The connection to a remote server failed or was refused as a whole.

    Attributes:
        temporary: True when a retry later may succeed (refused, reset, timeout,
            unreadable reply, 4xx greeting); False for a 5xx greeting (554).
        reply: the server's reply when one was received, else None.
    """

    def __init__(self, message: str, *, temporary: bool, reply: RemoteReply | None = None) -> None:
        self.temporary = temporary
        self.reply = reply
        super().__init__(message)


class Connection(Protocol):
    """An open SMTP session with one remote host, reusable for several messages."""

    host: str  # the MX name the session was opened for
    tls: bool  # the session is encrypted
    tls_verified: bool  # the peer certificate was verified and matched ``host``

    async def send(self, message: Outgoing) -> SendOutcome:
        """Run one transaction; raise TransportError on connection loss or timeout."""
        ...

    async def close(self) -> None:
        """Say QUIT and close the connection; idempotent, never raises."""
        ...

    @property
    def reusable(self) -> bool:
        """True while the session can take another transaction (open, not closed by the
        peer): what a parked session is checked with before it is handed out again."""
        ...


class Connector(Protocol):
    """Opens :class:`Connection` objects."""

    async def connect(self, host: str, address: str, port: int) -> Connection:
        """Open a session to ``address`` (an IP) on ``port`` for MX host ``host``.

        Raises:
            TransportError: the host cannot be reached, or greets with 4xx/5xx.
        """
        ...
