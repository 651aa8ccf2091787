"""Connection-level failures: scripted peers on 127.0.0.2 that misbehave on purpose."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from courriel.delivery.transport import Outgoing, TransportError
from courriel.protocols.smtp.client import ClientTimeouts, SmtpConnector

MakeConnector = Callable[..., SmtpConnector]
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Scripted = Callable[[Script], Awaitable[int]]

EHLO_PIPELINING = b"250-mx2.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
MSG = Outgoing(
    sender="a@src.test", recipients=("b@dest.test",), data=b"x\r\n", smtputf8=False, eight_bit=False
)


async def _say(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def _greet_then(greeting: bytes, replies: dict[bytes, bytes], after: bytes | None = None) -> Script:
    """Greet; answer each command by its verb; on ``after`` close the connection."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _say(writer, greeting)
        while line := await reader.readline():
            verb = line.split(b" ")[0].split(b":")[0].strip().upper()
            if verb == after:
                return
            await _say(writer, replies.get(verb, b"250 2.0.0 ok\r\n"))

    return script


async def test_rfc5321_3_1_greeting_554_is_permanent(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    port = await scripted(_greet_then(b"554 5.3.2 No SMTP service here\r\n", {}))
    with pytest.raises(TransportError) as info:
        await make_connector().connect("mx2.test", "127.0.0.2", port)
    assert info.value.temporary is False
    assert info.value.reply is not None and info.value.reply.code == 554
    assert "554" in str(info.value)


async def test_greeting_421_is_temporary(scripted: Scripted, make_connector: MakeConnector) -> None:
    port = await scripted(_greet_then(b"421 4.3.2 Busy\r\n", {}))
    with pytest.raises(TransportError) as info:
        await make_connector().connect("mx2.test", "127.0.0.2", port)
    assert info.value.temporary is True and info.value.reply is not None
    assert info.value.reply.code == 421


async def test_unreadable_greeting_is_temporary(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    port = await scripted(_greet_then(b"hello, I am not SMTP\r\n", {}))
    with pytest.raises(TransportError) as info:
        await make_connector().connect("mx2.test", "127.0.0.2", port)
    assert info.value.temporary is True and info.value.reply is None
    assert "unreadable" in str(info.value)


async def test_connection_refused_is_temporary(make_connector: MakeConnector) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.2", 0))
        port = sock.getsockname()[1]
        with pytest.raises(TransportError) as info:
            await make_connector().connect("mx2.test", "127.0.0.2", port)
    assert info.value.temporary is True and "cannot connect" in str(info.value)


async def test_rfc5321_4_1_4_helo_fallback_when_ehlo_is_unknown(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    port = await scripted(
        _greet_then(b"220 old.test\r\n", {b"EHLO": b"502 5.5.1 Unknown command\r\n"})
    )
    conn = await make_connector().connect("mx2.test", "127.0.0.2", port)
    assert not conn.extensions.esmtp
    outcome = await conn.send(MSG)
    await conn.close()
    assert outcome.recipients["b@dest.test"].code == 250


async def test_server_closing_mid_transaction_raises(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    replies = {b"EHLO": EHLO_PIPELINING, b"DATA": b"354 go ahead\r\n"}
    port = await scripted(_greet_then(b"220 mx2.test\r\n", replies, after=b"X"))
    conn = await make_connector().connect("mx2.test", "127.0.0.2", port)
    with pytest.raises(TransportError) as info:
        await conn.send(MSG)  # the body line "x" makes the peer hang up
    assert info.value.temporary is True
    assert conn.closed
    with pytest.raises(TransportError):
        await conn.send(MSG)
    await conn.close()  # tolerated on a dead connection


async def test_rfc5321_4_5_3_2_timeout_awaiting_a_reply(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    never = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _say(writer, b"220 mx2.test\r\n")
        await never.wait()  # never answers EHLO

    port = await scripted(silent)
    connector = make_connector(timeouts=ClientTimeouts(command=0.2))
    with pytest.raises(TransportError) as info:
        await connector.connect("mx2.test", "127.0.0.2", port)
    never.set()
    assert info.value.temporary is True and "timed out" in str(info.value)


async def test_rfc5321_3_8_421_at_rcpt_closes_and_tempfails(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    replies = {b"EHLO": EHLO_PIPELINING, b"RCPT": b"421 4.7.0 Closing\r\n"}
    port = await scripted(_greet_then(b"220 mx2.test\r\n", replies, after=b"DATA"))
    conn = await make_connector().connect("mx2.test", "127.0.0.2", port)
    outcome = await conn.send(MSG)
    reply = outcome.recipients["b@dest.test"]
    assert (reply.code, reply.temporary) == (421, True)
    assert conn.closed


async def test_starttls_required_but_not_offered(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    port = await scripted(_greet_then(b"220 mx2.test\r\n", {b"EHLO": EHLO_PIPELINING}))
    with pytest.raises(TransportError) as info:
        await make_connector(starttls="required").connect("mx2.test", "127.0.0.2", port)
    assert info.value.temporary and "STARTTLS" in str(info.value)


async def test_rfc4954_no_credentials_in_clear_text(
    scripted: Scripted, make_connector: MakeConnector
) -> None:
    ehlo = b"250-mx2.test\r\n250 AUTH PLAIN LOGIN\r\n"
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _say(writer, b"220 mx2.test\r\n")
        while line := await reader.readline():
            seen.append(line)
            await _say(writer, ehlo if line.startswith(b"EHLO") else b"250 ok\r\n")

    port = await scripted(script)
    with pytest.raises(TransportError) as info:
        await make_connector(auth=("u", "p")).connect("mx2.test", "127.0.0.2", port)
    assert "without TLS" in str(info.value)
    assert not any(line.startswith(b"AUTH") for line in seen)
