"""Fixtures for the SMTP client tests: courriel's SmtpServer, aiosmtpd, scripted peers.

Everything binds on 127.0.0.0/8 only; the remote MX stand-ins use 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.client import ClientTimeouts, SmtpConnector
from courriel.protocols.smtp.server import SmtpServer
from courriel.protocols.smtp.session import SmtpSettings
from courriel.testing.smtp import MemoryTarget

# Generous enough never to fire on a slow CI machine, small enough that a bug fails fast.
TIMEOUTS = ClientTimeouts(
    connect=10,
    greeting=10,
    command=10,
    tls_handshake=10,
    mail=10,
    rcpt=10,
    data_init=10,
    data_block=10,
    data_end=10,
)

StartServer = Callable[..., Awaitable[int]]


@pytest.fixture
def target() -> MemoryTarget:
    return MemoryTarget()


@pytest.fixture
async def courriel_server(
    target: MemoryTarget, server_tls: ssl.SSLContext
) -> AsyncIterator[StartServer]:
    """``await courriel_server(**settings)``: an SmtpServer on 127.0.0.1; returns its port."""
    servers: list[SmtpServer] = []

    async def start(**overrides: Any) -> int:
        values: dict[str, Any] = {"hostname": "mx.test", "tls_available": True}
        authenticator = overrides.pop("authenticator", None)
        values.update(overrides)
        throttle = AuthThrottle(base=0.0, ceiling=0.0)
        server = SmtpServer(SmtpSettings(**values), target, authenticator, throttle, server_tls)
        _host, port = await server.start("127.0.0.1", 0)
        servers.append(server)
        return port

    yield start
    for server in servers:
        await server.stop(0)


@dataclass
class Recorder:
    """An aiosmtpd handler that records messages and answers with chosen codes."""

    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply line
    data_reply: str = "250 2.0.0 Queued"
    drop_extensions: tuple[str, ...] = ()  # EHLO keywords to hide
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    mail_options: list[list[str]] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        kept = [r for r in responses if r[4:].split(" ")[0] not in self.drop_extensions]
        return kept

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mail_options.append(list(options))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(content)))
        return self.data_reply


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


StartAiosmtpd = Callable[..., Awaitable[int]]


@pytest.fixture
async def aiosmtpd_server() -> AsyncIterator[StartAiosmtpd]:
    """``await aiosmtpd_server(handler, **smtp_kwargs)`` serves on 127.0.0.2; returns the port."""
    servers: list[asyncio.Server] = []

    async def start(handler: Recorder, **kwargs: Any) -> int:
        kwargs.setdefault("hostname", "mx2.test")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, **kwargs), "127.0.0.2", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[int]]]:
    """``await scripted(coro)`` serves each connection on 127.0.0.2 with ``coro``."""
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(script: Script) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            try:
                await script(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.2", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def make_connector() -> Callable[..., SmtpConnector]:
    """``make_connector(**kwargs)``: an SmtpConnector named client.test with test timeouts."""

    def make(**kwargs: Any) -> SmtpConnector:
        kwargs.setdefault("timeouts", TIMEOUTS)
        return SmtpConnector("client.test", **kwargs)

    return make
