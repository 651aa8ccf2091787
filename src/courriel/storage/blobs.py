"""Immutable message bodies keyed by their SHA-256 (hex), on the filesystem or in SQL.

Invariants:
- A key is the SHA-256 hex digest of exactly the stored bytes; a body is written once
  and never rewritten (trace headers live in the database rows, not in blobs).
- ``finish()`` / ``put()`` returning means the body is durable: on the filesystem the
  file was fsynced, renamed into place and its directory fsynced; in SQL the insert
  was committed.
- Writing a body that exists already is a no-op that returns the same key.

FS layout: ``<data>/blobs/<k[0:2]>/<k[2:4]>/<key>``, temporary files in ``<data>/blobs/tmp``.
fsync and whole-file reads run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import delete, select

from courriel.errors import BlobMissing, StorageError
from courriel.storage.db import Database
from courriel.storage.models import blobs as blobs_table

__all__ = [
    "BlobRef",
    "BlobStore",
    "BlobWriter",
    "FsBlobStore",
    "SqlBlobStore",
    "open_blob_store",
]

_KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRef:
    """A stored body."""

    key: str  # SHA-256 hex digest of the body
    size: int  # octets


class BlobWriter(Protocol):
    """Streams one body into the store; exactly one of ``finish``/``discard`` ends it."""

    async def write(self, chunk: bytes) -> None:
        """Append bytes to the body."""

    async def finish(self) -> BlobRef:
        """Make the body durable and return its reference."""

    async def discard(self) -> None:
        """Drop the partial body; idempotent."""


class BlobStore(Protocol):
    """Content-addressed storage of message bodies."""

    def writer(self) -> BlobWriter:
        """Start streaming a new body."""

    async def put(self, data: bytes) -> BlobRef:
        """Store a whole body at once (durable on return)."""

    async def get(self, key: str) -> bytes:
        """Return the body; raise BlobMissing when there is none."""

    async def delete(self, key: str) -> None:
        """Remove the body if present (the caller checked nothing references it)."""


def _check_key(key: str) -> str:
    if not _KEY.match(key):
        raise BlobMissing(f"not a blob key: {key!r}")
    return key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FsWriter:
    """Hashes while streaming to a temporary file in ``blobs/tmp``."""

    def __init__(self, store: FsBlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._size = 0
        self._file: IO[bytes] | None = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=store.tmp_dir, prefix="w-", delete=False
        )

    async def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise StorageError("blob writer already finished")
        self._hash.update(chunk)
        self._size += len(chunk)
        # Buffered writes land in the page cache: cheap enough for the loop.
        self._file.write(chunk)

    async def finish(self) -> BlobRef:
        if self._file is None:
            raise StorageError("blob writer already finished")
        file, self._file = self._file, None
        key = self._hash.hexdigest()
        try:
            await asyncio.to_thread(self._store.commit_file, file, key)
        except OSError as exc:
            raise StorageError(f"blob store write failed: {exc}") from exc
        return BlobRef(key=key, size=self._size)

    async def discard(self) -> None:
        if self._file is None:
            return
        file, self._file = self._file, None
        file.close()
        await asyncio.to_thread(Path(file.name).unlink, missing_ok=True)


class FsBlobStore:
    """Bodies as files under ``root`` (normally ``<data>/blobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """Where the body with this key lives."""
        _check_key(key)
        return self.root / key[0:2] / key[2:4] / key

    def writer(self) -> BlobWriter:
        return _FsWriter(self)

    async def put(self, data: bytes) -> BlobRef:
        writer = self.writer()
        try:
            await writer.write(data)
            return await writer.finish()
        except BaseException:
            await writer.discard()
            raise

    def commit_file(self, file: IO[bytes], key: str) -> None:
        """fsync the temporary file, rename it into place, fsync the directory (blocking)."""
        tmp = Path(file.name)
        try:
            file.flush()
            os.fsync(file.fileno())
        finally:
            file.close()
        final = self.path_for(key)
        if final.exists():
            # Same key, same bytes: the body is stored already.
            tmp.unlink(missing_ok=True)
            return
        self._make_dirs(final.parent)
        tmp.replace(final)
        _fsync_dir(final.parent)

    def _make_dirs(self, directory: Path) -> None:
        # A new directory is durable only once its parent is fsynced too.
        created: list[Path] = []
        for candidate in (directory.parent, directory):
            if not candidate.exists():
                candidate.mkdir(exist_ok=True)
                created.append(candidate)
        for path in created:
            _fsync_dir(path.parent)

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobMissing(f"no blob {key}") from exc
        except OSError as exc:
            raise StorageError(f"blob store read failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)
        except OSError as exc:
            raise StorageError(f"blob store delete failed: {exc}") from exc


class _SqlWriter:
    """Buffers the body in memory; ``finish`` inserts it in its own transaction."""

    def __init__(self, store: SqlBlobStore) -> None:
        self._store = store
        self._chunks: list[bytes] | None = []

    async def write(self, chunk: bytes) -> None:
        if self._chunks is None:
            raise StorageError("blob writer already finished")
        self._chunks.append(chunk)

    async def finish(self) -> BlobRef:
        if self._chunks is None:
            raise StorageError("blob writer already finished")
        data, self._chunks = b"".join(self._chunks), None
        return await self._store.put(data)

    async def discard(self) -> None:
        self._chunks = None


class SqlBlobStore:
    """Bodies in the ``blobs`` table, so that a node fleet shares them through PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def writer(self) -> BlobWriter:
        return _SqlWriter(self)

    async def put(self, data: bytes) -> BlobRef:
        key = hashlib.sha256(data).hexdigest()
        async with self._db.write() as conn:
            await conn.execute(self._db.insert_ignore(blobs_table).values(key=key, data=data))
        return BlobRef(key=key, size=len(data))

    async def get(self, key: str) -> bytes:
        _check_key(key)
        async with self._db.read() as conn:
            data = await conn.scalar(select(blobs_table.c.data).where(blobs_table.c.key == key))
        if data is None:
            raise BlobMissing(f"no blob {key}")
        return bytes(data)

    async def delete(self, key: str) -> None:
        _check_key(key)
        async with self._db.write() as conn:
            await conn.execute(delete(blobs_table).where(blobs_table.c.key == key))


def open_blob_store(kind: str, data_dir: Path, db: Database) -> BlobStore:
    """Open the blob store named by the ``database.blob_store`` setting.

    Args:
        kind: ``"fs"`` (files under ``<data_dir>/blobs``) or ``"sql"`` (the ``blobs`` table).
        data_dir: the data folder.
        db: the opened database (used by the sql store).

    Raises:
        StorageError: unknown kind, or the blob folder cannot be created.
    """
    if kind == "fs":
        try:
            return FsBlobStore(data_dir / "blobs")
        except OSError as exc:
            raise StorageError(f"cannot create the blob folder: {exc}") from exc
    if kind == "sql":
        return SqlBlobStore(db)
    raise StorageError(f"unknown blob store {kind!r}: use fs or sql")
