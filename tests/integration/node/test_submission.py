"""Submission on 587 (STARTTLS) and 465 (implicit TLS): AUTH, sender checks, queueing."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from courriel.delivery.queue import list_queue
from courriel.testing.node import RunningNode

from .conftest import PASSWORD


def _msg(sender: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Your order has shipped"
    msg.set_content("It is on its way.\n")
    return msg


def _submit(node: RunningNode, msg: EmailMessage, user: str = "alice@shop.test") -> dict:
    with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=node.client_tls())
        smtp.login(user, PASSWORD)
        return smtp.send_message(msg)


async def test_submission_to_remote_is_queued_and_to_local_is_delivered(node: RunningNode) -> None:
    msg = _msg("alice@shop.test", "buyer@remote.test")
    msg["Cc"] = "bob@shop.test"
    del msg["To"]
    msg["To"] = "buyer@remote.test, bob@shop.test"
    assert await asyncio.to_thread(_submit, node, msg) == {}
    queued = await list_queue(node.services.db)
    assert [tuple(r.recipient for r in q.recipients) for q in queued] == [("buyer@remote.test",)]
    assert queued[0].sender == "alice@shop.test"
    store = node.services.mailstore
    bob = await store.principal("bob@shop.test")
    drop = await store.open_maildrop(bob)
    try:
        assert len(drop.messages) == 1
        data = await drop.read(drop.messages[0].message_id)
        assert b"with ESMTPSA" in data.replace(b"\r\n\t", b" ")  # RFC 3848: TLS and AUTH
    finally:
        await drop.release()


async def test_sending_as_an_alias_is_allowed(node: RunningNode) -> None:
    msg = _msg("alice.smith@shop.test", "bob@shop.test")

    def submit() -> dict:
        with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
            smtp.starttls(context=node.client_tls())
            smtp.login("alice@shop.test", PASSWORD)
            return smtp.sendmail(
                "alice.smith@shop.test", ["bob@shop.test"], msg.as_bytes(policy=SMTP)
            )

    assert await asyncio.to_thread(submit) == {}


async def test_sender_not_owned_by_the_account_is_refused(node: RunningNode) -> None:
    msg = _msg("bob@shop.test", "buyer@remote.test")
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        await asyncio.to_thread(_submit, node, msg)
    assert info.value.smtp_code == 553
    assert info.value.smtp_error.startswith(b"5.7.1")
    assert await list_queue(node.services.db) == []


async def test_from_header_must_match_too(node: RunningNode) -> None:
    msg = _msg("bob@shop.test", "buyer@remote.test")

    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
            smtp.starttls(context=node.client_tls())
            smtp.login("alice@shop.test", PASSWORD)
            smtp.sendmail("alice@shop.test", ["buyer@remote.test"], msg.as_bytes(policy=SMTP))

    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(submit)
    assert info.value.smtp_code == 553
    assert await list_queue(node.services.db) == []


async def test_auth_is_not_offered_before_tls(node: RunningNode) -> None:
    def ehlo_features() -> tuple[bool, bool]:
        with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10) as smtp:
            smtp.ehlo()
            before = smtp.has_extn("auth")
            smtp.starttls(context=node.client_tls())
            smtp.ehlo()
            return before, smtp.has_extn("auth")

    assert await asyncio.to_thread(ehlo_features) == (False, True)


async def test_implicit_tls_submission_on_465(node: RunningNode) -> None:
    def submit() -> dict:
        with smtplib.SMTP_SSL(
            "127.0.0.1", node.ports["submissions"], timeout=10, context=node.client_tls()
        ) as smtp:
            smtp.login("bob@shop.test", PASSWORD)
            return smtp.send_message(_msg("bob@shop.test", "alice@shop.test"))

    assert await asyncio.to_thread(submit) == {}


async def test_wrong_password_is_refused(node: RunningNode) -> None:
    def login() -> None:
        with smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=30) as smtp:
            smtp.starttls(context=node.client_tls())
            smtp.login("alice@shop.test", "wrong")

    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        await asyncio.to_thread(login)
    assert info.value.smtp_code == 535
