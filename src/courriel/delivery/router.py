"""The delivery target behind every SMTP listener: local mailbox or outbound queue.

Policy lives here, not in the protocol: on the MX listener (port 25) only local
domains are accepted (no open relay, whoever asks); on submission an authenticated
user may send anywhere. Each accepted transaction becomes one blob (streamed to the
blob store while DATA arrives) and, at commit, one database transaction holding the
mailbox copies and the queue rows. ``commit`` returns only when both the blob and the
rows are durable, so the 250 that follows never lies.

Feedback addresses (the VERP return paths of campaign and transactional mail, such as
``bounces+c123.<mac>@shop.example``) are recognised by an injected policy callback
(:data:`FeedbackCheck`, built by the composition root from marketing's VERP key, since
delivery does not import marketing). At a local domain, on every listener (the MX
included: bounces come from the internet), a valid one is accepted and its copy is a
``feedback_reports`` row committed in the same group-commit transaction as the rest of
the message, never a mailbox copy; one shaped like ours but forged or stale is refused
with 550 5.1.1, even where the domain has a catch-all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from courriel.delivery.committer import CommitJob, GroupCommitter
from courriel.delivery.signing import MessageSigning, SignerCache
from courriel.delivery.targets import MailFrom, SessionInfo
from courriel.errors import AddressError, DeliveryRefused, NotFound, StorageError
from courriel.mail.address import normalize_address
from courriel.mailstore.service import MailStore
from courriel.storage.blobs import BlobStore, BlobWriter

__all__ = ["FeedbackCheck", "Router", "RouterDelivery"]

log = logging.getLogger(__name__)

# Given a normalised address at a local domain: True when it is a valid feedback (VERP)
# address, False when it has the shape of one but is not valid (refused), None when it is
# not one at all (routed as usual). It must not block: no I/O.
FeedbackCheck = Callable[[str], bool | None]


class Router:
    """Implements :class:`courriel.delivery.targets.DeliveryTarget`."""

    def __init__(
        self,
        mailstore: MailStore,
        blobs: BlobStore,
        committer: GroupCommitter,
        signers: SignerCache | None = None,
        is_feedback_address: FeedbackCheck | None = None,
    ) -> None:
        self._mailstore = mailstore
        self._blobs = blobs
        self._committer = committer
        self._signers = signers
        self._is_feedback = is_feedback_address

    async def start(self, session: SessionInfo, mail_from: MailFrom) -> RouterDelivery:
        """Open a transaction. Sender checks against the account are the session's job."""
        return RouterDelivery(
            mailstore=self._mailstore,
            blobs=self._blobs,
            committer=self._committer,
            session=session,
            sender=mail_from.address,
            smtputf8=mail_from.smtputf8,
            eight_bit=(mail_from.body or "").upper() in ("8BITMIME", "BINARYMIME"),
            signing=_signs(session, self._signers),
            is_feedback=self._is_feedback,
        )


