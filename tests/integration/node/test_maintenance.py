"""A running node prunes the change feed past ``imap.changes_retention`` on its own."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from courriel.app import open_services
from courriel.storage.models import changes, utcnow
from courriel.testing.node import loopback_overrides, running_node


async def _count(db: object) -> int:
    async with db.read() as conn:  # type: ignore[attr-defined]
        return int(await conn.scalar(select(func.count()).select_from(changes)))


async def test_a_started_node_prunes_old_changes(tmp_path: Path, db_url: str) -> None:
    data_dir = tmp_path / "data"
    async with open_services(data_dir, loopback_overrides(db_url), environ={}) as services:
        store = services.mailstore
        await store.add_domain("shop.test")
        await store.add_account("alice@shop.test", "correct horse battery staple")
        imap = store.imap
        principal = await store.principal("alice@shop.test")
        for n in range(5):
            await imap.append(
                principal, "INBOX", b"Subject: %d\r\n\r\nbody\r\n" % n, flags=(), internal_date=None
            )
        async with services.db.write() as conn:
            await conn.execute(update(changes).values(created_at=utcnow() - timedelta(days=90)))
        before = await _count(services.db)
    assert before >= 5

    async with running_node(data_dir, db_url, roles=("imap",)) as node:
        # The first round runs as the node starts; wait for it (bounded), never sleep blindly.
        for _ in range(200):
            after = await _count(node.services.db)
            if after < before:
                break
            await asyncio.sleep(0.05)
    # Each folder keeps its newest pruned row as a marker; the rest are gone.
    assert after < before
