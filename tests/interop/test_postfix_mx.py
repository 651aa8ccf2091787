"""Interop: courriel delivers through dnsmasq-resolved MX to a real Postfix (Debian's).

Mail is submitted over submission (stdlib smtplib), queued, routed by MX through dnsmasq,
sent with STARTTLS to Postfix on 127.0.0.5, and read back from Postfix's Maildirs: the
headers and body must arrive intact, and each DKIM-Signature must verify with dkimpy
against the public keys from ``list_keys``. A recipient Postfix refuses comes back to the
sender as an RFC 3464 DSN quoting Postfix's reply.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import smtplib
import uuid
from collections.abc import Awaitable, Callable
from email.message import Message

import dkim
import pytest

from courriel.delivery.dkimkeys import list_keys
from courriel.delivery.queue import list_queue
from courriel.testing.node import RunningNode

from .conftest import DOMAIN, PASSWORD, Interop

pytestmark = pytest.mark.interop

SENDER = "alice@shop.test"


def _message(to: str, subject: str, body: str, *, utf8: bool = False) -> tuple[str, bytes]:
    """A submitted message in wire form (CRLF) and its Message-ID."""
    message_id = f"<{uuid.uuid4().hex}@shop.test>"
    charset = "utf-8" if utf8 else "us-ascii"
    encoding = "8bit" if utf8 else "7bit"
    head = (
        f"From: Alice <{SENDER}>\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n"
    )
    return message_id, (head + "\r\n" + body).encode()


def _submit(node: RunningNode, recipients: list[str], data: bytes, *, utf8: bool = False) -> None:
    options = ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else []
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=node.client_tls())
        smtp.login(SENDER, PASSWORD)
        smtp.sendmail(SENDER, recipients, data, mail_options=options)


async def _until(predicate: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    # Postfix's Maildir has no notification to await: poll it, bounded by the timeout.
    async with asyncio.timeout(seconds):
        while not await predicate():
            await asyncio.sleep(0.05)


async def _arrived(world: Interop, local: str, message_id: str) -> tuple[bytes, Message]:
    """Wait for the message with ``message_id`` in mailbox ``local``: its file and parse."""
    found: list[bytes] = []

    async def present() -> bool:
        found[:] = [
            raw
            for raw in world.postfix.delivered(local)
            if message_id.encode() in raw.split(b"\n\n", 1)[0]
        ]
        return bool(found)

    await _until(present)
    assert len(found) == 1, f"{len(found)} copies of {message_id} in {local}"
    # Everything below checks the file's own octets; the parse only reads header values.
    return found[0], email.message_from_bytes(found[0], policy=email.policy.compat32)


def _crlf(raw: bytes) -> bytes:
    # Maildir files end lines with LF; DKIM and our comparison use the wire form.
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def _split(wire: bytes) -> tuple[bytes, bytes]:
    head, _, body = wire.partition(b"\r\n\r\n")
    return head, body


async def _verify_dkim(world: Interop, raw: bytes) -> list[str]:
    """Verify every DKIM-Signature of ``raw`` with dkimpy; return the selectors that signed."""
    keys = {k.selector: k for k in await list_keys(world.node.services.db, "shop.test")}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        key = keys[name.decode().split(".")[0]]
        kind = "ed25519" if key.algorithm.startswith("ed25519") else "rsa"
        return f"v=DKIM1; k={kind}; p={key.public_key}".encode()

    message = _crlf(raw)
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    signatures = parsed.get_all("DKIM-Signature") or []
    selectors = []
    for index, signature in enumerate(signatures):
        verifier = dkim.DKIM(message)
        assert verifier.verify(idx=index, dnsfunc=dnsfunc), f"signature {index} fails"
        selectors.append(re.search(r"\bs=([^;\s]+)", signature).group(1))  # type: ignore[union-attr]
    return selectors


async def _queue_drains(world: Interop) -> None:
    async def empty() -> bool:
        return await list_queue(world.node.services.db) == []

    await _until(empty)


async def test_signed_mail_reaches_postfix_intact_over_starttls(interop: Interop) -> None:
    # Lines starting with a dot test SMTP transparency (RFC 5321 §4.5.2) on both hops.
    body = "Your parcel is on its way.\r\n.\r\n..leading dots\r\n" + "x" * 900 + "\r\n"
    message_id, data = _message(f"buyer@{DOMAIN}", "Shipped: order #1042", body)
    await asyncio.to_thread(_submit, interop.node, [f"buyer@{DOMAIN}"], data)

    raw, arrived = await _arrived(interop, "buyer", message_id)
    # virtual(8) records the envelope; Postfix's Received header shows the STARTTLS hop.
    assert arrived["Return-Path"] == f"<{SENDER}>"
    assert arrived["Delivered-To"] == f"buyer@{DOMAIN}"
    received = " ".join((arrived.get_all("Received") or [])[0].split())
    assert f"by mx.{DOMAIN} (Postfix)" in received
    assert "using TLS" in received
    # Every submitted header arrives unchanged, in order, and the body octet for octet.
    sent_head, sent_body = _split(data)
    got_head, got_body = _split(_crlf(raw))
    assert got_head.endswith(sent_head.rstrip(b"\r\n"))
    assert got_body == sent_body
    selectors = await _verify_dkim(interop, raw)
    assert len(selectors) == 2, "RSA and Ed25519 signatures expected"
    await _queue_drains(interop)


async def test_two_mailboxes_in_one_transaction(interop: Interop) -> None:
    recipients = [f"buyer@{DOMAIN}", f"second@{DOMAIN}"]
    message_id, data = _message(", ".join(recipients), "For both of you", "Hello both.\r\n")
    await asyncio.to_thread(_submit, interop.node, recipients, data)

    for local in ("buyer", "second"):
        raw, arrived = await _arrived(interop, local, message_id)
        assert arrived["Delivered-To"] == f"{local}@{DOMAIN}"
        assert _split(_crlf(raw))[1] == b"Hello both.\r\n"
        assert len(await _verify_dkim(interop, raw)) == 2
    # One SMTP transaction carried both recipients: Postfix logged one queue file for 2.
    # postlogd(8) writes the log on its own, so wait for the line rather than read once.
    id_line = re.compile(rf"(\w+): message-id={re.escape(message_id)}")

    async def logged() -> bool:
        log = interop.postfix.log.read_text(errors="replace")
        queue_ids = id_line.findall(log)
        nrcpt = re.compile(rf"({'|'.join(queue_ids) or '-'}): from=<{SENDER}>.* nrcpt=(\d+)")
        return len(queue_ids) == 1 and nrcpt.search(log) is not None

    await _until(logged)
    log = interop.postfix.log.read_text(errors="replace")
    queue_id = id_line.findall(log)[0]
    assert re.search(rf"{queue_id}: from=<{SENDER}>, size=\d+, nrcpt=2 \(queue active\)", log)
    await _queue_drains(interop)


async def test_smtputf8_and_8bit_body_reach_postfix(interop: Interop) -> None:
    # RFC 6531: a UTF-8 local part needs SMTPUTF8 on both hops; the body is 8bit MIME.
    to = f"josé@{DOMAIN}"
    body = "Votre colis est expédié. Ça arrive bientôt — merci !\r\n"
    message_id, data = _message(to, "Commande expédiée", body, utf8=True)
    await asyncio.to_thread(_submit, interop.node, [to], data, utf8=True)

    raw, _parsed = await _arrived(interop, "josé", message_id)
    sent_head, sent_body = _split(data)
    got_head, got_body = _split(_crlf(raw))
    assert got_body == sent_body
    assert got_head.endswith(sent_head.rstrip(b"\r\n"))
    assert len(await _verify_dkim(interop, raw)) == 2
    await _queue_drains(interop)


async def test_recipient_postfix_refuses_bounces_to_the_sender(interop: Interop) -> None:
    message_id, data = _message(f"nobody@{DOMAIN}", "Lost", "Nobody home.\r\n")
    await asyncio.to_thread(_submit, interop.node, [f"nobody@{DOMAIN}"], data)
    store = interop.node.services.mailstore
    principal = await store.principal(SENDER)

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
    report = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    text = " ".join(report.as_string().split())
    assert f"Final-Recipient: rfc822; nobody@{DOMAIN}" in text
    assert "Action: failed" in text
    assert "Status: 5.1.1" in text
    # Postfix's own words come back in the Diagnostic-Code (RFC 3464 §2.3.6).
    assert "User unknown in virtual mailbox table" in text
    assert message_id in dsn.as_string()
    await _queue_drains(interop)
