"""Submitted mail from a local domain is DKIM-signed once, as it enters delivery (RFC 6376)."""

from __future__ import annotations

import asyncio
import smtplib
from datetime import date
from email.message import EmailMessage

import dkim
import pytest

from courriel.delivery.dkimkeys import ensure_keys, list_keys
from courriel.testing.node import RunningNode

from .conftest import PASSWORD


async def _stored(node: RunningNode, address: str) -> list[bytes]:
    store = node.services.mailstore
    drop = await store.open_maildrop(await store.principal(address))
    try:
        return [await drop.read(m.message_id) for m in drop.messages]
    finally:
        await drop.release()


async def _dns_for(node: RunningNode, domain: str):  # type: ignore[no-untyped-def]
    keys = {
        f"{k.selector}._domainkey.{domain}.".encode(): k
        for k in await list_keys(node.services.db, domain)
    }

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        key = keys[name]
        algorithm = "ed25519" if key.algorithm.startswith("ed25519") else "rsa"
        return f"v=DKIM1; k={algorithm}; p={key.public_key}".encode()

    return dnsfunc


def _submit(node: RunningNode, sender: str, to: str) -> None:
    msg = EmailMessage()
    msg["From"] = f"Alice <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Your order   has shipped"
    msg.set_content("Hello,\n\nit is on its way.   \n\n\n")
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=node.client_tls())
        smtp.login(sender, PASSWORD)
        smtp.send_message(msg)


async def test_submitted_mail_carries_two_signatures_dkimpy_verifies(node: RunningNode) -> None:
    await ensure_keys(node.services.db, "shop.test", today=date(2026, 11, 27))
    await asyncio.to_thread(_submit, node, "alice@shop.test", "bob@shop.test")
    [stored] = await _stored(node, "bob@shop.test")
    assert stored.count(b"DKIM-Signature:") == 2
    dnsfunc = await _dns_for(node, "shop.test")
    # dkimpy checks one signature per call: the first, then the second.
    assert dkim.verify(stored, dnsfunc=dnsfunc)
    verifier = dkim.DKIM(stored)
    assert verifier.verify(idx=1, dnsfunc=dnsfunc)


async def test_mail_from_port_25_is_never_signed(node: RunningNode) -> None:
    await ensure_keys(node.services.db, "shop.test", today=date(2026, 11, 27))

    def send() -> None:
        body = b"From: alice@shop.test\r\nTo: bob@shop.test\r\nSubject: x\r\n\r\nspoof\r\n"
        with smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("alice@shop.test", ["bob@shop.test"], body)

    await asyncio.to_thread(send)
    [stored] = await _stored(node, "bob@shop.test")
    assert b"DKIM-Signature" not in stored


async def test_a_domain_without_keys_is_sent_unsigned(node: RunningNode) -> None:
    await asyncio.to_thread(_submit, node, "alice@shop.test", "bob@shop.test")
    [stored] = await _stored(node, "bob@shop.test")
    assert b"DKIM-Signature" not in stored


@pytest.fixture(autouse=True)
def _dkimpy_present() -> None:
    assert dkim.__name__ == "dkim"
