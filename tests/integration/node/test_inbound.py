"""Port 25 end to end: smtplib in, POP3 out, on a real node (RFC 5321, RFC 1939)."""

from __future__ import annotations

import asyncio
import poplib
import smtplib
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from courriel.delivery.queue import list_queue
from courriel.testing.node import RunningNode

from .conftest import PASSWORD


def _message(to: str, subject: str = "Order 1001", sender: str = "customer@example.test") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@example.test>"
    msg.set_content("Hello,\n.leading dot line\nthanks\n")
    return msg.as_bytes(policy=SMTP)  # CRLF line ends: bare LF is refused


def _send(node: RunningNode, rcpts: list[str], data: bytes, sender: str = "c@example.test") -> dict:
    with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10) as smtp:
        return smtp.sendmail(sender, rcpts, data)


def _pop_all(node: RunningNode, user: str) -> list[bytes]:
    pop = poplib.POP3("127.0.0.1", node.ports["pop3"], timeout=10)
    try:
        pop.stls(node.client_tls())
        pop.user(user)
        pop.pass_(PASSWORD)
        count, _size = pop.stat()
        return [b"\r\n".join(pop.retr(i + 1)[1]) for i in range(count)]
    finally:
        pop.quit()


async def test_local_delivery_then_pop3(node: RunningNode) -> None:
    refused = await asyncio.to_thread(_send, node, ["alice@shop.test"], _message("alice@shop.test"))
    assert refused == {}
    messages = await asyncio.to_thread(_pop_all, node, "alice@shop.test")
    assert len(messages) == 1
    body = messages[0]
    # RFC 5321 §4.4: the final delivery inserts the return path first, then our trace
    # header, naming us and the protocol.
    assert body.startswith(b"Return-Path: <c@example.test>\r\nReceived: from ")
    unfolded = body.replace(b"\r\n\t", b" ")
    assert b"by mail.courriel.test (courriel) with ESMTP id" in unfolded
    assert b"Subject: Order 1001" in body
    # RFC 1939 §3: poplib removes the byte-stuffing, so the line is as sent.
    assert b"\r\n.leading dot line\r\n" in body


async def test_alias_and_catch_all_fan_out_once_per_mailbox(node: RunningNode) -> None:
    rcpts = ["orders@shop.test", "bob@shop.test", "anything@other.test"]
    await asyncio.to_thread(_send, node, rcpts, _message("orders@shop.test"))
    alice = await asyncio.to_thread(_pop_all, node, "alice@shop.test")
    bob = await asyncio.to_thread(_pop_all, node, "bob@shop.test")
    assert len(alice) == 1
    assert len(bob) == 1  # named three ways, stored once


async def test_port_25_is_not_an_open_relay(node: RunningNode) -> None:
    def attempt() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10) as smtp:
            smtp.ehlo("relay.example.test")
            smtp.mail("alice@shop.test")
            return smtp.rcpt("victim@elsewhere.test")

    code, text = await asyncio.to_thread(attempt)
    assert (code, text.split()[0]) == (550, b"5.7.1")
    assert await list_queue(node.services.db) == []


async def test_unknown_local_user_is_refused_and_nothing_stored(node: RunningNode) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(_send, node, ["nobody@shop.test"], _message("nobody@shop.test"))
    code, text = info.value.recipients["nobody@shop.test"]
    assert code == 550
    assert text.startswith(b"5.1.1")
    assert await asyncio.to_thread(_pop_all, node, "alice@shop.test") == []


async def test_pop3_refuses_a_second_session_on_the_same_maildrop(node: RunningNode) -> None:
    def two_sessions() -> str:
        first = poplib.POP3("127.0.0.1", node.ports["pop3"], timeout=10)
        first.stls(node.client_tls())
        first.user("alice@shop.test")
        first.pass_(PASSWORD)
        second = poplib.POP3_SSL(
            "127.0.0.1", node.ports["pop3s"], timeout=10, context=node.client_tls()
        )
        try:
            second.user("alice@shop.test")
            with pytest.raises(poplib.error_proto) as info:
                second.pass_(PASSWORD)
            return str(info.value)
        finally:
            second.close()
            first.quit()

    assert "[IN-USE]" in await asyncio.to_thread(two_sessions)
