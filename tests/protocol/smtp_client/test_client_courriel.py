"""The SMTP client against courriel's own SmtpServer (PIPELINING, CHUNKING, SMTPUTF8, STARTTLS)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

import pytest

from courriel.delivery.transport import Connector, Outgoing, TransportError
from courriel.errors import DeliveryRefused
from courriel.mailstore.types import Principal
from courriel.protocols.smtp.client import SmtpConnection, SmtpConnector
from courriel.testing.smtp import MemoryTarget

MakeConnector = Callable[..., SmtpConnector]
StartServer = Callable[..., Awaitable[int]]

BODY = b"From: a@src.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello\r\n.dot line\r\n"


def _msg(*recipients: str, data: bytes = BODY, **kw: bool) -> Outgoing:
    return Outgoing(
        sender="a@src.test",
        recipients=recipients,
        data=data,
        smtputf8=kw.get("smtputf8", False),
        eight_bit=kw.get("eight_bit", False),
    )


async def _open(connector: SmtpConnector, port: int, host: str = "localhost") -> SmtpConnection:
    port_: Connector = connector  # SmtpConnector satisfies the delivery port
    conn = await port_.connect(host, "127.0.0.1", port)
    assert isinstance(conn, SmtpConnection)
    return conn


async def test_rfc2920_rfc3030_pipelined_bdat_send(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    port = await courriel_server()
    conn = await _open(make_connector(starttls="none"), port)
    assert conn.extensions.pipelining and conn.extensions.chunking and not conn.tls
    outcome = await conn.send(_msg("b@example.test", "c@example.test"))
    await conn.close()
    assert {r: v.code for r, v in outcome.recipients.items()} == {
        "b@example.test": 250,
        "c@example.test": 250,
    }
    (received,) = target.messages
    assert received.data == BODY  # BDAT: no stuffing, octets as given
    assert received.recipients == ("b@example.test", "c@example.test")
    assert received.mail_from.size == len(BODY)


async def test_per_recipient_refusal_others_delivered(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    target.refuse_recipients = {"bad@example.test": DeliveryRefused(550, "5.1.1", "No such user")}
    port = await courriel_server()
    conn = await _open(make_connector(starttls="none"), port)
    outcome = await conn.send(_msg("ok@example.test", "bad@example.test"))
    bad = outcome.recipients["bad@example.test"]
    assert (bad.code, bad.enhanced, bad.text) == (550, "5.1.1", "No such user")
    assert outcome.recipients["ok@example.test"].code == 250
    assert target.messages[0].recipients == ("ok@example.test",)
    # All refused: nothing is sent, RSET keeps the session usable.
    outcome = await conn.send(_msg("bad@example.test"))
    assert outcome.recipients["bad@example.test"].code == 550
    assert (await conn.send(_msg("ok@example.test"))).recipients["ok@example.test"].code == 250
    await conn.close()
    assert len(target.messages) == 2


async def test_message_refused_at_the_end_of_bdat_then_reused(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    target.refuse_message = DeliveryRefused(451, "4.3.0", "Try again later")
    port = await courriel_server()
    conn = await _open(make_connector(starttls="none"), port)
    reply = (await conn.send(_msg("b@example.test"))).recipients["b@example.test"]
    assert (reply.code, reply.enhanced, reply.temporary) == (451, "4.3.0", True)
    target.refuse_message = None
    assert (await conn.send(_msg("b@example.test"))).recipients["b@example.test"].code == 250
    await conn.close()


async def test_one_connection_carries_three_messages(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    port = await courriel_server()
    conn = await _open(make_connector(starttls="none"), port)
    for n in range(3):
        data = BODY + f"message {n}\r\n".encode()
        outcome = await conn.send(_msg(f"u{n}@example.test", data=data))
        assert outcome.recipients[f"u{n}@example.test"].code == 250
    await conn.close()
    await conn.close()  # idempotent
    assert [m.data[-11:] for m in target.messages] == [
        f"message {n}\r\n".encode() for n in range(3)
    ]
    assert len({m.session.peer_ip for m in target.messages}) == 1


async def test_rfc6531_smtputf8_and_rfc6152_8bit_when_offered(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    port = await courriel_server()
    conn = await _open(make_connector(starttls="none"), port)
    data = "Subject: héllo\r\n\r\nçà\r\n".encode()
    outcome = await conn.send(_msg("ünï@example.test", data=data, smtputf8=True, eight_bit=True))
    await conn.close()
    assert outcome.recipients["ünï@example.test"].code == 250
    (received,) = target.messages
    assert received.mail_from.smtputf8 and received.mail_from.body == "8BITMIME"
    assert received.data == data


async def test_rfc1870_too_big_for_the_declared_size_is_not_sent(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    port = await courriel_server(max_message_size=50)
    conn = await _open(make_connector(starttls="none"), port)
    reply = (await conn.send(_msg("b@example.test"))).recipients["b@example.test"]
    await conn.close()
    assert (reply.code, reply.enhanced) == (552, "5.3.4")
    assert target.messages == []


async def test_rfc3207_starttls_verified_with_the_trusted_ca(
    courriel_server: StartServer,
    target: MemoryTarget,
    make_connector: MakeConnector,
    client_tls: ssl.SSLContext,
) -> None:
    port = await courriel_server()
    conn = await _open(make_connector(tls_context_factory=lambda: client_tls), port)
    assert conn.tls and conn.tls_verified
    assert not conn.extensions.starttls  # RFC 3207 §4.2: EHLO again after TLS
    assert (await conn.send(_msg("b@example.test"))).recipients["b@example.test"].code == 250
    await conn.close()
    assert target.messages[0].session.tls


async def test_starttls_untrusted_certificate_falls_back_to_unverified(
    courriel_server: StartServer, target: MemoryTarget, make_connector: MakeConnector
) -> None:
    port = await courriel_server()
    connector = make_connector()  # the system trust store does not know the test CA
    for _ in range(2):  # the second connection goes straight to an unverified context
        conn = await _open(connector, port)
        assert conn.tls and not conn.tls_verified
        assert (await conn.send(_msg("b@example.test"))).recipients["b@example.test"].code == 250
        await conn.close()
    assert all(m.session.tls for m in target.messages)


async def test_starttls_certificate_for_another_name_is_not_verified(
    courriel_server: StartServer, make_connector: MakeConnector, client_tls: ssl.SSLContext
) -> None:
    port = await courriel_server()
    connector = make_connector(tls_context_factory=lambda: client_tls)
    conn = await _open(connector, port, host="mx.elsewhere.test")
    assert conn.host == "mx.elsewhere.test" and conn.tls and not conn.tls_verified
    await conn.close()


class _Accounts:
    async def authenticate(self, username: str, password: str) -> Principal | None:
        if (username, password) == ("alice@example.test", "s3cret"):
            return Principal(
                account_id=1,
                address="alice@example.test",
                senders=frozenset({"alice@example.test"}),
            )
        return None


async def test_rfc4954_auth_plain_after_starttls_to_a_submission_listener(
    courriel_server: StartServer,
    target: MemoryTarget,
    make_connector: MakeConnector,
    client_tls: ssl.SSLContext,
) -> None:
    target.local_domains = frozenset({"example.test"})
    port = await courriel_server(listener="submission", authenticator=_Accounts())
    good = make_connector(
        tls_context_factory=lambda: client_tls, auth=("alice@example.test", "s3cret")
    )
    conn = await _open(good, port)
    message = Outgoing(
        sender="alice@example.test",
        recipients=("far@remote.test",),
        data=b"From: alice@example.test\r\n\r\nhi\r\n",
        smtputf8=False,
        eight_bit=False,
    )
    assert (await conn.send(message)).recipients["far@remote.test"].code == 250
    await conn.close()
    assert target.messages[0].session.authenticated == "alice@example.test"
    bad = make_connector(tls_context_factory=lambda: client_tls, auth=("alice@example.test", "no"))
    with pytest.raises(TransportError) as info:
        await _open(bad, port)
    assert info.value.temporary and info.value.reply is not None
    assert info.value.reply.code == 535
