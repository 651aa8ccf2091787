"""Outbound delivery through a whole node: submission → queue → MX over loopback DNS.

The remote MX hosts are aiosmtpd servers on 127.0.0.2 and 127.0.0.3, found through a
DNS server on 127.0.0.1 (never the system resolver). One accepts, one refuses with 550,
which must come back to the sender's mailbox as an RFC 3464 DSN.
"""

from __future__ import annotations

import asyncio
import email
import smtplib
import socket
from collections.abc import AsyncIterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import Envelope, Session

from courriel.delivery.dkimkeys import ensure_keys, list_keys
from courriel.delivery.queue import list_queue
from courriel.testing.dns import DnsServer
from courriel.testing.node import RunningNode, running_node

from .conftest import PASSWORD


class Receiver:
    """An aiosmtpd handler that keeps what it accepts, or refuses every recipient."""

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrived = asyncio.Event()

    async def handle_RCPT(
        self,
        server: AioSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: AioSMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        self.arrived.set()
        return "250 2.0.0 queued"


def _free_port() -> int:
    # One port free on both 127.0.0.2 and 127.0.0.3 (the MX port is one setting).
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
            port = int(probe.getsockname()[1])
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.3", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no common free port")


World = tuple[RunningNode, Receiver, Receiver]


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    good, bad = Receiver(), Receiver(refuse="550 5.1.1 <nobody@bounce.test>: no such user")
    port = _free_port()
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(lambda h=handler: AioSMTP(h), host, port)
        for handler, host in ((good, "127.0.0.2"), (bad, "127.0.0.3"))
    ]
    zone = {
        ("remote.test", "MX"): ["10 mx1.remote.test.", "20 mx2.remote.test."],
        ("mx1.remote.test", "A"): ["127.0.0.2"],
        ("mx2.remote.test", "A"): ["127.0.0.9"],
        ("bounce.test", "MX"): ["10 mx.bounce.test."],
        ("mx.bounce.test", "A"): ["127.0.0.3"],
    }
    async with DnsServer(zone) as dns_port:
        extra = {
            "dns.nameservers": f"127.0.0.1:{dns_port}",
            "dns.timeout": "2s",
            "delivery.mx_port": str(port),
        }
        roles = ("smtp", "pop3", "delivery")
        async with running_node(tmp_path / "data", db_url, extra=extra, roles=roles) as node:
            store = node.services.mailstore
            await store.add_domain("shop.test")
            await store.add_account("alice@shop.test", PASSWORD)
            await ensure_keys(node.services.db, "shop.test", today=date(2026, 11, 27))
            yield node, good, bad
    for server in servers:
        server.close()
        await server.wait_closed()


def _submit(node: RunningNode, to: str, subject: str) -> None:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@shop.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Your parcel is on its way.\n")
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=node.client_tls())
        smtp.login("alice@shop.test", PASSWORD)
        smtp.send_message(msg)


async def _until(predicate, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_submitted_mail_reaches_the_remote_mx_signed(world: World) -> None:
    node, good, _bad = world
    await asyncio.to_thread(_submit, node, "buyer@remote.test", "Shipped")
    async with asyncio.timeout(20):
        await good.arrived.wait()
    sender, recipients, content = good.messages[0]
    assert (sender, recipients) == ("alice@shop.test", ["buyer@remote.test"])
    keys = {k.selector: k for k in await list_keys(node.services.db, "shop.test")}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        key = keys[name.decode().split(".")[0]]
        kind = "ed25519" if key.algorithm.startswith("ed25519") else "rsa"
        return f"v=DKIM1; k={kind}; p={key.public_key}".encode()

    assert dkim.verify(content, dnsfunc=dnsfunc)

    async def queue_empty() -> bool:
        return await list_queue(node.services.db) == []

    await _until(queue_empty)


async def test_a_550_comes_back_to_the_sender_as_a_dsn(world: World) -> None:
    node, _good, bad = world
    await asyncio.to_thread(_submit, node, "nobody@bounce.test", "Lost")
    store = node.services.mailstore
    principal = await store.principal("alice@shop.test")

    async def inbox() -> list[bytes]:
        drop = await store.open_maildrop(principal)
        try:
            return [await drop.read(m.message_id) for m in drop.messages]
        finally:
            await drop.release()

    async def bounced() -> bool:
        return len(await inbox()) == 1

    await _until(bounced)
    dsn = email.message_from_bytes((await inbox())[0])
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    report = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    text = report.as_string()
    assert "Final-Recipient: rfc822; nobody@bounce.test" in text
    assert "Status: 5.1.1" in text
    assert "Action: failed" in text
    assert not bad.messages
    assert await list_queue(node.services.db) == []


async def test_a_smarthost_takes_everything_without_mx_lookups(tmp_path: Path, db_url: str) -> None:
    relay = Receiver()
    port = _free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: AioSMTP(relay), "127.0.0.2", port
    )
    extra = {
        "delivery.relay_host": "127.0.0.2",
        "delivery.relay_port": str(port),
        "delivery.relay_tls": "none",
    }
    roles = ("smtp", "pop3", "delivery")
    try:
        async with running_node(tmp_path / "data", db_url, extra=extra, roles=roles) as node:
            await node.services.mailstore.add_domain("shop.test")
            await node.services.mailstore.add_account("alice@shop.test", PASSWORD)
            # No DNS server answers in this test: only the relay can carry the message.
            await asyncio.to_thread(_submit, node, "someone@nowhere.test", "Via relay")
            async with asyncio.timeout(20):
                await relay.arrived.wait()
    finally:
        server.close()
        await server.wait_closed()
    assert relay.messages[0][:2] == ("alice@shop.test", ["someone@nowhere.test"])
