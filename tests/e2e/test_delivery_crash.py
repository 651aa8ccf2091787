"""SIGKILL during outbound delivery: after a restart every recipient gets its message.

Design ("Queues are tables"): every state change of the queue is one transaction, so a
crash leaves each recipient either queued or settled. A recipient whose message reached
the remote MX but whose settle did not commit is sent again after the restart (the dead
worker's claim is taken back once ``delivery.claim_lease`` has passed): delivery is at
least once, and the only duplicates allowed are those claimed-but-unsettled recipients.

The sink holds its 250 replies once 45 % of the pairs have arrived, so the kill lands
in the middle of the run with transactions in flight, without any timing guess.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from courriel.config.schema import DeliverySection
from courriel.delivery.worker import WorkerSettings
from courriel.testing.subprocess_node import ServeProcess

from .outbound_sink import (
    Sink,
    all_pairs,
    claimed_unsettled,
    enqueue_messages,
    sink_world,
    wait_queue_empty,
)

MESSAGES = 2000


@pytest.mark.slow
async def test_sigkill_mid_delivery_loses_nothing(tmp_path: Path, db_url: str) -> None:
    expected = all_pairs(MESSAGES)
    sink = Sink(expected=len(expected), hold_after=len(expected) * 45 // 100)
    async with sink_world(sink) as world:
        data_dir = tmp_path / "data"
        extra = {**world.overrides, "delivery.claim_lease": "2s"}
        tokens = await enqueue_messages(data_dir, {"database.url": db_url, **extra}, MESSAGES)
        assert len(tokens) == MESSAGES

        server = ServeProcess(data_dir, db_url, extra=extra)
        await asyncio.to_thread(server.start)
        try:
            async with asyncio.timeout(120):
                await sink.held.wait()
        finally:
            await asyncio.to_thread(server.kill)
        at_kill = len(sink.received)
        unsettled = await claimed_unsettled(db_url, tokens)
        sink.gate.set()  # the held replies now go to a dead process
        assert len(expected) * 20 // 100 <= at_kill <= len(expected) * 80 // 100, at_kill
        # The kill caught claims in flight: the restart has leases to take back.
        assert unsettled, "".join(server.output)

        restarted = ServeProcess(data_dir, db_url, extra=extra)
        await asyncio.to_thread(restarted.start)
        try:
            async with asyncio.timeout(120):
                await sink.complete.wait()
            await wait_queue_empty(db_url, 30)
        finally:
            status = await asyncio.to_thread(restarted.terminate)
    output = "".join(restarted.output)
    assert status == 0, output

    assert set(sink.received) == expected, "unexpected or missing (message, recipient) pairs"
    duplicates = sink.duplicates()
    print(
        f"\n{len(expected)} pairs; sink had {at_kill} at the kill; "
        f"{len(unsettled)} claimed but unsettled at the kill; {len(duplicates)} duplicates:"
    )
    for (token, rcpt), count in sorted(duplicates.items()):
        print(f"  {token} -> {rcpt}: {count} times")
    # At least once, and more only for what was in flight when the process died.
    assert set(duplicates) <= unsettled, set(duplicates) - unsettled
    assert all(count == 2 for count in duplicates.values()), duplicates
    assert len(duplicates) <= WorkerSettings.from_section(DeliverySection()).batch_size
