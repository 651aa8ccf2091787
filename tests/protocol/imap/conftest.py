"""Fixtures for the IMAP tests: a real MailStore (SQLite and PostgreSQL), sessions, servers."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from courriel.mailstore.service import MailStore
from courriel.protocols.imap.server import ImapServer
from courriel.protocols.imap.session import ImapSession, ImapSettings
from courriel.protocols.sasl import AuthThrottle
from courriel.storage.models import utcnow

ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "correct horse battery"
TRACE = b"Received: from client.test by mx.example.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"

MSG1 = (
    b"From: Carol <carol@example.test>\r\nTo: alice@example.test\r\n"
    b"Subject: one\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <one@example.test>\r\n\r\nHello Alice\r\n"
)
MSG2 = (
    b"From: dave@example.test\r\nTo: alice@example.test\r\nSubject: two\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAEC\r\n--b--\r\n"
)


def imaplib_login(port: int, tls: ssl.SSLContext) -> imaplib.IMAP4:
    """An imaplib client on 127.0.0.1:``port``, after STARTTLS and LOGIN as Alice."""
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    imap.starttls(tls)
    imap.login(ALICE, PASSWORD)
    return imap


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def deliver(store: MailStore, address: str, body: bytes) -> None:
    """Deliver ``body`` to an account's INBOX the way SMTP does (row + blob + notify)."""
    principal = await store.principal(address)
    ref = await store.blobs.put(body)
    async with store.db.write() as conn:
        await store.deliver(
            conn,
            account_ids=[principal.account_id],
            blob_key=ref.key,
            size=len(TRACE) + ref.size,
            trace_header=TRACE,
            internal_date=utcnow(),
        )
    store.notify([principal.account_id])


@pytest.fixture
async def mail(mailstore: MailStore) -> MailStore:
    """The mail store with alice (two messages in INBOX) and bob (none)."""
    await mailstore.add_domain("example.test")
    await mailstore.add_account(ALICE, PASSWORD)
    await mailstore.add_account(BOB, "bob password")
    await deliver(mailstore, ALICE, MSG1)
    await deliver(mailstore, ALICE, MSG2)
    return mailstore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


SessionFactory = Callable[..., ImapSession]


@pytest.fixture
def make_session(mail: MailStore, clock: FakeClock) -> SessionFactory:
    throttle = AuthThrottle(base=0.5, ceiling=15.0, clock=clock)

    def factory(
        *, tls_active: bool = True, tls_available: bool = True, **kw: object
    ) -> ImapSession:
        settings = ImapSettings(tls_active=tls_active, tls_available=tls_available, **kw)  # type: ignore[arg-type]
        return ImapSession(
            settings=settings,
            authenticator=mail,
            store=mail.imap,
            throttle=throttle,
            peer="127.0.0.1",
        )

    return factory


ServerFactory = Callable[..., Awaitable[ImapServer]]


@pytest.fixture
async def start_server(mail: MailStore, server_tls: ssl.SSLContext) -> AsyncIterator[ServerFactory]:
    """Start IMAP listeners on 127.0.0.1:0; all are stopped at the end of the test."""
    servers: list[ImapServer] = []

    async def factory(*, implicit_tls: bool = False, **kw: object) -> ImapServer:
        settings = ImapSettings(tls_available=True, tls_active=implicit_tls, **kw)  # type: ignore[arg-type]
        # No anti-abuse delay over real sockets: the growth is pinned by transcripts.
        server = ImapServer(settings, mail, mail.imap, AuthThrottle(base=0.0), server_tls)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop(grace=0)
