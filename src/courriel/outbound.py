"""The delivery role of a node: the queue worker, its DNS resolver, SMTP client and bouncer.

Part of the composition root (with :mod:`courriel.app`): it builds the worker from the
configuration and gives it what the lower layers cannot import themselves (the SMTP
client lives in ``protocols``, above ``delivery``). Mail courriel originates itself (DSNs)
enters through :class:`Originator`, the same router path as submitted mail, so it
is stored locally or queued, and DKIM-signed when its ``From:`` domain has keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Connection

from courriel.config import Config
from courriel.delivery.bounces import Bouncer
from courriel.delivery.claims import Claim
from courriel.delivery.router import Router
from courriel.delivery.settler import OnDelivered
from courriel.delivery.targets import MailFrom, SessionInfo
from courriel.delivery.worker import DeliveryWorker, FailedRecipient, WorkerSettings
from courriel.dns.resolver import DnsResolver
from courriel.errors import DeliveryRefused
from courriel.protocols.smtp.client import SmtpConnector
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database

__all__ = ["Originator", "Outbound", "connector_for"]

log = logging.getLogger(__name__)


def connector_for(config: Config) -> SmtpConnector:
    """The SMTP client: direct to MX hosts, or through ``delivery.relay_host``."""
    delivery = config.delivery
    helo = config.server.hostname
    if not delivery.relay_host:
        return SmtpConnector(helo)
    auth = (delivery.relay_user, delivery.relay_password) if delivery.relay_user else None
    return SmtpConnector(
        helo,
        port=delivery.relay_port,
        starttls="required" if delivery.relay_tls == "starttls" else "none",
        implicit_tls=delivery.relay_tls == "tls",
        auth=auth,
    )


class Originator:
    """The way in for mail courriel writes itself (DSNs, opt-in confirmations).

    It enters through the router like an authenticated submission, so it is stored
    locally or queued, and DKIM-signed when its ``From:`` domain has keys.
    """

    def __init__(self, router: Router, hostname: str) -> None:
        self.router = router
        # Originated mail may go anywhere, like an authenticated submission.
        self._session = SessionInfo(
            listener="submission",
            peer_ip="127.0.0.1",
            helo=hostname,
            tls=True,
            authenticated=f"mailer-daemon@{hostname}",
        )

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        priority: str = "transactional",
        on_commit: Callable[[Connection], None] | None = None,
        signed: bool = False,
    ) -> int:
        """Deliver a message courriel writes itself: locally or through the queue.

        ``priority`` is the queue class of remote copies (``bulk`` for campaigns, which the
        worker takes after ``transactional``); ``on_commit`` runs in the transaction that
        stores the message (see :class:`courriel.delivery.committer.CommitJob`), and only
        when at least one recipient was accepted; ``signed``: the message already carries
        its From: domain's DKIM signatures (a campaign's render processes signed it), so
        it is not signed again. Returns the number accepted.

        Recipients refused for good (an unknown local user) are logged and skipped, so a
        bounce to a vanished sender cannot loop; a temporary failure raises, and the
        worker retries the bounce later.
        """
        smtputf8 = not all(a.isascii() for a in (sender, *recipients))
        # Declare 8BITMIME only when the notice needs it: a 7-bit DSN must still reach a
        # server that does not offer the extension (RFC 6152 §3).
        body = "7BIT" if message.isascii() else "8BITMIME"
        delivery = await self.router.start(
            self._session, MailFrom(address=sender, smtputf8=smtputf8, body=body)
        )
        if signed:
            delivery.signing = None
        accepted = 0
        try:
            for recipient in recipients:
                try:
                    await delivery.add_recipient(recipient)
                    accepted += 1
                except DeliveryRefused as exc:
                    if exc.temporary:
                        raise
                    log.warning("dropping notice to %s: %s", recipient, exc.internal)
            if not accepted:
                await delivery.abort()
                return 0
            delivery.priority = priority
            delivery.on_commit = on_commit
            await delivery.write(message)
            await delivery.commit(b"")
        except BaseException:
            await delivery.abort()
            raise
        return accepted


@dataclass(slots=True)
class Outbound:
    """The running delivery worker of a node and the way in for mail courriel originates."""

    config: Config
    db: Database
    blobs: BlobStore
    router: Router
    # Told (sender, recipient) of copies remote servers accepted (campaign delivered counts).
    on_delivered: OnDelivered | None = None
    worker: DeliveryWorker | None = None
    task: asyncio.Task[None] | None = None
    originator: Originator = field(init=False)

    def __post_init__(self) -> None:
        self.originator = Originator(self.router, self.config.server.hostname)

    def start(self) -> None:
        """Start the worker task (DNS through ``dns.nameservers`` when set)."""
        cfg = self.config
        resolver = DnsResolver(nameservers=cfg.dns.nameservers, timeout=cfg.dns.timeout)
        bouncer = Bouncer(self.originator.send, cfg.server.hostname, self.blobs)
        expire_after = cfg.delivery.expire_after

        async def delayed(claims: Sequence[Claim], recipients: Sequence[FailedRecipient]) -> None:
            # The notice says until when the queue keeps trying (RFC 3464 Will-Retry-Until).
            await bouncer.delayed(claims, recipients, claims[0].created_at + expire_after)

        self.worker = DeliveryWorker(
            self.db,
            self.blobs,
            resolver,
            connector_for(cfg),
            settings=replace(
                WorkerSettings.from_section(cfg.delivery),
                smtp_port=cfg.delivery.mx_port,
                lease=cfg.delivery.claim_lease,
            ),
            on_failure=bouncer.failed,
            on_delay=delayed,
            on_delivered=self.on_delivered,
        )
        self.task = asyncio.create_task(self.worker.run(), name="courriel-delivery")

    def wake(self) -> None:
        """New mail was queued: let the worker look now."""
        if self.worker is not None:
            self.worker.wake()

    async def stop(self, grace: float) -> None:
        """Stop after the current round (which settles what it claimed) or after ``grace``."""
        if self.worker is None or self.task is None:
            return
        self.worker.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace)
        except TimeoutError:
            # Claims left unsettled are taken back after their lease by the next start.
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
