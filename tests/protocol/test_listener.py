"""The listener core (protocols/listener.py) over real sockets on 127.0.0.1.

A small line protocol stands in for SMTP, IMAP and POP3: it greets, echoes lines, and
has verbs that make it busy, fail, or upgrade to TLS, so that every part of the core
(limit, stop with grace, failures, implicit TLS and the upgrade guard) is driven
through the wire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from courriel.errors import InvalidInput, ListenerError
from courriel.protocols.listener import Listener, ListenerLines

LINES = ListenerLines(
    too_many=b"NO busy\r\n",
    shutting_down=b"NO stopping\r\n",
    cut=b"BYE cut\r\n",
    failed=b"BYE failed\r\n",
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EchoSettings:
    hostname: str = "listener.test"
    tls_active: bool = False
    tls_available: bool = False
    max_connections: int = 10
    idle_timeout: float = 30.0


class EchoServer(Listener[EchoSettings]):
    """Greets with ``hi``; ``BUSY`` waits for :attr:`release`; ``BOOM`` fails; ``TLS`` upgrades."""

    protocol = "ECHO"

    def __init__(self, settings: EchoSettings, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(settings, tls, implicit_tls=None, lines=LINES)
        self.busy = asyncio.Event()  # set once a BUSY command is running
        self.release = asyncio.Event()  # lets the BUSY command finish

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        writer.write(b"hi " + peer.encode() + b"\r\n")
        while not self.stopping:
            first = await self.read(reader, 1, self.settings.idle_timeout)
            if first is None:
                writer.write(b"BYE timeout\r\n")
                return
            if not first:
                return
            # One line at a time: what follows it stays in the reader's buffer.
            line = first + await reader.readline()
            if not await self._command(line, reader, writer):
                return
            await writer.drain()

    async def _command(
        self, line: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        verb = line.strip()
        if verb == b"BUSY":
            self.busy.set()
            await self.release.wait()
            writer.write(b"done\r\n")
        elif verb == b"BOOM":
            raise RuntimeError("the session broke")
        elif verb == b"TLS":
            if not self.hold_for_tls(reader, writer):
                return False
            writer.write(b"go\r\n")
            await self.start_tls(writer)
            writer.write(b"secure\r\n")
        else:
            writer.write(line)
        return True


Factory = Callable[..., Awaitable[EchoServer]]


@pytest.fixture
async def start_echo() -> AsyncIterator[Factory]:
    servers: list[EchoServer] = []

    async def factory(tls: ssl.SSLContext | None = None, **kw: object) -> EchoServer:
        server = EchoServer(EchoSettings(**kw), tls)  # type: ignore[arg-type]
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop(grace=0)


async def _connect(
    server: EchoServer, tls: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port, ssl=tls)


async def test_start_reports_the_bound_port_and_serves(start_echo: Factory) -> None:
    server = await start_echo()
    assert server.address == ("127.0.0.1", server.port)
    assert server.port != 0
    reader, writer = await _connect(server)
    assert await reader.readline() == b"hi 127.0.0.1\r\n"
    writer.write(b"ping\r\n")
    assert await reader.readline() == b"ping\r\n"
    assert server.connections == 1
    writer.close()
    await writer.wait_closed()


async def test_connection_limit_refuses_with_the_protocols_line(start_echo: Factory) -> None:
    server = await start_echo(max_connections=1)
    reader, writer = await _connect(server)
    assert await reader.readline() == b"hi 127.0.0.1\r\n"
    second, second_writer = await _connect(server)
    assert await second.read() == b"NO busy\r\n"
    assert server.connections == 1  # a refused connection never counts
    second_writer.close()
    writer.close()
    await writer.wait_closed()


async def test_stop_cuts_idle_sessions_and_lets_busy_ones_finish(start_echo: Factory) -> None:
    server = await start_echo()
    idle, idle_writer = await _connect(server)
    busy, busy_writer = await _connect(server)
    assert await idle.readline() == b"hi 127.0.0.1\r\n"
    assert await busy.readline() == b"hi 127.0.0.1\r\n"
    busy_writer.write(b"BUSY\r\n")
    await server.busy.wait()
    stopping = asyncio.create_task(server.stop(grace=30))
    # The idle session is cut at once, while the busy one is still held.
    assert await idle.read() == b"BYE cut\r\n"
    assert not stopping.done()
    server.release.set()
    assert await busy.read() == b"done\r\n"  # the loop sees stopping and ends quietly
    await stopping
    assert server.connections == 0
    idle_writer.close()
    busy_writer.close()


async def test_stop_cuts_busy_sessions_after_the_grace(start_echo: Factory) -> None:
    server = await start_echo()
    busy, busy_writer = await _connect(server)
    assert await busy.readline() == b"hi 127.0.0.1\r\n"
    busy_writer.write(b"BUSY\r\n")
    await server.busy.wait()
    await server.stop(grace=0)
    assert await busy.read() == b"BYE cut\r\n"
    assert server.connections == 0
    assert server.stopping
    busy_writer.close()


async def test_an_unexpected_error_is_logged_and_answered(
    start_echo: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_echo()
    reader, writer = await _connect(server)
    assert await reader.readline() == b"hi 127.0.0.1\r\n"
    with caplog.at_level(logging.ERROR, logger="courriel.protocols.listener"):
        writer.write(b"BOOM\r\n")
        assert await reader.read() == b"BYE failed\r\n"
    assert "ECHO 127.0.0.1: session failed" in caplog.text
    assert server.connections == 0
    writer.close()


async def test_read_returns_none_after_the_timeout(start_echo: Factory) -> None:
    server = await start_echo(idle_timeout=0.01)
    reader, writer = await _connect(server)
    assert await reader.read() == b"hi 127.0.0.1\r\nBYE timeout\r\n"
    writer.close()


async def test_implicit_tls(
    start_echo: Factory, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server = await start_echo(server_tls, tls_active=True, tls_available=True)
    reader, writer = await _connect(server, client_tls)
    assert await reader.readline() == b"hi 127.0.0.1\r\n"
    assert writer.get_extra_info("ssl_object") is not None
    writer.close()


async def test_upgrade_to_tls(
    start_echo: Factory, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    server = await start_echo(server_tls, tls_available=True)
    reader, writer = await _connect(server)
    assert await reader.readline() == b"hi 127.0.0.1\r\n"
    writer.write(b"TLS\r\n")
    assert await reader.readline() == b"go\r\n"
    await writer.start_tls(client_tls, server_hostname="localhost")
    assert await reader.readline() == b"secure\r\n"
    writer.write(b"ping\r\n")
    assert await reader.readline() == b"ping\r\n"
    writer.close()


async def test_upgrade_refuses_plain_text_pipelined_after_the_command(
    start_echo: Factory, server_tls: ssl.SSLContext
) -> None:
    # CVE-2011-0411: octets sent before the go-ahead must never be read as if via TLS.
    server = await start_echo(server_tls, tls_available=True)
    reader, writer = await _connect(server)
    assert await reader.readline() == b"hi 127.0.0.1\r\n"
    writer.write(b"TLS\r\nINJECTED\r\n")
    assert await reader.read() == b""
    writer.close()


def test_implicit_tls_needs_a_context() -> None:
    with pytest.raises(InvalidInput):
        EchoServer(EchoSettings(tls_active=True), None)


def test_settings_match_the_socket(server_tls: ssl.SSLContext) -> None:
    without = EchoServer(EchoSettings(tls_available=True), None)
    assert not without.settings.tls_available
    with_tls = EchoServer(EchoSettings(tls_available=True), server_tls)
    assert with_tls.settings.tls_available
    assert not with_tls.settings.tls_active


def test_address_before_start_is_an_error() -> None:
    with pytest.raises(ListenerError):
        _ = EchoServer(EchoSettings()).address
