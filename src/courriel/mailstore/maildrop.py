"""POP3 maildrops: an exclusive lease on an account's INBOX and a snapshot of it.

Invariants:
- At most one live lease per account (``maildrop_locks`` row, RFC 1939 §8 asks for an
  exclusive-access lock). A lease expires ``lease`` after it was taken or last used,
  so a crashed session cannot lock the maildrop forever; an expired lease may be
  taken over, and its old holder then fails on its next read or delete.
- The snapshot is fixed at open: message numbers never change during a session.
- UIDLs are ``<uidvalidity>.<uid>`` (RFC 1939 §7 UIDL: unique and persistent).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.mailstore.changes import ChangeFeed
from courriel.mailstore.messages import INBOX, expunge, free_blobs
from courriel.mailstore.types import MaildropInUse, MaildropMessage, Principal
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.storage.models import folders, maildrop_locks, messages

__all__ = ["DEFAULT_LEASE", "SqlMaildrop", "open_maildrop"]

DEFAULT_LEASE = timedelta(minutes=15)


class SqlMaildrop:
    """A leased snapshot of one account's INBOX (implements ``types.Maildrop``)."""

    def __init__(
        self,
        *,
        db: Database,
        blobs: BlobStore,
        feed: ChangeFeed,
        principal: Principal,
        folder_id: int,
        holder: str,
        snapshot: list[MaildropMessage],
        clock: Callable[[], datetime],
        lease: timedelta,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._feed = feed
        self._account_id = principal.account_id
        self._folder_id = folder_id
        self._holder = holder
        self._messages = snapshot
        self._ids = {m.message_id for m in snapshot}
        self._clock = clock
        self._lease = lease
        self._released = False
        # When our lease ends at the latest (taken just before this object was made).
        self._expires = clock() + lease

    @property
    def messages(self) -> list[MaildropMessage]:
        """The messages at lock time (message number = index + 1)."""
        return list(self._messages)

    async def _refresh(self, conn: AsyncConnection) -> None:
        # Extends our lease; fails when it was released or taken over after expiry.
        result = await conn.execute(
            update(maildrop_locks)
            .where(
                maildrop_locks.c.account_id == self._account_id,
                maildrop_locks.c.holder == self._holder,
            )
            .values(expires_at=self._clock() + self._lease)
        )
        if self._released or result.rowcount == 0:
            raise MaildropInUse("the maildrop lock was lost")
        self._expires = self._clock() + self._lease

    def _lease_is_fresh(self) -> bool:
        # More than half the lease left: nobody can have taken it over (a takeover needs
        # an expired lease), so a read needs no write transaction to extend it.
        return not self._released and self._clock() < self._expires - self._lease / 2

    async def read(self, message_id: int) -> bytes:
        """Return trace header + body of a message of the snapshot.

        Raises:
            MaildropInUse: the lease was lost. BlobMissing: the body is gone.
            KeyError: the id is not in the snapshot (or was expunged meanwhile).
        """
        if message_id not in self._ids:
            raise KeyError(message_id)
        query = select(messages.c.blob_key, messages.c.trace_header).where(
            messages.c.id == message_id, messages.c.folder_id == self._folder_id
        )
        if self._lease_is_fresh():
            # The common case: a RETR is one read, not a write lock and an fsync.
            async with self._db.read() as conn:
                row = (await conn.execute(query)).first()
        else:
            async with self._db.write() as conn:
                await self._refresh(conn)
                row = (await conn.execute(query)).first()
        if row is None:
            raise KeyError(message_id)
        body = await self._blobs.get(row.blob_key)
        return bytes(row.trace_header) + body

    async def delete(self, message_ids: list[int]) -> None:
        """Expunge these snapshot messages in one transaction (RFC 1939 §6 UPDATE state).

        Raises:
            MaildropInUse: the lease was lost (nothing is deleted then).
        """
        wanted = [i for i in message_ids if i in self._ids]
        async with self._db.write() as conn:
            await self._refresh(conn)
            keys = await expunge(
                conn, account_id=self._account_id, folder_id=self._folder_id, message_ids=wanted
            )
        self._feed.notify([self._account_id])
        await free_blobs(self._db, self._blobs, keys)

    async def release(self) -> None:
        """Drop the lease; idempotent."""
        if self._released:
            return
        self._released = True
        async with self._db.write() as conn:
            await conn.execute(
                delete(maildrop_locks).where(
                    maildrop_locks.c.account_id == self._account_id,
                    maildrop_locks.c.holder == self._holder,
                )
            )


async def _take_lease(
    db: Database,
    conn: AsyncConnection,
    *,
    account_id: int,
    holder: str,
    now: datetime,
    lease: timedelta,
) -> None:
    expires = now + lease
    await conn.execute(
        db.insert_ignore(maildrop_locks).values(
            account_id=account_id, holder=holder, expires_at=expires
        )
    )
    # Take over an expired lease of a session that went away.
    await conn.execute(
        update(maildrop_locks)
        .where(maildrop_locks.c.account_id == account_id, maildrop_locks.c.expires_at <= now)
        .values(holder=holder, expires_at=expires)
    )
    current = await conn.scalar(
        select(maildrop_locks.c.holder).where(maildrop_locks.c.account_id == account_id)
    )
    if current != holder:
        raise MaildropInUse("another session holds the maildrop")


async def open_maildrop(
    db: Database,
    blobs: BlobStore,
    feed: ChangeFeed,
    principal: Principal,
    *,
    clock: Callable[[], datetime],
    lease: timedelta = DEFAULT_LEASE,
) -> SqlMaildrop:
    """Lease the principal's INBOX and snapshot its messages not flagged ``\\Deleted``.

    Raises:
        MaildropInUse: another live session holds the lease.
    """
    holder = secrets.token_hex(16)
    async with db.write() as conn:
        await _take_lease(
            db, conn, account_id=principal.account_id, holder=holder, now=clock(), lease=lease
        )
        folder = (
            await conn.execute(
                select(folders.c.id, folders.c.uidvalidity).where(
                    folders.c.account_id == principal.account_id, folders.c.name == INBOX
                )
            )
        ).one()
        rows = (
            await conn.execute(
                select(messages.c.id, messages.c.uid, messages.c.size)
                .where(
                    messages.c.folder_id == folder.id,
                    ~messages.c.flags.contains("\\Deleted", autoescape=True),
                )
                .order_by(messages.c.uid)
            )
        ).all()
    snapshot = [
        MaildropMessage(message_id=r.id, uidl=f"{folder.uidvalidity}.{r.uid}", size=r.size)
        for r in rows
    ]
    return SqlMaildrop(
        db=db,
        blobs=blobs,
        feed=feed,
        principal=principal,
        folder_id=folder.id,
        holder=holder,
        snapshot=snapshot,
        clock=clock,
        lease=lease,
    )
