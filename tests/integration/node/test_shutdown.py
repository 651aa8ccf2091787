"""Stopping the node: a transaction in the middle of DATA finishes and is kept (RFC 5321 §3.8)."""

from __future__ import annotations

import asyncio

from courriel.testing.node import RunningNode


async def _reply(reader: asyncio.StreamReader) -> bytes:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


async def test_stop_lets_data_in_flight_finish_and_keeps_it(node: RunningNode) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.ports["smtp"])
    assert (await _reply(reader)).startswith(b"220")
    for command, code in (
        (b"EHLO client.example.test", b"250"),
        (b"MAIL FROM:<c@example.test>", b"250"),
        (b"RCPT TO:<alice@shop.test>", b"250"),
        (b"DATA", b"354"),
    ):
        writer.write(command + b"\r\n")
        assert (await _reply(reader)).startswith(code)
    writer.write(b"Subject: in flight\r\n\r\nfirst half\r\n")
    await writer.drain()

    stopping = asyncio.create_task(node.node.stop(grace=10.0))
    await asyncio.sleep(0)  # one loop turn: stop() has begun while DATA is open
    assert node.node.listeners == []
    writer.write(b"second half\r\n.\r\n")
    await writer.drain()
    assert (await _reply(reader)).startswith(b"250")
    await stopping
    writer.close()

    principal = await node.services.mailstore.principal("alice@shop.test")
    drop = await node.services.mailstore.open_maildrop(principal)
    try:
        assert len(drop.messages) == 1
        body = await drop.read(drop.messages[0].message_id)
        assert body.endswith(b"first half\r\nsecond half\r\n")
    finally:
        await drop.release()


async def test_stop_sends_421_to_idle_sessions(node: RunningNode) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.ports["smtp"])
    assert (await _reply(reader)).startswith(b"220")
    await node.node.stop(grace=1.0)
    assert (await _reply(reader)).startswith(b"421 4.3.2")
    writer.close()
