"""Immutable message bodies keyed by their SHA-256 (hex), on the filesystem or in SQL.

Invariants:
- A key is the SHA-256 hex digest of exactly the stored bytes; a body is written once
  and never rewritten (trace headers live in the database rows, not in blobs).
- ``finish()`` / ``put()`` returning means the body is durable: on the filesystem the
  file was fsynced, renamed into place and its directory fsynced; in SQL the insert
  was committed.
- Writing a body that exists already is a no-op that returns the same key.

FS layout: ``<data>/blobs/<k[0:2]>/<key>``, temporary files in ``<data>/blobs/tmp``.
fsync and whole-file reads run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import itertools
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable

from courriel.errors import BlobMissing, StorageError
from courriel.storage.db import Database
from courriel.storage.models import blobs as blobs_table

__all__ = [
    "BlobRef",
    "BlobStore",
    "BlobWriter",
    "FsBlobStore",
    "PreparedBlob",
    "SqlBlobStore",
    "open_blob_store",
]

# Bodies up to this size stay in memory until finish() writes them in one go.
SPILL_AT = 1 << 20
_KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRef:
    """A stored body."""

    key: str  # SHA-256 hex digest of the body
    size: int  # octets


def _nothing(*_args: object) -> None:
    return None


def _execute(statement: Executable, conn: Connection) -> None:
    conn.execute(statement)


@dataclass(frozen=True, slots=True, kw_only=True)
class FilePending:
    """A body of the fs store that is received but not yet on disk durably."""

    store: FsBlobStore
    chunks: tuple[bytes, ...]  # bytes not yet written to ``file``
    file: IO[bytes] | None  # the spilled beginning of a large body, or None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedBlob:
    """A fully received body that is not durable yet: group commit makes it so.

    The committer calls :func:`persist_files` (blocking file work, off the event loop)
    for a whole batch, then ``persist_rows(conn)`` inside the transaction that stores the
    rows pointing to it, so a body is durable before, or with, anything referencing it.
    """

    ref: BlobRef
    pending: FilePending | None  # fs store: the file work; sql store: None
    persist_rows: Callable[[Connection], None]  # sql store: insert the row; fs store: nothing


def persist_files(prepared: Sequence[PreparedBlob]) -> None:
    """Make the fs-store bodies of a batch durable together (blocking).

    Writing every file before the first fsync lets one journal commit carry most of
    them; each directory is fsynced once per batch, not once per body.
    """
    by_store: dict[int, tuple[FsBlobStore, dict[str, FilePending]]] = {}
    for item in prepared:
        if item.pending is not None:
            store, items = by_store.setdefault(id(item.pending.store), (item.pending.store, {}))
            if item.ref.key in items:
                _drop(item.pending.file)  # the same body twice in a batch: one copy is enough
            else:
                items[item.ref.key] = item.pending
    for store, items in by_store.values():
        store.commit_many(items)


class BlobWriter(Protocol):
    """Streams one body into the store; ``finish``, ``prepare`` or ``discard`` ends it."""

    async def write(self, chunk: bytes) -> None:
        """Append bytes to the body."""

    async def finish(self) -> BlobRef:
        """Make the body durable and return its reference."""

    def prepare(self) -> PreparedBlob:
        """End the body and return the work that makes it durable (for group commit)."""

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


def _load_syncfs() -> Callable[[int], int] | None:
    # syncfs(2) is Linux-only; elsewhere (or if libc lacks it) we fsync file by file.
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS = _load_syncfs()
# Group commit flushes a batch of bodies with one syncfs(2) where available. Set
# COURRIEL_BLOB_FSYNC=file to force per-file fsync (e.g. to compare, or on file systems
# shared with heavy unrelated writers, where syncfs would wait for their data too).
SYNCFS = _SYNCFS is not None and os.environ.get("COURRIEL_BLOB_FSYNC", "") != "file"


def _syncfs(fd: int) -> None:
    assert _SYNCFS is not None
    if _SYNCFS(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs failed: {os.strerror(err)}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_all(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _drop(file: IO[bytes] | None) -> None:
    if file is not None:
        file.close()
        Path(file.name).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FsWriter:
    """Hashes while streaming; the body stays in memory up to ``SPILL_AT`` octets.

    A typical message never touches the disk until ``finish()``, which writes, fsyncs and
    renames it in one call off the event loop. Larger bodies spill to a temporary file in
    ``blobs/tmp`` (also off the loop) and keep streaming there.
    """

    def __init__(self, store: FsBlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._size = 0
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._file: IO[bytes] | None = None
        self._done = False

    async def write(self, chunk: bytes) -> None:
        if self._done:
            raise StorageError("blob writer already finished")
        self._hash.update(chunk)
        self._size += len(chunk)
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= SPILL_AT:
            await self._spill()

    async def _spill(self) -> None:
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        try:
            # One thread hop: the first spill opens the temporary file there too.
            self._file = await asyncio.to_thread(self._store.spill, self._file, chunks)
        except OSError as exc:
            raise StorageError(f"blob store write failed: {exc}") from exc

    async def finish(self) -> BlobRef:
        prepared = self.prepare()
        try:
            await asyncio.to_thread(persist_files, [prepared])
        except OSError as exc:
            raise StorageError(f"blob store write failed: {exc}") from exc
        return prepared.ref

    def prepare(self) -> PreparedBlob:
        if self._done:
            raise StorageError("blob writer already finished")
        self._done = True
        chunks, self._chunks = self._chunks, []
        file, self._file = self._file, None
        return PreparedBlob(
            ref=BlobRef(key=self._hash.hexdigest(), size=self._size),
            pending=FilePending(store=self._store, chunks=tuple(chunks), file=file),
            persist_rows=_nothing,
        )

    async def discard(self) -> None:
        self._done = True
        self._chunks = []
        file, self._file = self._file, None
        if file is not None:
            # close() flushes the file's buffer: blocking, like the unlink.
            await asyncio.to_thread(_drop, file)


class FsBlobStore:
    """Bodies as files under ``root`` (normally ``<data>/blobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self._names = itertools.count(int.from_bytes(os.urandom(4), "big"))
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """Where the body with this key lives."""
        _check_key(key)
        return self.root / key[0:2] / key

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

    def spill(self, file: IO[bytes] | None, chunks: list[bytes]) -> IO[bytes]:
        """Append ``chunks`` to a large body's temporary file, opened when None (blocking)."""
        if file is not None:
            file.writelines(chunks)
            return file
        # The file outlives this call: commit_many() or discard() closes it.
        new = tempfile.NamedTemporaryFile(dir=self.tmp_dir, prefix="w-", delete=False)  # noqa: SIM115
        try:
            new.writelines(chunks)
        except BaseException:
            _drop(new)
            raise
        return new

    def commit_many(self, items: Mapping[str, FilePending]) -> None:
        """Write, fsync and rename every body into place, then fsync each directory once.

        A body whose key exists already is stored (same key, same bytes): its temporary
        data is dropped. Plain ``os`` calls on purpose: this runs once per message on the
        group-commit path.
        """
        staged: list[tuple[int, str, str]] = []  # (fd, temporary path, final path)
        try:
            for key, pending in items.items():
                final = os.path.join(self.root, key[0:2], key)
                if os.path.exists(final):
                    _drop(pending.file)
                    continue
                fd, tmp = self._open_temp(pending.file)
                staged.append((fd, tmp, final))
                for chunk in pending.chunks:
                    _write_all(fd, chunk)
            if staged:
                self._make_durable(staged)
        except BaseException:
            for _fd, tmp, _final in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        finally:
            for fd, _tmp, _final in staged:
                os.close(fd)

    def _make_durable(self, staged: list[tuple[int, str, str]]) -> None:
        """fsync the bodies, rename them into place, fsync their directories.

        On Linux one ``syncfs(2)`` after the renames replaces every per-file and
        per-directory fsync of the batch: it returns once all data and metadata of the
        file system are on disk (and reports write errors since Linux 5.8).
        """
        if not SYNCFS:
            for fd, _tmp, _final in staged:
                os.fsync(fd)
        directories: set[str] = set()
        for _fd, tmp, final in staged:
            directory = os.path.dirname(final)
            if directory not in directories:
                self._ensure_dir(Path(directory))
                directories.add(directory)
            os.replace(tmp, final)
        if SYNCFS:
            _syncfs(staged[0][0])
        else:
            for directory in directories:
                _fsync_dir(Path(directory))

    def _open_temp(self, spilled: IO[bytes] | None) -> tuple[int, str]:
        # The spilled file continues where it stopped; else a new temporary file.
        if spilled is not None:
            spilled.flush()
            fd = os.dup(spilled.fileno())
            spilled.close()
            os.lseek(fd, 0, os.SEEK_END)
            return fd, spilled.name
        name = os.path.join(self.tmp_dir, f"w-{os.getpid()}-{next(self._names)}")
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name

    def _ensure_dir(self, directory: Path) -> None:
        # A new directory is durable only once its parent is fsynced too.
        if not directory.exists():
            directory.mkdir(exist_ok=True)
            if not SYNCFS:
                _fsync_dir(directory.parent)

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

    async def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        paths = [self.path_for(key) for key in keys]
        try:
            await asyncio.to_thread(_unlink_all, paths)
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

    def prepare(self) -> PreparedBlob:
        if self._chunks is None:
            raise StorageError("blob writer already finished")
        data, self._chunks = b"".join(self._chunks), None
        key = hashlib.sha256(data).hexdigest()
        statement = self._store.insert_statement(key, data)
        return PreparedBlob(
            ref=BlobRef(key=key, size=len(data)),
            pending=None,
            persist_rows=functools.partial(_execute, statement),
        )

    async def discard(self) -> None:
        self._chunks = None


class SqlBlobStore:
    """Bodies in the ``blobs`` table, so that a node fleet shares them through PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def writer(self) -> BlobWriter:
        return _SqlWriter(self)

    def insert_statement(self, key: str, data: bytes) -> Executable:
        """The insert-if-absent statement that stores a body."""
        return self._db.insert_ignore(blobs_table).values(key=key, data=data)

    async def put(self, data: bytes) -> BlobRef:
        key = hashlib.sha256(data).hexdigest()
        async with self._db.write() as conn:
            await conn.execute(self.insert_statement(key, data))
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
