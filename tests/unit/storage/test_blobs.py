"""Blob stores: round trips, idempotent writes, streaming, missing keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.errors import BlobMissing, StorageError
from courriel.storage.blobs import BlobStore, FsBlobStore, open_blob_store
from courriel.storage.db import Database


@pytest.fixture(params=["fs", "sql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, database: Database) -> BlobStore:
    return open_blob_store(request.param, tmp_path, database)


async def test_put_get_round_trip(store: BlobStore) -> None:
    data = b"Subject: hi\r\n\r\nbody\r\n"
    ref = await store.put(data)
    assert ref.key == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert await store.get(ref.key) == data


async def test_idempotent_writes(store: BlobStore) -> None:
    first = await store.put(b"same")
    second = await store.put(b"same")
    writer = store.writer()
    await writer.write(b"sa")
    await writer.write(b"me")
    third = await writer.finish()
    assert first == second == third
    assert await store.get(first.key) == b"same"


async def test_streaming_writer_and_discard(store: BlobStore) -> None:
    writer = store.writer()
    for chunk in (b"a" * 1000, b"b" * 1000):
        await writer.write(chunk)
    ref = await writer.finish()
    assert await store.get(ref.key) == b"a" * 1000 + b"b" * 1000
    with pytest.raises(StorageError):
        await writer.write(b"late")
    dropped = store.writer()
    await dropped.write(b"never stored")
    await dropped.discard()
    await dropped.discard()
    with pytest.raises(BlobMissing):
        await store.get(hashlib.sha256(b"never stored").hexdigest())


async def test_missing_and_delete(store: BlobStore) -> None:
    with pytest.raises(BlobMissing):
        await store.get("0" * 64)
    with pytest.raises(BlobMissing):
        await store.get("../../etc/passwd")
    ref = await store.put(b"gone soon")
    await store.delete(ref.key)
    await store.delete(ref.key)
    with pytest.raises(BlobMissing):
        await store.get(ref.key)


async def test_fs_layout(tmp_path: Path) -> None:
    store = FsBlobStore(tmp_path / "blobs")
    ref = await store.put(b"layout")
    k = ref.key
    assert (tmp_path / "blobs" / k[:2] / k).read_bytes() == b"layout"
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        open_blob_store("s3", tmp_path, None)  # type: ignore[arg-type]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(st.binary(max_size=300), max_size=6))
async def test_fs_streaming_equals_put(tmp_path: Path, chunks: list[bytes]) -> None:
    store = FsBlobStore(tmp_path / "fuzz")
    writer = store.writer()
    for chunk in chunks:
        await writer.write(chunk)
    ref = await writer.finish()
    data = b"".join(chunks)
    assert ref.key == hashlib.sha256(data).hexdigest()
    assert await store.get(ref.key) == data