@dataclass(slots=True, kw_only=True)
class RouterDelivery:
    """One transaction: collects recipients, streams the body, commits once."""

    mailstore: MailStore
    blobs: BlobStore
    committer: GroupCommitter
    session: SessionInfo
    sender: str
    smtputf8: bool = False  # RFC 6531: the receiving server must offer SMTPUTF8
    eight_bit: bool = False  # RFC 6152: declared BODY=8BITMIME
    account_ids: list[int] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)  # queued for outbound delivery
    feedback: list[str] = field(default_factory=list)  # VERP addresses: feedback_reports rows
    is_feedback: FeedbackCheck | None = None
    writer: BlobWriter | None = None
    signing: MessageSigning | None = None  # set when this message gets DKIM-signed
    priority: str = "transactional"  # queue class of the remote copies ("bulk": campaigns)
    on_commit: Callable[[Connection], None] | None = None  # see CommitJob.on_commit

    async def add_recipient(self, address: str) -> None:
        """Route one recipient (RFC 5321 §3.3: RCPT may be refused one by one)."""
        try:
            normal = normalize_address(address)
        except AddressError as exc:
            raise DeliveryRefused(
                501, "5.1.3", "Bad recipient address syntax", internal=str(exc)
            ) from exc
        relaying = self.session.listener == "submission" and self.session.authenticated is not None
        resolution = await self.mailstore.resolve(normal, relaying=relaying)
        if resolution.local:
            if self._feedback(normal):
                return
            if not resolution.known:
                raise DeliveryRefused(
                    550, "5.1.1", "Recipient address rejected: user unknown", internal=normal
                )
            self._add_local(resolution.account_ids, resolution.forward)
            return
        # Not one of our domains: relaying is allowed only to authenticated users.
        if self.session.listener != "submission" or self.session.authenticated is None:
            raise DeliveryRefused(
                550, "5.7.1", "Relay access denied", internal=f"relay attempt to {normal}"
            )
        if address not in self.remote:
            self.remote.append(address)

    def _feedback(self, normal: str) -> bool:
        """True when ``normal`` (at a local domain) is a feedback address, now added."""
        verdict = None if self.is_feedback is None else self.is_feedback(normal)
        if verdict is None:
            return False
        if not verdict:
            # A forged or stale return path: answered like an unknown user (RFC 3463
            # 5.1.1), so that it tells a prober nothing and never reaches a catch-all.
            raise DeliveryRefused(
                550, "5.1.1", "Recipient address rejected: user unknown", internal=normal
            )
        if normal not in self.feedback:
            self.feedback.append(normal)
        return True

    def _add_local(self, account_ids: tuple[int, ...], forward: tuple[str, ...]) -> None:
        # One copy per mailbox, even when an alias and the account are both named.
        for account_id in account_ids:
            if account_id not in self.account_ids:
                self.account_ids.append(account_id)
        for target in forward:
            if target not in self.remote:
                self.remote.append(target)

    async def write(self, chunk: bytes) -> None:
        """Stream body bytes to the blob store (nothing is visible before commit)."""
        if self.writer is None:
            self.writer = self.blobs.writer()
        if self.signing is not None:
            self.signing.feed(chunk)
        await self.writer.write(chunk)

    async def commit(self, trace_header: bytes) -> str:
        """Make the body and the mailbox/queue rows durable (group commit), then return."""
        writer, self.writer = self.writer, None
        if writer is None:
            writer = self.blobs.writer()
        if self.signing is not None:
            # Signed once, as the message enters delivery (issue 3 §6); stored with the row.
            trace_header += await self.signing.signatures()
        blob = writer.prepare()
        job = CommitJob(
            sender=self.sender,
            account_ids=tuple(self.account_ids),
            remote=tuple(self.remote),
            feedback=tuple(self.feedback),
            blob=blob,
            # Sizes count what a reader gets: the stored trace header plus the body.
            size=len(trace_header) + blob.ref.size,
            trace_header=trace_header,
            internal_date=datetime.now(UTC),
            smtputf8=self.smtputf8,
            eight_bit=self.eight_bit,
            priority=self.priority,
            on_commit=self.on_commit,
        )
        try:
            await self.committer.commit(job)
        except (StorageError, NotFound, OSError) as exc:
            # NotFound: an account was removed between RCPT and the end of DATA.
            log.error("storing a message failed: %s", exc)
            raise DeliveryRefused(
                451, "4.3.0", "Temporary local problem, try again later", internal=str(exc)
            ) from exc
        return f"{blob.ref.key[:12]}.{uuid.uuid4().hex[:8]}"

    async def abort(self) -> None:
        """Drop the partial body, if any."""
        writer, self.writer = self.writer, None
        if writer is not None:
            await writer.discard()


def _signs(session: SessionInfo, signers: SignerCache | None) -> MessageSigning | None:
    # Only what an authenticated user submits (or courriel originates) is signed; mail
    # from the MX listener never is, whatever its From: says.
    if signers is None or session.listener != "submission" or session.authenticated is None:
        return None
    return MessageSigning(signers)
