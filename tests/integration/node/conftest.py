"""A whole node in-process with a domain, two accounts and aliases, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.testing.node import RunningNode, running_node

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def node(tmp_path: Path, db_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "data", db_url) as running:
        store = running.services.mailstore
        await store.add_domain("shop.test")
        await store.add_domain("other.test")
        await store.add_account("alice@shop.test", PASSWORD)
        await store.add_account("bob@shop.test", PASSWORD)
        await store.add_alias("orders@shop.test", ["alice@shop.test", "bob@shop.test"])
        await store.add_alias("@other.test", ["bob@shop.test"])
        await store.add_alias("alice.smith@shop.test", ["alice@shop.test"])
        yield running
