"""SmtpServer over real sockets on 127.0.0.1, driven by stdlib smtplib (not our client)."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import pytest

from courriel.mailstore.types import Principal
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.server import SmtpServer
from courriel.protocols.smtp.session import SmtpSettings
from courriel.testing.smtp import MemoryTarget

ALICE = Principal(
    account_id=1, address="alice@example.test", senders=frozenset({"alice@example.test"})
)


class Accounts:
    async def authenticate(self, username: str, password: str) -> Principal | None:
        return ALICE if (username, password) == (ALICE.address, "s3cret") else None


StartServer = Callable[..., Awaitable[tuple[SmtpServer, int]]]


@pytest.fixture
async def start_server(
    target: MemoryTarget, server_tls: ssl.SSLContext
) -> AsyncIterator[StartServer]:
    servers: list[SmtpServer] = []

    async def start(**overrides: Any) -> tuple[SmtpServer, int]:
        values: dict[str, Any] = {
            "hostname": "mx.test",
            "tls_available": True,
            "max_message_size": 100_000,
        }
        values.update(overrides)
        server = SmtpServer(
            SmtpSettings(**values),
            target,
            Accounts(),
            AuthThrottle(base=0.0, ceiling=0.0),
            server_tls,
        )
        _host, port = await server.start("127.0.0.1", 0)
        servers.append(server)
        return server, port

    yield start
    for server in servers:
        await server.stop(0)


def _message(sender: str, to: str, subject: str = "hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Hello there.\n.leading dot line\n")
    return msg


async def test_plain_send_to_mx(start_server: StartServer, target: MemoryTarget) -> None:
    _server, port = await start_server()

    def client() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as smtp:
            assert smtp.ehlo()[0] == 250
            assert smtp.has_extn("pipelining") and smtp.has_extn("chunking")
            assert not smtp.has_extn("auth")
            return smtp.send_message(_message("s@remote.test", "alice@example.test"))

    assert await asyncio.to_thread(client) == {}
    [message] = target.messages
    assert message.recipients == ("alice@example.test",)
    assert b"\r\n.leading dot line\r\n" in message.data
    assert message.trace_header.startswith(b"Received: from client.test ([127.0.0.1]) by mx.test")


async def test_starttls_then_login_on_submission(
    start_server: StartServer, target: MemoryTarget, client_tls: ssl.SSLContext
) -> None:
    _server, port = await start_server(listener="submission")

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("auth")
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                smtp.sendmail("alice@example.test", ["x@elsewhere.test"], b"Subject: x\r\n\r\n")
            assert refused.value.smtp_code == 530
            smtp.starttls(context=client_tls)
            smtp.ehlo()
            assert smtp.has_extn("auth") and not smtp.has_extn("starttls")
            smtp.login("alice@example.test", "s3cret")
            smtp.send_message(_message("alice@example.test", "friend@elsewhere.test"))

    await asyncio.to_thread(client)
    [message] = target.messages
    assert message.session.tls and message.session.authenticated == "alice@example.test"
    assert b" with ESMTPSA" in message.trace_header


async def test_implicit_tls_submissions(
    start_server: StartServer, target: MemoryTarget, client_tls: ssl.SSLContext
) -> None:
    _server, port = await start_server(listener="submission", tls_active=True)

    def client() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", port, context=client_tls) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("starttls")
            for mechanism in ("PLAIN", "LOGIN"):
                smtp.user, smtp.password = "alice@example.test", "s3cret"
                if mechanism == "PLAIN":
                    code, _ = smtp.auth("PLAIN", smtp.auth_plain)
                else:
                    smtp.rset()
                    smtp.close()
                    smtp.connect("127.0.0.1", port)
                    smtp.ehlo()
                    code, _ = smtp.auth("LOGIN", smtp.auth_login)
                assert code == 235
            smtp.send_message(_message("alice@example.test", "bob@example.test"))

    await asyncio.to_thread(client)
    assert len(target.messages) == 1


async def test_errors_raise_the_right_smtplib_exceptions(
    start_server: StartServer, client_tls: ssl.SSLContext
) -> None:
    _server, port = await start_server(listener="submission", max_message_size=1000)

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.starttls(context=client_tls)
            smtp.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
                smtp.login("alice@example.test", "wrong")
            assert failed.value.smtp_code == 535
            smtp.login("alice@example.test", "s3cret")
            with pytest.raises(smtplib.SMTPSenderRefused) as big:
                smtp.sendmail(
                    "alice@example.test", ["b@x.test"], b"Subject: x\r\n\r\n" + b"y" * 2000
                )
            assert big.value.smtp_code == 552
            with pytest.raises(smtplib.SMTPSenderRefused) as other:
                smtp.sendmail("mallory@example.test", ["b@x.test"], b"Subject: x\r\n\r\n")
            assert other.value.smtp_code == 553
            with pytest.raises(smtplib.SMTPDataError) as spoof:
                smtp.sendmail("alice@example.test", ["b@x.test"], b"From: ceo@example.test\r\n\r\n")
            assert spoof.value.smtp_code == 553

        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            with pytest.raises(smtplib.SMTPNotSupportedError):
                smtp.login("alice@example.test", "s3cret")

    await asyncio.to_thread(client)


async def test_mx_refusals(start_server: StartServer) -> None:
    _server, port = await start_server()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp.sendmail("s@remote.test", ["ghost@example.test", "v@other.test"], b"x\r\n")
            assert {code for code, _ in refused.value.recipients.values()} == {550}
            assert refused.value.recipients["v@other.test"][1] == b"5.7.1 Relaying denied"

    await asyncio.to_thread(client)


async def test_send_message_with_smtputf8(start_server: StartServer, target: MemoryTarget) -> None:
    _server, port = await start_server()

    def client() -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            assert smtp.has_extn("smtputf8")
            smtp.send_message(_message("jöran@remote.test", "ünï@example.test", "café"))

    target.users = None
    await asyncio.to_thread(client)
    [message] = target.messages
    assert message.mail_from.smtputf8 and message.mail_from.address == "jöran@remote.test"
    assert "ünï@example.test".encode() in message.data
    assert b" with UTF8SMTP" in message.trace_header


def _raw_exchange(port: int, packets: list[bytes], replies: int) -> list[str]:
    """Send packets on a raw socket; return the first ``replies`` reply lines after the greeting."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()
        for packet in packets:
            sock.sendall(packet)
        return [stream.readline().decode().rstrip("\r\n") for _ in range(replies)]


