"""The delivery port: how protocol sessions hand a message to the domain.

A transaction is ``start → add_recipient … → write … → commit | abort``
(maddy's ``DeliveryTarget``). Nothing is persistent before ``commit``; a
``commit`` that returns means every recipient's copy is durable (committed and
fsynced), so the SMTP session may answer 250. Any step may raise
:class:`courriel.errors.DeliveryRefused`, whose code and public text become the
wire reply.

This module holds only dataclasses and protocols, so that ``courriel.protocols``
can import it without reaching storage. The implementation that routes to the
mail store or the outbound queue lives in :mod:`courriel.delivery.router`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Delivery", "DeliveryTarget", "ListenerKind", "MailFrom", "SessionInfo"]

ListenerKind = Literal["mx", "submission"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """What the SMTP session knows about its client when a transaction starts."""

    listener: ListenerKind  # "mx" for port 25; "submission" for 587/465
    peer_ip: str
    helo: str  # the name given in EHLO/HELO
    tls: bool  # the connection is encrypted (STARTTLS or implicit TLS)
    authenticated: str | None = None  # the account address after AUTH, else None


@dataclass(frozen=True, slots=True, kw_only=True)
class MailFrom:
    """The parsed ``MAIL FROM`` of one transaction."""

    address: str  # "" for the null reverse-path <>
    size: int | None = None  # RFC 1870 SIZE= declared by the client
    body: str | None = None  # RFC 6152 BODY=7BIT|8BITMIME (RFC 3030 BINARYMIME)
    smtputf8: bool = False  # RFC 6531 SMTPUTF8 parameter given


class Delivery(Protocol):
    """One open transaction. Methods are called in order; ``abort`` may come at any time."""

    async def add_recipient(self, address: str) -> None:
        """Accept one recipient or raise DeliveryRefused (550 5.1.1, 550 5.7.1, 452 …)."""

    async def write(self, chunk: bytes) -> None:
        """Append message bytes (CRLF line ends, dot-unstuffed, no trace header)."""

    async def commit(self, trace_header: bytes) -> str:
        """Make the message durable for every accepted recipient.

        Args:
            trace_header: the ``Received:`` field (RFC 5321 §4.4), CRLF-terminated,
                stored with each copy in front of the body without rewriting it.

        Returns:
            A queue/message id for the 250 reply text.
        """

    async def abort(self) -> None:
        """Drop everything of this transaction; idempotent."""


class DeliveryTarget(Protocol):
    """Starts transactions; one per listener (policy depends on ``SessionInfo``)."""

    async def start(self, session: SessionInfo, mail_from: MailFrom) -> Delivery:
        """Open a transaction or raise DeliveryRefused (e.g. 553 5.7.1 wrong sender)."""
