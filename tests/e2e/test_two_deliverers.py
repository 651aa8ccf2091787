"""Two delivery nodes on one PostgreSQL database never send a recipient twice.

Design ("Queues are tables"): claims are ``UPDATE … WHERE id IN (SELECT … FOR UPDATE
SKIP LOCKED)``, so nodes sharing the database split the queue between them. Each node is
a ``courriel serve --roles delivery`` process with its own data folder; bodies live in
the ``sql`` blob store, as in a real fleet where no node holds state of its own.

The sink holds its replies until it has seen mail from both nodes (told apart by their
EHLO names), so both are certainly delivering at the same time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .outbound_sink import (
    RolesProcess,
    Sink,
    all_pairs,
    enqueue_messages,
    sink_world,
    wait_queue_empty,
)

MESSAGES = 5000
NODES = ("deliverer-a.courriel.test", "deliverer-b.courriel.test")


@pytest.mark.slow
async def test_two_delivery_nodes_share_the_queue(tmp_path: Path, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has a single writer")
    expected = all_pairs(MESSAGES)
    sink = Sink(expected=len(expected), hold_after=1)
    async with sink_world(sink) as world:
        shared = {**world.overrides, "database.url": db_url, "database.blob_store": "sql"}
        await enqueue_messages(tmp_path / "loader", shared, MESSAGES)
        nodes = [
            RolesProcess(
                tmp_path / name, db_url, extra={**shared, "server.hostname": name}, roles="delivery"
            )
            for name in NODES
        ]
        try:
            await asyncio.gather(*(asyncio.to_thread(node.start) for node in nodes))
            # A guard against a hang, not a speed check: ~40 s here on 2 busy cores.
            async with asyncio.timeout(180):
                await _both_seen(sink)
                sink.gate.set()
                await sink.complete.wait()
            await wait_queue_empty(db_url, 30)
        except TimeoutError:
            pytest.fail(f"{len(sink.received)} of {len(expected)} pairs arrived in time")
        finally:
            statuses = await asyncio.gather(*(_stop(node) for node in nodes))
    outputs = ["".join(node.output) for node in nodes]
    assert statuses == [0, 0], outputs

    assert set(sink.received) == expected, "unexpected or missing (message, recipient) pairs"
    duplicates = sink.duplicates()
    assert not duplicates, f"{len(duplicates)} pairs delivered twice: {sorted(duplicates)[:10]}"
    shares = {name: sum(1 for h in sink.helo_of.values() if h == name) for name in NODES}
    print(f"\n{len(expected)} pairs delivered once each; per node: {shares}")
    assert all(shares.values()), shares


async def _both_seen(sink: Sink) -> None:
    """Wait until mail from both nodes has reached the sink (one event per arrival)."""
    while set(sink.helo_of.values()) != set(NODES):
        sink.arrived.clear()
        await sink.arrived.wait()


async def _stop(node: RolesProcess) -> int:
    if node.process is None or node.process.poll() is not None:
        return -1
    return await asyncio.to_thread(node.terminate)
