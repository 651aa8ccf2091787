"""The SMTP client against aiosmtpd (no PIPELINING, no CHUNKING: the DATA path) on 127.0.0.2."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from courriel.delivery.transport import Outgoing
from courriel.protocols.smtp.client import SmtpConnection, SmtpConnector

MakeConnector = Callable[..., SmtpConnector]
StartAiosmtpd = Callable[..., Awaitable[int]]

BODY = b"Subject: hi\r\n\r\n.leading dot\r\n..two dots\r\nend\r\n"


def _msg(*recipients: str, data: bytes = BODY, **kw: Any) -> Outgoing:
    return Outgoing(
        sender=kw.get("sender", "a@src.test"),
        recipients=recipients,
        data=data,
        smtputf8=kw.get("smtputf8", False),
        eight_bit=kw.get("eight_bit", False),
    )


async def _open(connector: SmtpConnector, port: int) -> SmtpConnection:
    return await connector.connect("mx2.test", "127.0.0.2", port)


async def test_rfc5321_4_5_2_data_path_with_dot_stuffing(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    port = await aiosmtpd_server(recorder)
    conn = await _open(make_connector(), port)
    assert not conn.extensions.pipelining and not conn.extensions.chunking and not conn.tls
    outcome = await conn.send(_msg("b@dest.test", "c@dest.test"))
    await conn.close()
    assert all(r.code == 250 and r.enhanced == "2.0.0" for r in outcome.recipients.values())
    ((sender, rcpts, content),) = recorder.messages
    assert (sender, rcpts) == ("a@src.test", ["b@dest.test", "c@dest.test"])
    assert content.replace(b"\r\n", b"\n") == BODY.replace(b"\r\n", b"\n")


async def test_per_recipient_550_others_250_on_the_data_path(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    recorder.rcpt_replies["bad@dest.test"] = "550 5.1.1 No such user"
    port = await aiosmtpd_server(recorder)
    conn = await _open(make_connector(), port)
    outcome = await conn.send(_msg("bad@dest.test", "ok@dest.test"))
    await conn.close()
    assert outcome.recipients["bad@dest.test"].code == 550
    assert outcome.recipients["bad@dest.test"].enhanced == "5.1.1"
    assert outcome.recipients["ok@dest.test"].code == 250
    assert recorder.messages[0][1] == ["ok@dest.test"]


async def test_451_after_data_is_temporary_and_connection_reusable(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    recorder.data_reply = "451 4.3.0 Try later"
    port = await aiosmtpd_server(recorder)
    conn = await _open(make_connector(), port)
    reply = (await conn.send(_msg("b@dest.test"))).recipients["b@dest.test"]
    assert (reply.code, reply.enhanced, reply.text, reply.temporary) == (
        451,
        "4.3.0",
        "Try later",
        True,
    )
    recorder.data_reply = "250 2.0.0 Queued"
    assert (await conn.send(_msg("b@dest.test"))).recipients["b@dest.test"].code == 250
    await conn.close()
    assert len(recorder.messages) == 2


async def test_rfc6531_non_ascii_recipient_to_a_receiver_without_smtputf8(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    port = await aiosmtpd_server(recorder)  # enable_SMTPUTF8 defaults to False
    conn = await _open(make_connector(), port)
    assert not conn.extensions.smtputf8
    outcome = await conn.send(_msg("ünï@dest.test", "b@dest.test"))
    await conn.close()
    for reply in outcome.recipients.values():
        assert (reply.code, reply.enhanced) == (553, "5.6.7")
        assert reply.text == "recipient's server does not support SMTPUTF8"
    assert recorder.mail_options == []  # nothing was sent


async def test_rfc6152_8bit_body_to_a_receiver_without_8bitmime(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    port = await aiosmtpd_server(recorder, decode_data=True)  # hides 8BITMIME
    conn = await _open(make_connector(), port)
    assert not conn.extensions.eight_bit_mime
    outcome = await conn.send(_msg("b@dest.test", data="Hé\r\n".encode(), eight_bit=True))
    await conn.close()
    reply = outcome.recipients["b@dest.test"]
    assert (reply.code, reply.enhanced, reply.temporary) == (554, "5.6.3", False)
    assert "8BITMIME" in reply.text
    assert recorder.mail_options == []


async def test_rfc6152_8bit_body_declared_when_offered(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    port = await aiosmtpd_server(recorder, data_size_limit=100_000)
    conn = await _open(make_connector(), port)
    data = "Hé\r\n".encode()
    assert (await conn.send(_msg("b@dest.test", data=data, eight_bit=True))).recipients[
        "b@dest.test"
    ].code == 250
    await conn.close()
    assert recorder.mail_options == [[f"SIZE={len(data)}", "BODY=8BITMIME"]]
    assert recorder.messages[0][2] == data


async def test_smtputf8_sender_when_offered(
    aiosmtpd_server: StartAiosmtpd, recorder: Any, make_connector: MakeConnector
) -> None:
    port = await aiosmtpd_server(recorder, enable_SMTPUTF8=True)
    conn = await _open(make_connector(), port)
    outcome = await conn.send(_msg("b@dest.test", sender="ünï@src.test", smtputf8=True))
    await conn.close()
    assert outcome.recipients["b@dest.test"].code == 250
    assert recorder.mail_options == [[f"SIZE={len(BODY)}", "SMTPUTF8"]]
    assert recorder.messages[0][0] == "ünï@src.test"
