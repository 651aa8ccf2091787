"""Fixtures for the POP3 tests: an in-memory maildrop store, a fake clock, sessions."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from courriel.protocols.pop3.server import Pop3Server
from courriel.protocols.pop3.session import Pop3Session, Pop3Settings
from courriel.protocols.sasl import AuthThrottle
from courriel.testing.pop3 import MemoryMaildrops

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "correct horse battery"  # with spaces: PASS takes the rest of the line

# Message 1 has body lines starting with "." (dot-stuffing, RFC 1939 §3).
MSG1 = (
    b"From: carol@example.test\r\nSubject: one\r\n\r\n"
    b"Hello\r\n.hidden dot line\r\n..two dots\r\nend\r\n"
)
MSG2 = b"From: dave@example.test\r\nSubject: two\r\n\r\nline1\r\nline2\r\nline3\r\n"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> MemoryMaildrops:
    maildrops = MemoryMaildrops()
    maildrops.add_account(ALICE, PASSWORD)
    maildrops.add_account(BOB, "bob password")
    maildrops.deliver(ALICE, MSG1)
    maildrops.deliver(ALICE, MSG2)
    return maildrops


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> AuthThrottle:
    return AuthThrottle(base=0.5, ceiling=15.0, clock=clock)


SessionFactory = Callable[..., Pop3Session]


@pytest.fixture
def make_session(store: MemoryMaildrops, throttle: AuthThrottle) -> SessionFactory:
    def factory(
        *, tls_active: bool = True, tls_available: bool = True, **kw: object
    ) -> Pop3Session:
        settings = Pop3Settings(tls_active=tls_active, tls_available=tls_available, **kw)  # type: ignore[arg-type]
        return Pop3Session(
            settings=settings,
            authenticator=store,
            maildrops=store,
            throttle=throttle,
            peer="127.0.0.1",
        )

    return factory


ServerFactory = Callable[..., Awaitable[Pop3Server]]


@pytest.fixture
async def start_server(
    store: MemoryMaildrops, server_tls: ssl.SSLContext
) -> AsyncIterator[ServerFactory]:
    """Start POP3 listeners on 127.0.0.1:0; all are stopped at the end of the test."""
    servers: list[Pop3Server] = []

    async def factory(*, implicit_tls: bool = False, **kw: object) -> Pop3Server:
        settings = Pop3Settings(tls_available=True, tls_active=implicit_tls, **kw)  # type: ignore[arg-type]
        # No anti-abuse delay over real sockets: the growth is pinned by transcripts.
        throttle = AuthThrottle(base=0.0)
        server = Pop3Server(settings, store, store, throttle, server_tls)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop(grace=0)
