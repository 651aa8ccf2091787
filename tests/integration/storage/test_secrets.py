"""Shared secrets: made once, then the same octets for every caller (and every node)."""

from __future__ import annotations

import asyncio

from courriel.storage.db import Database
from courriel.storage.secrets import shared_secret


async def test_a_secret_is_made_once_and_then_read(database: Database) -> None:
    first = await shared_secret(database, "links")
    assert len(first) == 32
    assert await shared_secret(database, "links") == first
    assert await shared_secret(database, "other") != first


async def test_racing_makers_agree_on_one_secret(db_url: str) -> None:
    # Two connections pools stand for two nodes starting at the same moment.
    nodes = [await Database.open(db_url) for _ in range(2)]
    try:
        values = await asyncio.gather(*(shared_secret(db, "links") for db in nodes * 3))
    finally:
        for db in nodes:
            await db.close()
    assert len(set(values)) == 1
