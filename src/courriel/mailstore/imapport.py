"""The port between the IMAP session and the mail store: dataclasses and one Protocol.

Protocol code imports this module only (never :mod:`courriel.mailstore.service` nor
storage), so ``courriel.protocols`` stays free of SQL. The implementation is
:class:`courriel.mailstore.imapstore.SqlImapStore`.

Folder names here are Unicode display names with ``/`` as the hierarchy separator
(``Archive/2026``); ``INBOX`` is always spelled ``INBOX``. Flags are stored with their
canonical spelling (``\\Seen``), keywords as the client wrote them; both compare
case-insensitively (RFC 9051 §2.3.2), and the store keeps the first spelling it saw.

Errors raised by the port come from :mod:`courriel.errors`: ``NotFound`` (no such
folder or message), ``AlreadyExists`` (CREATE/RENAME target exists), ``InvalidInput``
(a bad name, deleting INBOX, a folder with children that cannot go), and
``StorageError``. Every mutation commits, writes its ``changes`` rows in the same
transaction, and wakes in-process waiters of the account after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from courriel.mailstore.types import Principal

__all__ = [
    "SEPARATOR",
    "AppendResult",
    "CopyResult",
    "FolderDelta",
    "FolderInfo",
    "FolderSnapshot",
    "FolderStatus",
    "ImapStorePort",
    "MessageMeta",
    "StoreResult",
]

SEPARATOR = "/"  # the hierarchy delimiter of every folder name (RFC 9051 §5.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderInfo:
    """One folder of an account, for LIST."""

    folder_id: int
    name: str
    special_use: str | None  # RFC 6154 attribute such as "\\Sent", or None
    subscribed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderStatus:
    """Counters of one folder (STATUS, RFC 9051 §6.3.11; RFC 8438 SIZE)."""

    name: str
    messages: int
    recent: int  # messages with UID >= the folder's first unclaimed recent UID
    unseen: int  # messages without \\Seen
    deleted: int  # messages with \\Deleted
    size: int  # sum of the messages' sizes (RFC822.SIZE)
    uidnext: int
    uidvalidity: int
    highest_modseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageMeta:
    """What a session keeps of one message (no body)."""

    message_id: int  # the store's row id, for read_message
    uid: int
    flags: frozenset[str]  # system flags and keywords, without \\Recent
    modseq: int
    size: int  # RFC822.SIZE: trace header + body, as read_message returns it
    internal_date: datetime  # timezone-aware
    blob_key: str  # identifies the immutable body (a cache key for parsed structure)


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderSnapshot:
    """A selected folder as the session first sees it (SELECT/EXAMINE).

    ``recent_from`` is the first UID that is \\Recent for this session (RFC 3501 §2.3.2):
    a read-write SELECT claims every UID from the folder's unclaimed mark up to
    ``uidnext - 1``; EXAMINE claims nothing and gets ``uidnext`` (nothing recent).
    """

    folder_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    messages: list[MessageMeta]  # ascending UID: sequence number = index + 1
    recent_from: int
    keywords: frozenset[str]  # keywords in use in the folder (for FLAGS)
    last_change_id: int  # the account's change-feed position this snapshot reflects


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderDelta:
    """What changed in a selected folder since a change-feed position.

    ``added`` are messages appended since (ascending UID; some may already be expunged
    again, in which case they are absent from ``added`` and their UID is not in
    ``expunged`` either). ``updated`` carries the new flags and modseq of messages whose
    flags changed. ``expunged`` are UIDs removed. When ``recent_claim`` was asked and
    this session claimed them, ``recent_from`` is the first claimed UID (else None).
    ``gone`` is True when the folder was deleted or renamed away (the session must
    close it, as Dovecot does with ``* BYE``).
    """

    added: list[MessageMeta]
    updated: list[MessageMeta]
    expunged: list[int]
    uidnext: int
    highest_modseq: int
    last_change_id: int
    recent_from: int | None = None
    gone: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreResult:
    """Outcome of a flag change (RFC 9051 §6.4.6, RFC 7162 §3.1.3).

    ``updated`` are the messages whose flags or modseq changed, with their new state;
    ``unchanged`` are messages whose flags already matched (no new modseq);
    ``modified`` are UIDs refused by UNCHANGEDSINCE (their modseq was higher).
    """

    updated: list[MessageMeta]
    unchanged: list[MessageMeta]
    modified: list[int]
    highest_modseq: int
    last_change_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyResult:
    """Outcome of COPY/MOVE, for RFC 4315 ``COPYUID``: source and new UIDs, pairwise."""

    uidvalidity: int  # of the destination
    source_uids: list[int]
    dest_uids: list[int]
    last_change_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    """Outcome of APPEND, for RFC 4315 ``APPENDUID``."""

    uidvalidity: int
    uid: int


class ImapStorePort(Protocol):
    """Folders and messages of one account as IMAP needs them."""

    # -- folders ---------------------------------------------------------------------

    async def list_folders(self, principal: Principal) -> list[FolderInfo]:
        """Every folder of the account, by name."""

    async def subscriptions(self, principal: Principal) -> list[str]:
        """Subscribed names, including names of folders that no longer exist."""

    async def create_folder(
        self, principal: Principal, name: str, *, special_use: str | None = None
    ) -> FolderInfo:
        """Create a folder (and missing parents, RFC 9051 §6.3.4).

        A folder created again after DELETE gets a new UIDVALIDITY, larger than any
        this account's folders had. Raises AlreadyExists, InvalidInput.
        """

    async def delete_folder(self, principal: Principal, name: str) -> None:
        """Delete a folder and its messages (RFC 9051 §6.3.5).

        Raises NotFound; InvalidInput for INBOX or for a folder with children
        (RFC 3501 §6.3.4: those are refused rather than left \\Noselect).
        """

    async def rename_folder(self, principal: Principal, old: str, new: str) -> None:
        """Rename a folder and its children (RFC 9051 §6.3.6).

        Renaming INBOX moves its messages to the new folder and leaves INBOX empty.
        Raises NotFound, AlreadyExists, InvalidInput.
        """

    async def set_subscribed(self, principal: Principal, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE a name (the folder need not exist to unsubscribe).

        Raises NotFound when subscribing to a folder that does not exist.
        """

    async def folder_status(self, principal: Principal, name: str) -> FolderStatus:
        """The folder's counters. Raises NotFound."""

    # -- a selected folder -----------------------------------------------------------

    async def open_folder(
        self, principal: Principal, name: str, *, readonly: bool
    ) -> FolderSnapshot:
        """Snapshot a folder for SELECT (claiming \\Recent) or EXAMINE. Raises NotFound."""

    async def changes_since(
        self, principal: Principal, folder_id: int, after_change_id: int, *, claim_recent: bool
    ) -> FolderDelta:
        """What changed in the folder after a change-feed position (one read).

        With ``claim_recent``, messages added since that nobody has claimed become
        \\Recent for this session.
        """

    async def expunged_since(self, principal: Principal, folder_id: int, modseq: int) -> list[int]:
        """UIDs of the folder expunged with a modseq above ``modseq``, ascending, distinct.

        For QRESYNC (RFC 7162 §3.2.5 SELECT, §3.2.6 UID FETCH VANISHED): every expunge
        stays in the ``changes`` table, so the answer is exact: only UIDs really expunged
        after that modseq (a message added and expunged since is among them; the client
        never saw it, and VANISHED may name such UIDs). A folder that is not the
        account's gives an empty list.
        """

    async def read_message(self, principal: Principal, message_id: int) -> bytes:
        """The full message (trace header + body, CRLF line ends). Raises NotFound."""

    async def store_flags(
        self,
        principal: Principal,
        folder_id: int,
        uids: Sequence[int],
        mode: Literal["+", "-", ""],
        flags: Sequence[str],
        *,
        unchanged_since: int | None = None,
    ) -> StoreResult:
        """Add, remove or replace flags of these UIDs (missing UIDs are ignored)."""

    async def expunge(
        self, principal: Principal, folder_id: int, uids: Sequence[int] | None = None
    ) -> list[int]:
        """Remove the messages flagged \\Deleted (only those among ``uids`` when given).

        Returns the expunged UIDs, ascending.
        """

    async def copy(
        self,
        principal: Principal,
        folder_id: int,
        uids: Sequence[int],
        dest: str,
        *,
        move: bool,
    ) -> CopyResult:
        """Copy (or move, RFC 6851) messages to another folder, keeping flags and dates.

        Copies get new UIDs in ascending source-UID order and are not \\Recent in the
        source session. A move expunges the sources in the same transaction. Raises
        NotFound when ``dest`` does not exist (the session answers ``[TRYCREATE]``).
        """

    async def append(
        self,
        principal: Principal,
        name: str,
        message: bytes,
        *,
        flags: Sequence[str],
        internal_date: datetime | None,
    ) -> AppendResult:
        """Store a new message (blob + row) with these flags. Raises NotFound."""

    async def wait_for_change(
        self,
        account_id: int,
        after_change_id: int,
        timeout: float,  # noqa: ASYNC109 - the port's contract
    ) -> int:
        """Wait (up to ``timeout`` s) for a change of the account newer than the position."""
