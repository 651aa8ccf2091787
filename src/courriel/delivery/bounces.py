"""Bounces and delay warnings: the worker's failure and delay callbacks.

The worker calls :meth:`Bouncer.failed` once per message with the recipients that just
failed, and :meth:`Bouncer.delayed` when recipients have waited past
``delivery.delay_warning_after``. The Bouncer builds one RFC 3464 DSN
(:func:`courriel.mail.dsn.build_dsn`) and hands it to ``submit``, which the composition
root wires to the router: to a local mailbox or back into the queue, DKIM-signed.

Invariants:
- A message whose envelope sender is the null reverse-path is never bounced nor warned
  about (RFC 5321 §4.5.5): this is what stops bounce loops.
- A DSN itself goes from the null sender ``""`` to the original envelope sender.
- The original header section quoted in a DSN is at most :data:`MAX_HEADERS` octets.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from courriel.delivery.transport import RemoteReply
from courriel.errors import BlobMissing
from courriel.mail.dsn import DsnAction, RecipientStatus, build_dsn
from courriel.storage.blobs import BlobStore
from courriel.storage.models import utcnow

__all__ = ["MAX_HEADERS", "BounceSource", "Bouncer", "RecipientOutcome", "Submit", "header_section"]

log = logging.getLogger(__name__)

# The original headers quoted in a DSN are capped, so a huge header section cannot
# make a huge bounce.
MAX_HEADERS = 64 * 1024

Submit = Callable[[str, Sequence[str], bytes], Awaitable[object]]
"""``submit(sender, recipients, message)``: hand a message we originate to delivery."""

RecipientOutcome = tuple[str, RemoteReply, str]
"""``(recipient, last reply, MX host or "")`` as the worker reports it."""


class BounceSource(Protocol):
    """What the Bouncer reads from the worker's claim of a recipient (``queue.Claim``)."""

    @property
    def message_id(self) -> int: ...  # the queue message id

    @property
    def sender(self) -> str: ...  # the envelope sender, "" for the null sender

    @property
    def blob_key(self) -> str: ...

    @property
    def trace_header(self) -> bytes: ...

    @property
    def created_at(self) -> datetime: ...  # when the message was queued


def header_section(message: bytes, limit: int = MAX_HEADERS) -> bytes:
    """The header section of a message (up to the first empty line), cut at ``limit``.

    A cut falls at the end of a line, so no field is left half-written; a first line
    longer than ``limit`` is cut as is.
    """
    end = len(message)
    for separator in (b"\r\n\r\n", b"\n\n"):
        found = message.find(separator)
        if found != -1:
            end = min(end, found + len(separator) // 2)
    head = message[:end]
    if len(head) <= limit:
        return head
    cut = head.rfind(b"\n", 0, limit)
    return head[: cut + 1] if cut != -1 else head[:limit]


class Bouncer:
    """Turns failed and delayed recipients into DSNs for the original sender."""

    def __init__(
        self,
        submit: Submit,
        hostname: str,
        blobs: BlobStore,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Args:
        submit: delivers a message we originate (sender, recipients, bytes).
        hostname: ``server.hostname``: Reporting-MTA and ``MAILER-DAEMON@``.
        blobs: the blob store holding the original bodies.
        clock: the current time (injected in tests).
        """
        self._submit = submit
        self._hostname = hostname
        self._blobs = blobs
        self._clock = clock

    async def failed(
        self,
        claim: BounceSource | Sequence[BounceSource],
        failures: Sequence[RecipientOutcome],
    ) -> None:
        """Send one failure DSN for the recipients of one message that failed.

        Args:
            claim: a claim of the message (or the claims of that one message).
            failures: each failed recipient with its last reply and MX host.
        """
        now = self._clock()
        await self._notify(claim, _statuses(failures, now), "failed", now)

    async def delayed(
        self,
        claim: BounceSource | Sequence[BounceSource],
        recipients: Sequence[RecipientOutcome],
        until: datetime,
    ) -> None:
        """Send one delay warning for recipients of one message that are still retried.

        Args:
            claim: a claim of the message (or the claims of that one message).
            recipients: each delayed recipient with its last reply and MX host.
            until: when the queue gives up (queued time + ``delivery.expire_after``).
        """
        now = self._clock()
        statuses = _statuses(recipients, now, will_retry_until=until)
        await self._notify(claim, statuses, "delayed", now)

    async def _notify(
        self,
        claim: BounceSource | Sequence[BounceSource],
        statuses: Sequence[RecipientStatus],
        action: DsnAction,
        now: datetime,
    ) -> None:
        if not statuses:
            return
        source = _one(claim)
        if source.sender == "":
            # RFC 5321 §4.5.5: notifications are never sent about a null-sender message.
            log.info(
                "queue message %s: not sending a %s DSN for a null-sender message (%s)",
                source.message_id,
                action,
                ", ".join(s.recipient for s in statuses),
            )
            return
        dsn = build_dsn(
            reporting_mta=self._hostname,
            original_sender=source.sender,
            original_envelope_id=None,
            recipients=statuses,
            original_headers=await self._original_headers(source),
            arrival_date=source.created_at,
            now=now,
            action=action,
            message_id=f"{secrets.token_hex(16)}@{self._hostname}",
        )
        # RFC 3464 §2 / RFC 5321 §4.5.5: the DSN's own reverse-path is null.
        await self._submit("", [source.sender], dsn)
        log.info(
            "queue message %s: %s DSN sent to %s for %s",
            source.message_id,
            action,
            source.sender,
            ", ".join(s.recipient for s in statuses),
        )

    async def _original_headers(self, source: BounceSource) -> bytes:
        head = header_section(source.trace_header, MAX_HEADERS)
        if len(head) >= MAX_HEADERS:
            return head
        try:
            body = await self._blobs.get(source.blob_key)
        except BlobMissing:
            log.warning(
                "queue message %s: body %s missing; the DSN quotes the trace header only",
                source.message_id,
                source.blob_key,
            )
            return head
        # Only the first MAX_HEADERS octets can matter, whatever the body's size.
        return header_section(source.trace_header + body[:MAX_HEADERS], MAX_HEADERS)


def _statuses(
    outcomes: Sequence[RecipientOutcome],
    now: datetime,
    *,
    will_retry_until: datetime | None = None,
) -> list[RecipientStatus]:
    """One DSN status per recipient, each with its last reply and MX host."""
    return [
        RecipientStatus(
            recipient=rcpt,
            code=reply.code,
            enhanced=reply.enhanced,
            text=reply.text,
            remote_mta=mx_host,
            last_attempt=now,
            will_retry_until=will_retry_until,
        )
        for rcpt, reply, mx_host in outcomes
    ]


def _one(claim: BounceSource | Sequence[BounceSource]) -> BounceSource:
    if isinstance(claim, Sequence):
        return claim[0]
    return claim
