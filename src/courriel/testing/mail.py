"""Test helper: a real :class:`courriel.marketing.ports.Mailer` that keeps what it is given.

:class:`RecordingMailer` delivers nothing; it records each accepted message as a
:class:`SentMail`. Without a database it is the plain recorder the web pages and the
opt-in flows need (they never pass ``on_commit``). With one, it honours the port's
contract as the delivery committer does: ``on_commit`` runs inside a real write
transaction (:meth:`courriel.storage.db.Database.run_write`) and a message counts as sent
only when that transaction commits.

Invariant: a message is in :attr:`RecordingMailer.sent` only if ``send`` accepted it and,
with a database, its transaction committed (a refused recipient, an injected error or a
failed transaction records nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from courriel.storage.db import Database

__all__ = ["RecordingMailer", "SentMail"]


@dataclass(frozen=True, slots=True)
class SentMail:
    """One message the mailer accepted, with the arguments it was given."""

    sender: str
    recipient: str
    message: bytes
    transactional: bool
    signed: bool = False  # carried its DKIM signatures already (see the port)


@dataclass
class RecordingMailer:
    """A Mailer port implementation that stores nothing and keeps what it accepted.

    Attributes:
        db: when set, ``on_commit`` runs in a real write transaction on it; without it a
            call with ``on_commit`` is a ``TypeError`` (there is no transaction to run in).
        sent: the accepted messages, in the order they were recorded.
        refuse: recipients refused for good (``send`` returns False, nothing recorded).
        error: raised instead of storing, while set (a ``DeliveryRefused``, a simulated
            crash); tests clear it to let the next call through.
        record_with_commit: record inside the write transaction, after ``on_commit``,
            rather than once ``run_write`` has returned: a task cancelled while awaiting
            the commit still leaves its record (the campaign sender's tests count copies
            that way). Without ``db`` it changes nothing.
    """

    db: Database | None = None
    sent: list[SentMail] = field(default_factory=list)
    refuse: Container[str] = field(default_factory=frozenset)
    error: BaseException | None = None
    record_with_commit: bool = False

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
        """Record ``message`` for ``recipient`` (see the port); False when refused.

        ``signed`` is recorded on the :class:`SentMail` (a campaign's render processes
        signed the message)."""
        if self.error is not None:
            raise self.error
        if recipient in self.refuse:
            return False
        mail = SentMail(sender, recipient, message, transactional, signed)
        if self.db is None:
            if on_commit is not None:
                raise TypeError("on_commit needs a transaction: give RecordingMailer a db")
            self.sent.append(mail)
            return True

        def store(conn: Connection) -> None:
            if on_commit is not None:
                on_commit(conn)
            if self.record_with_commit:
                self.sent.append(mail)

        await self.db.run_write(store)
        if not self.record_with_commit:
            self.sent.append(mail)
        return True
