"""Ports of the marketing layer: what it needs from the rest of the program.

Marketing never imports ``delivery`` (the layers are siblings); the composition root
(``courriel.app``) implements these over the delivery queue and hands them in.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Mailer"]


class Mailer(Protocol):
    """Sends one complete message (durably queued by the implementation)."""

    async def send(
        self, *, sender: str, recipient: str, message: bytes, transactional: bool = True
    ) -> None:
        """Queue ``message`` for ``recipient``.

        Args:
            sender: the envelope sender (RFC 5321 MAIL FROM).
            recipient: the envelope recipient.
            message: a complete RFC 5322 message with CRLF line ends.
            transactional: True for mail the person asked for (a confirmation link), which
                is sent even to an address that unsubscribed from campaigns.
        """
        ...
