"""Remote MX hosts on loopback (aiosmtpd) and a stdlib smtplib connector for the worker.

Receivers bind 127.0.0.2, 127.0.0.3, … on port 0; the connector maps each address to its
receiver's port (the worker's configured port is ignored), so nothing else on the machine
is contacted. The connector is a real SMTP client (``smtplib``, run in a thread): the
worker is tested over the wire against a server we did not write.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from courriel.delivery.transport import (
    Connection,
    Outgoing,
    RemoteReply,
    SendOutcome,
    TransportError,
)


@dataclass
class Received:
    """One message as the receiver saw it."""

    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class Receiver:
    """An aiosmtpd handler that records sessions and messages, with scripted refusals."""

    address: str
    port: int = 0
    sessions: int = 0
    messages: list[Received] = field(default_factory=list)
    # recipient -> replies to give at RCPT, one per attempt; when exhausted: 250.
    rcpt_script: dict[str, list[str]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set on each message

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self.rcpt_script.get(address)
        if script:
            return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(
            Received(
                sender=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                data=content,
            )
        )
        self.arrived.set()
        return "250 2.0.0 queued"

    def delivered_to(self) -> list[str]:
        return [r for m in self.messages for r in m.recipients]


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[[str], Any]]:
    """``await start("127.0.0.2")`` starts a receiver on that loopback address."""
    servers: list[asyncio.AbstractServer] = []

    async def start(address: str) -> Receiver:
        assert address.startswith("127."), "receivers stay on loopback"
        handler = Receiver(address=address)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="mx.remote.test", decode_data=False),
            host=address,
            port=0,
        )
        handler.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return handler

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _reply(code: int, raw: bytes) -> RemoteReply:
    text = raw.decode("utf-8", "replace")
    first, _, rest = text.partition(" ")
    if first.count(".") == 2 and first[0] in "245":
        return RemoteReply(code=code, enhanced=first, text=rest)
    return RemoteReply(code=code, enhanced="", text=text)


class SmtplibConnection:
    """One smtplib session behind the worker's ``Connection`` port."""

    def __init__(self, host: str, smtp: smtplib.SMTP, connector: SmtplibConnector) -> None:
        self.host = host
        self.tls = False
        self.tls_verified = False
        self._smtp = smtp
        self._connector = connector
        self._closed = False

    async def send(self, message: Outgoing) -> SendOutcome:
        return await asyncio.to_thread(self._send, message)

    def _send(self, message: Outgoing) -> SendOutcome:
        smtp = self._smtp
        try:
            code, raw = smtp.mail(message.sender)
            if code != 250:
                smtp.rset()
                refused = _reply(code, raw)
                return SendOutcome(recipients={r: refused for r in message.recipients})
            replies: dict[str, RemoteReply] = {}
            for rcpt in message.recipients:
                replies[rcpt] = _reply(*smtp.rcpt(rcpt))
            accepted = [r for r, reply in replies.items() if reply.success]
            if not accepted:
                smtp.rset()
                return SendOutcome(recipients=replies)
            final = _reply(*smtp.data(message.data))
            return SendOutcome(recipients={**replies, **{r: final for r in accepted}})
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"connection lost: {exc}", temporary=True) from exc

    @property
    def reusable(self) -> bool:
        return not self._closed and self._smtp.sock is not None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connector.open_now -= 1
        try:
            await asyncio.to_thread(self._smtp.quit)
        except (smtplib.SMTPException, OSError):
            self._smtp.close()


class SmtplibConnector:
    """Opens smtplib sessions to loopback receivers; counts how many are open at once."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports  # address -> port of the receiver bound there
        self.attempts: list[tuple[str, str]] = []  # (host, address) per connect call
        self.open_now = 0
        self.most_open = 0

    async def connect(self, host: str, address: str, port: int) -> Connection:
        self.attempts.append((host, address))
        assert address.startswith("127."), "the worker may only reach loopback here"
        # An address with no receiver gets a port nobody listens on: connection refused.
        target = self.ports.get(address, 9)
        try:
            smtp = await asyncio.to_thread(self._open, address, target)
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"{host} [{address}]: {exc}", temporary=True) from exc
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        return SmtplibConnection(host, smtp, self)

    @staticmethod
    def _open(address: str, port: int) -> smtplib.SMTP:
        smtp = smtplib.SMTP(address, port, local_hostname="courriel.test", timeout=10)
        smtp.ehlo()
        return smtp


@pytest.fixture
def make_connector() -> Callable[[list[Receiver]], SmtplibConnector]:
    """``make_connector(receivers)``: a connector that reaches those receivers."""
    return lambda rs: SmtplibConnector({r.address: r.port for r in rs})
