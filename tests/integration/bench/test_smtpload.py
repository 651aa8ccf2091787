"""The receive benchmark's load generator against the aiosmtpd baseline, in-process on loopback.

A benchmark that miscounts is worse than none: these tests pin that every accepted message is
counted once, written durably by the baseline, that refusals are counted as failures without
losing the connection, and that the PIPELINING path (RFC 2920) gives the same results.
"""

from __future__ import annotations

import asyncio
import email
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

from _aiosmtpd_sink import FsyncHandler  # noqa: E402
from _smtpload import LoadSpec, percentile, run_load, summarise  # noqa: E402


class PipeliningHandler(FsyncHandler):
    """The baseline handler, plus PIPELINING in EHLO (aiosmtpd reads commands in order)."""

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


async def _serve(handler: FsyncHandler) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(handler, hostname="sink.localhost")

    server = await loop.create_server(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Callable[[type[FsyncHandler]], Any]]:
    servers: list[asyncio.Server] = []

    async def start(kind: type[FsyncHandler]) -> int:
        server, port = await _serve(kind(tmp_path / "mail"))
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _spec(port: int, recipient: str = "user@bench.test") -> LoadSpec:
    return LoadSpec(
        host="127.0.0.1",
        port=port,
        clients=3,
        messages=5,
        size=1500,
        per_connection=2,
        recipient=recipient,
        timeout=30.0,
    )


@pytest.mark.parametrize("kind", [FsyncHandler, PipeliningHandler])
async def test_every_message_is_counted_once_and_stored(
    sink: Any, tmp_path: Path, kind: type[FsyncHandler]
) -> None:
    spec = _spec(await sink(kind))
    tally, seconds = await run_load(spec)
    assert tally.ok == 15
    assert not tally.failures
    assert len(tally.latencies) == 15
    stored = sorted((tmp_path / "mail" / "new").iterdir())
    assert len(stored) == 15
    assert not list((tmp_path / "mail" / "tmp").iterdir())
    ids = {email.message_from_bytes(p.read_bytes())["Message-ID"] for p in stored}
    assert len(ids) == 15  # unique bodies: no server can deduplicate them
    assert all(1400 <= p.stat().st_size <= 1700 for p in stored)
    summary = summarise(spec, tally, seconds)
    assert summary["ok"] == 15
    assert summary["failed"] == 0


@pytest.mark.parametrize("kind", [FsyncHandler, PipeliningHandler])
async def test_refused_recipients_are_failures_and_connection_goes_on(
    sink: Any, tmp_path: Path, kind: type[FsyncHandler]
) -> None:
    spec = _spec(await sink(kind), recipient="user@elsewhere.test")
    tally, _ = await run_load(spec)
    assert tally.ok == 0
    assert sum(tally.failures.values()) == 15
    [(reason, count)] = tally.failures.items()
    assert reason.startswith("RCPT: 550")
    assert count == 15
    assert not list((tmp_path / "mail" / "new").iterdir())


async def test_closed_port_counts_every_message_as_failed() -> None:
    server, port = await _serve(FsyncHandler(Path("/nonexistent-never-written")))
    server.close()
    await server.wait_closed()
    tally, _ = await run_load(_spec(port))
    assert tally.ok == 0
    assert sum(tally.failures.values()) == 15
    assert all("ConnectionRefusedError" in reason for reason in tally.failures)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0