async def test_bdat_over_a_raw_socket(start_server: StartServer, target: MemoryTarget) -> None:
    _server, port = await start_server()
    body = b"Subject: chunked\r\n\r\nfirst part\r\n"
    tail = b".not stuffed\r\n"
    packets = [
        b"EHLO raw.test\r\n",
        b"MAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\n",
        b"BDAT %d\r\n%s" % (len(body), body),
        b"BDAT %d LAST\r\n%sQUIT\r\n" % (len(tail), tail),
    ]
    lines = await asyncio.to_thread(_raw_exchange, port, packets, 13)
    assert lines[-5:] == [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        f"250 2.0.0 {len(body)} octets received",
        "250 2.0.0 Ok: queued as Q1",
        "221 2.0.0 Bye",
    ]
    assert target.messages[0].data == body + tail


async def test_pipelined_replies_come_in_one_flush(start_server: StartServer) -> None:
    _server, port = await start_server()
    packets = [
        b"EHLO raw.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
        b"RCPT TO:<nobody@example.test>\r\nRSET\r\nQUIT\r\n"
    ]
    lines = await asyncio.to_thread(_raw_exchange, port, packets, 13)
    assert lines[-5:] == [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "550 5.1.1 No such user",
        "250 2.0.0 Ok",
        "221 2.0.0 Bye",
    ]


async def test_smuggling_over_the_wire(start_server: StartServer, target: MemoryTarget) -> None:
    _server, port = await start_server()
    packets = [
        b"EHLO raw.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
        b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@evil.test>\nRCPT TO:<alice@example.test>\n"
        b"DATA\nsmuggled\n.\n",
        b"\r\n.\r\nQUIT\r\n",
    ]
    lines = await asyncio.to_thread(_raw_exchange, port, packets, 13)
    assert lines[-2:] == ["550 5.6.0 Message contains bare CR or LF", "221 2.0.0 Bye"]
    assert target.messages == []


async def test_shutdown_sends_421_to_idle_clients(start_server: StartServer) -> None:
    server, port = await start_server()
    sock = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 30)
    with sock:
        stream = sock.makefile("rb")
        await asyncio.to_thread(stream.readline)
        await asyncio.to_thread(sock.sendall, b"NOOP\r\n")
        assert await asyncio.to_thread(stream.readline) == b"250 2.0.0 Ok\r\n"
        await server.stop(grace=5)
        rest = await asyncio.to_thread(stream.read)
    assert rest == b"421 4.3.2 Service shutting down, closing connection\r\n"


async def test_shutdown_lets_data_finish(start_server: StartServer, target: MemoryTarget) -> None:
    server, port = await start_server()
    sock = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 30)
    with sock:
        stream = sock.makefile("rb")
        await asyncio.to_thread(stream.readline)
        sock.sendall(b"HELO raw.test\r\nMAIL FROM:<s@remote.test>\r\n")
        sock.sendall(b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
        for _ in range(4):
            await asyncio.to_thread(stream.readline)
        sock.sendall(b"Subject: in flight\r\n\r\n")
        stopping = asyncio.create_task(server.stop(grace=30))
        while not server.stopping:
            await asyncio.sleep(0)
        sock.sendall(b"body\r\n.\r\n")
        rest = await asyncio.to_thread(stream.read)
        await stopping
    assert rest == (
        b"250 2.0.0 Ok: queued as Q1\r\n421 4.3.2 Service shutting down, closing connection\r\n"
    )
    assert target.messages[0].data == b"Subject: in flight\r\n\r\nbody\r\n"


async def test_connection_limit_and_timeout(start_server: StartServer) -> None:
    _server, port = await start_server(max_connections=1, command_timeout=0.2)

    def client() -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as first:
            first_stream = first.makefile("rb")
            first_stream.readline()
            with socket.create_connection(("127.0.0.1", port), timeout=30) as second:
                refused = second.makefile("rb").read()
            # The idle first client is disconnected by the command timeout.
            return refused, first_stream.read()

    refused, timed_out = await asyncio.to_thread(client)
    assert refused == b"421 4.7.0 Too many connections, try again later\r\n"
    assert timed_out == b"421 4.4.2 Timeout exceeded, closing connection\r\n"
