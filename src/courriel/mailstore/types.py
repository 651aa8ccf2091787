"""Dataclasses and ports of the mail store that protocol sessions use.

Protocol code imports this module only (never :mod:`courriel.mailstore.service`),
so ``courriel.protocols`` never reaches storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "SPECIAL_FOLDERS",
    "Authenticator",
    "Maildrop",
    "MaildropInUse",
    "MaildropMessage",
    "MaildropPort",
    "Principal",
]

# The folders every account gets, with their RFC 6154 SPECIAL-USE roles.
SPECIAL_FOLDERS: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated account."""

    account_id: int
    address: str  # the account's own address, lower-cased domain
    senders: frozenset[str]  # addresses it may send as: its own and its aliases (lower case)


class Authenticator(Protocol):
    """Checks a username and password (argon2id) for any protocol."""

    async def authenticate(self, username: str, password: str) -> Principal | None:
        """Return the principal, or None when the user is unknown or the password wrong."""


class MaildropInUse(Exception):
    """Another session holds the maildrop (RFC 2449 §8.1.2 ``[IN-USE]``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MaildropMessage:
    """One message of a POP3 maildrop snapshot (the account's INBOX)."""

    message_id: int  # the mail store's row id
    uidl: str  # stable across sessions: "<uidvalidity>.<uid>"
    size: int  # octets as sent by RETR (trace header + body, CRLF line ends)


class Maildrop(Protocol):
    """A locked snapshot of an INBOX for one POP3 session (RFC 1939 §8)."""

    @property
    def messages(self) -> list[MaildropMessage]:
        """The messages at lock time, in order (message numbers are index + 1)."""

    async def read(self, message_id: int) -> bytes:
        """The full message (trace header + body) as stored."""

    async def delete(self, message_ids: list[int]) -> None:
        """Expunge these messages; called only in the UPDATE state."""

    async def release(self) -> None:
        """Release the lock; idempotent."""


class MaildropPort(Protocol):
    """Opens maildrops with an exclusive lock."""

    async def open_maildrop(self, principal: Principal) -> Maildrop:
        """Lock and snapshot the INBOX or raise MaildropInUse."""
