"""The SQL implementation of :class:`courriel.mailstore.imapport.ImapStorePort`.

``SqlImapStore`` owns the transactions: each port method is one read or one write
transaction (``open_folder`` and ``changes_since`` add a short write to claim
\\Recent only when there is something to claim; concurrent ``store_flags`` calls share
one write transaction, :mod:`.combine`), and every write wakes the account's
in-process waiters after its commit. ``open_folder`` goes through the folder mirror
(:mod:`.mirror`): it reads only the changes since the mirrored state. The SQL lives
in :mod:`.folders` (names, CREATE, DELETE, RENAME, subscriptions, STATUS),
:mod:`.selected` (snapshots, deltas, \\Recent) and :mod:`.imapwrite` (STORE, EXPUNGE,
COPY/MOVE, APPEND).

``last_change_id`` of :class:`StoreResult` and :class:`CopyResult` is the id of the
newest change the operation itself wrote (0 when it wrote none). Changes of other
sessions may lie below it, so a session must not skip its feed position ahead to it:
positions only ever come from snapshots and deltas.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from courriel.errors import InvalidInput, NotFound, StorageError
from courriel.mailstore import folders as _folders
from courriel.mailstore import imapwrite as _write
from courriel.mailstore import selected as _selected
from courriel.mailstore.changes import ChangeFeed
from courriel.mailstore.combine import WriteCombiner
from courriel.mailstore.flags import check_flags
from courriel.mailstore.imapflags import store_flags_sync
from courriel.mailstore.imapport import (
    AppendResult,
    CopyResult,
    FolderDelta,
    FolderInfo,
    FolderSnapshot,
    FolderStatus,
    StoreResult,
)
from courriel.mailstore.messages import free_blobs
from courriel.mailstore.mirror import FolderMirror
from courriel.mailstore.types import Principal
from courriel.storage import blobgc
from courriel.storage.blobs import BlobStore, persist_files
from courriel.storage.db import Database
from courriel.storage.models import folders, messages, utcnow

__all__ = ["SqlImapStore"]


class SqlImapStore:
    """Folders and messages of one account as IMAP needs them, on SQL and the blob store.

    Args:
        db: the opened, migrated database.
        blobs: where message bodies live.
        feed: the change feed whose waiters every mutation wakes.
        mirror: the folder mirror (a new, empty one by default).
    """

    def __init__(
        self, db: Database, blobs: BlobStore, feed: ChangeFeed, mirror: FolderMirror | None = None
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._feed = feed
        # Message metadata of recently opened folders, kept current from the change
        # feed (see courriel.mailstore.mirror): SELECT reads only what changed.
        self.mirror = mirror if mirror is not None else FolderMirror()
        self._stores = WriteCombiner(db)

    # -- folders ---------------------------------------------------------------------

    async def list_folders(self, principal: Principal) -> list[FolderInfo]:
        """Every folder of the account, by name."""
        async with self._db.read() as conn:
            return await _folders.list_folders(conn, principal.account_id)

    async def subscriptions(self, principal: Principal) -> list[str]:
        """Subscribed names, including names of folders that no longer exist."""
        async with self._db.read() as conn:
            return await _folders.list_subscriptions(conn, principal.account_id)

    async def create_folder(
        self, principal: Principal, name: str, *, special_use: str | None = None
    ) -> FolderInfo:
        """Create a folder and its missing parents. Raises AlreadyExists, InvalidInput."""
        async with self._db.write() as conn:
            info = await _folders.create_folder(conn, principal.account_id, name, special_use)
        self._feed.notify([principal.account_id])
        return info

    async def delete_folder(self, principal: Principal, name: str) -> None:
        """Delete a folder and its messages. Raises NotFound, InvalidInput."""
        async with self._db.write() as conn:
            keys = await _folders.delete_folder(conn, principal.account_id, name)
        self._feed.notify([principal.account_id])
        await free_blobs(self._db, self._blobs, keys)

    async def rename_folder(self, principal: Principal, old: str, new: str) -> None:
        """Rename a folder with its children. Raises NotFound, AlreadyExists, InvalidInput."""
        async with self._db.write() as conn:
            await _folders.rename_folder(conn, principal.account_id, old, new)
        self._feed.notify([principal.account_id])

    async def set_subscribed(self, principal: Principal, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE. Raises NotFound (subscribing to nothing), InvalidInput."""
        async with self._db.write() as conn:
            await _folders.set_subscribed(conn, principal.account_id, name, subscribed)

    async def folder_status(self, principal: Principal, name: str) -> FolderStatus:
        """The folder's counters (claims nothing). Raises NotFound, InvalidInput."""
        async with self._db.read() as conn:
            return await _folders.folder_status(conn, principal.account_id, name)

    # -- a selected folder -----------------------------------------------------------

    async def open_folder(
        self, principal: Principal, name: str, *, readonly: bool
    ) -> FolderSnapshot:
        """Snapshot for SELECT (claims \\Recent) or EXAMINE. Raises NotFound, InvalidInput."""
        name = _folders.check_name(name)
        async with self._db.read() as conn:
            snapshot, unclaimed = await _selected.mirrored_snapshot(
                conn, self.mirror, principal.account_id, name
            )
        if readonly or unclaimed >= snapshot.uidnext:
            return snapshot
        # RFC 3501 §2.3.2: the UIDs this snapshot shows that nobody claimed are ours.
        first = await _selected.claim_recent(self._db, snapshot.folder_id, snapshot.uidnext)
        if first is None:
            return snapshot
        return dataclasses.replace(snapshot, recent_from=first)

    async def changes_since(
        self, principal: Principal, folder_id: int, after_change_id: int, *, claim_recent: bool
    ) -> FolderDelta:
        """What changed in the folder after a feed position (one read statement)."""
        async with self._db.read() as conn:
            delta, unclaimed = await _selected.read_delta(
                conn, principal.account_id, folder_id, after_change_id
            )
        if not claim_recent or not delta.added or unclaimed >= delta.uidnext:
            return delta
        first = await _selected.claim_recent(self._db, folder_id, delta.uidnext)
        if first is None:
            return delta
        return dataclasses.replace(delta, recent_from=first)

    async def expunged_since(self, principal: Principal, folder_id: int, modseq: int) -> list[int]:
        """UIDs of the folder expunged above ``modseq``, ascending (QRESYNC, one read)."""
        async with self._db.read() as conn:
            return await _selected.expunged_since(conn, principal.account_id, folder_id, modseq)

    async def read_message(self, principal: Principal, message_id: int) -> bytes:
        """Trace header + body, as stored. Raises NotFound (BlobMissing if the body is gone)."""
        query = (
            messages.select()
            .with_only_columns(messages.c.blob_key, messages.c.trace_header)
            .join_from(messages, folders, folders.c.id == messages.c.folder_id)
            .where(messages.c.id == message_id, folders.c.account_id == principal.account_id)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound("no such message")
        return bytes(row.trace_header) + await self._blobs.get(row.blob_key)

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
        """Add, remove or replace flags of these UIDs (missing UIDs are ignored).

        Raises:
            NotFound: the folder is gone. InvalidInput: a malformed flag.
        """
        flags = check_flags(flags)

        def work(conn: Connection) -> StoreResult:
            return store_flags_sync(
                conn,
                principal.account_id,
                folder_id,
                uids,
                mode=mode,
                flags=flags,
                unchanged_since=unchanged_since,
            )

        # Concurrent STOREs share one transaction and one commit (group commit).
        result = await self._stores.submit(work)
        if result.updated:
            self._feed.notify([principal.account_id])
        return result

    async def expunge(
        self, principal: Principal, folder_id: int, uids: Sequence[int] | None = None
    ) -> list[int]:
        """Remove the messages flagged \\Deleted (among ``uids`` when given); their UIDs."""
        async with self._db.write() as conn:
            gone, keys = await _write.expunge_deleted(conn, principal.account_id, folder_id, uids)
        if gone:
            self._feed.notify([principal.account_id])
            await free_blobs(self._db, self._blobs, keys)
        return gone

    async def copy(
        self,
        principal: Principal,
        folder_id: int,
        uids: Sequence[int],
        dest: str,
        *,
        move: bool,
    ) -> CopyResult:
        """COPY or MOVE to ``dest``. Raises NotFound (the session answers [TRYCREATE])."""
        dest = _folders.check_name(dest)
        async with self._db.write() as conn:
            result = await _write.copy_messages(
                conn, principal.account_id, folder_id, uids, dest, move=move
            )
        if result.dest_uids:
            self._feed.notify([principal.account_id])
        return result

    async def append(
        self,
        principal: Principal,
        name: str,
        message: bytes,
        *,
        flags: Sequence[str],
        internal_date: datetime | None,
    ) -> AppendResult:
        """Store a new message (blob, then row). Raises NotFound, InvalidInput."""
        name = _folders.check_name(name)
        flags = check_flags(flags)
        if internal_date is not None and internal_date.tzinfo is None:
            raise InvalidInput("the internal date has no time zone")
        writer = self._blobs.writer()
        await writer.write(message)
        prepared = writer.prepare()
        ref = prepared.ref
        try:
            try:
                await asyncio.to_thread(persist_files, [prepared])
            except OSError as exc:
                raise StorageError(f"blob store write failed: {exc}") from exc
            async with self._db.write() as conn:
                # The blob lock, then the body (again if free_blobs removed it meanwhile).
                await conn.run_sync(blobgc.share_keys, [ref.key])
                await conn.run_sync(prepared.persist_rows)
                if await conn.run_sync(blobgc.ensure_bodies, [prepared]):
                    raise StorageError("the body was freed concurrently; try again")
                result = await _write.append_message(
                    conn,
                    principal.account_id,
                    name,
                    blob_key=ref.key,
                    size=ref.size,
                    flags=flags,
                    internal_date=internal_date or utcnow(),
                )
        except BaseException:
            # The body may now be referenced by nothing (free_blobs checks).
            await free_blobs(self._db, self._blobs, [ref.key])
            raise
        self._feed.notify([principal.account_id])
        return result

    async def wait_for_change(
        self,
        account_id: int,
        after_change_id: int,
        timeout: float,  # noqa: ASYNC109 - the port's contract
    ) -> int:
        """Wait (up to ``timeout`` s) for a change of the account newer than the position."""
        return await self._feed.wait_for_change(account_id, after_change_id, timeout)
