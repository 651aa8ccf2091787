"""Ports of the marketing layer: what it needs from the rest of the program.

Marketing never imports ``delivery`` (the layers are siblings); the composition root
(``courriel.app``) implements these over the delivery queue and hands them in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.engine import Connection

__all__ = ["Mailer"]


class Mailer(Protocol):
    """Sends one complete message (durably queued by the implementation)."""

    async def send(
        self,
        *,
        sender: str,
        recipient: str,
        message: bytes,
        transactional: bool = True,
        on_commit: Callable[[Connection], None] | None = None,
        signed: bool = False,
    ) -> bool:
        """Queue ``message`` for ``recipient``; False when the recipient was refused for good.

        Args:
            sender: the envelope sender (RFC 5321 MAIL FROM).
            recipient: the envelope recipient.
            message: a complete RFC 5322 message with CRLF line ends.
            transactional: True for mail the person asked for (a confirmation link), which
                is sent even to an address that unsubscribed from campaigns; False for
                campaign mail, queued in the ``bulk`` class that the delivery worker takes
                after every due transactional message.
            on_commit: runs (synchronously, on the database's writer) in the transaction
                that stores the message, so the caller's record of it (a campaign's
                per-recipient send record) commits with it or not at all. Not run when
                the recipient was refused. It must not raise on valid data. A hook with an
                ``order_key`` (:class:`courriel.delivery.committer.OrderedHook`) runs in key
                order among the batch's hooks, so shared rows are locked in one order;
                hooks of one ``batch_kind`` (:class:`~courriel.delivery.committer.BatchHook`)
                run together, in one ``run_batch`` call.

            signed: the message already carries the DKIM signatures of every active key
                of its ``From:`` domain (made by a campaign's render processes), so it is
                stored as it is instead of being signed on the way in.

        Raises:
            DeliveryRefused: a temporary failure (try again later).
        """
        ...
