"""Per-key blob locks: a body is never deleted while a writer is making a row point to it.

Bodies are shared by content (SHA-256), so the same body can be freed by one
transaction (its last row is gone) while another transaction stores a new row for the
very same bytes (the same newsletter to a second account, a re-sent message, an IMAP
COPY). Checking "no row references the key" and then deleting is racy on its own: the
new row can commit between the check and the delete. This module closes that window
with a lock per key, taken by both sides inside their transactions:

- **Writers** (a transaction that inserts ``messages``/``queue_messages`` rows for a key)
  call :func:`share_keys` before writing those rows, then :func:`ensure_bodies`, which
  (re)makes the body durable if a deleter removed it after the writer had found it
  present; the rows commit while the lock is held.
- **Deleters** (:func:`courriel.mailstore.messages.free_blobs`) take the key
  exclusively, re-check references in a *new statement* (so it sees every writer that
  committed before the lock was granted), and delete the body before they commit.

So a deleter and a writer of one key never overlap: either the writer commits first and
the deleter sees its row, or the deleter deletes first and the writer restores the body
before its row commits. On PostgreSQL the lock is a transaction-level advisory lock on
the key's first 64 bits (shared for writers, exclusive for deleters), which works across
every node of a fleet; on SQLite every write transaction already holds the database's
single write lock (``BEGIN IMMEDIATE``), across processes too, so nothing more is needed.

Feedback reports (``feedback_reports.blob_key``, mail that came to a VERP address) are
references too: :func:`delete_bodies` re-checks them under the locks and never deletes a
body a report still points to, whatever its caller checked (the deleters were written
before reports existed and look at ``messages`` and ``queue_messages`` only). The report
rows are kept, body included, for a retention after processing; pruning them then frees
the body (see :mod:`courriel.marketing.campaigns.feedback`).

Deadlocks: a deleter never waits while holding a key. It first *tries* every key of a
batch without waiting; a key that is busy (a writer holds it) is retried later alone in
its own transaction, where it waits holding nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import StorageError
from courriel.storage.blobs import BlobStore, FsBlobStore, PreparedBlob, SqlBlobStore
from courriel.storage.models import blobs as blobs_table
from courriel.storage.models.campaigns import feedback_reports

__all__ = ["delete_bodies", "ensure_bodies", "lock_key", "share_keys", "try_lock_keys"]

_SHARE = text(
    "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(CAST(:ids AS bigint[])) AS k"
).bindparams(bindparam("ids"))
_TRY = text(
    "SELECT k FROM unnest(CAST(:ids AS bigint[])) AS k WHERE pg_try_advisory_xact_lock(k)"
).bindparams(bindparam("ids"))
_LOCK = text("SELECT pg_advisory_xact_lock(:id)")


def _lock_id(key: str) -> int:
    """The advisory lock number of a key: its first 64 bits as a signed bigint."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def share_keys(conn: Connection, keys: Sequence[str]) -> None:
    """Writer side: hold ``keys`` (shared) until the transaction ends.

    Call it before inserting rows that reference the keys, in a write transaction.
    """
    if keys and _postgres(conn):
        conn.execute(_SHARE, {"ids": sorted({_lock_id(key) for key in keys})})


def ensure_bodies(conn: Connection, prepared: Sequence[PreparedBlob]) -> list[str]:
    """Writer side, after :func:`share_keys`: make sure every body of the batch exists.

    A filesystem body that a deleter removed after ``persist_files`` had found it present
    is written again from the bytes still in memory. The sql store needs nothing: its
    ``persist_rows`` inserted the row in this transaction, after the lock.

    Returns:
        The keys whose body is gone and cannot be restored here (a spilled large body):
        the caller must not commit rows pointing to them.
    """
    lost: list[str] = []
    for item in prepared:
        pending = item.pending
        if pending is None:
            continue
        if pending.store.path_for(item.ref.key).exists():
            continue
        if pending.file is not None:
            lost.append(item.ref.key)  # its bytes were in a temporary file, now dropped
            continue
        pending.store.commit_many({item.ref.key: pending})
    return lost


def try_lock_keys(conn: Connection, keys: Sequence[str]) -> list[str]:
    """Deleter side: take every free key exclusively without waiting.

    Returns:
        The keys now held (all of them on SQLite, where the write lock covers them).
    """
    if not _postgres(conn):
        return list(keys)
    ids = {_lock_id(key): key for key in keys}
    held = conn.execute(_TRY, {"ids": sorted(ids)}).scalars()
    return sorted(ids[int(lock)] for lock in held)


def lock_key(conn: Connection, key: str) -> None:
    """Deleter side: wait for one key (exclusive) until the transaction ends."""
    if _postgres(conn):
        conn.execute(_LOCK, {"id": _lock_id(key)})


async def delete_bodies(conn: AsyncConnection, store: BlobStore, keys: Sequence[str]) -> None:
    """Deleter side: delete the bodies of ``keys`` while their locks are held.

    The sql store deletes in ``conn``'s transaction (so the rows go with the commit);
    the filesystem store unlinks before the caller commits. A key still referenced by a
    ``feedback_reports`` row is kept (checked here, under the locks).
    """
    if not keys:
        return
    reported = select(feedback_reports.c.blob_key).where(
        feedback_reports.c.blob_key.in_(list(keys))
    )
    kept = set(await conn.scalars(reported))
    keys = [key for key in keys if key not in kept]
    if not keys:
        return
    if isinstance(store, SqlBlobStore):
        await conn.execute(delete(blobs_table).where(blobs_table.c.key.in_(list(keys))))
    elif isinstance(store, FsBlobStore):
        await store.delete_many(keys)
    else:
        raise StorageError(f"unsupported blob store {type(store).__name__}")
