"""SMTP behaviour pinned by transcripts (no sockets), named after the RFC section covered."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from courriel.errors import DeliveryRefused
from courriel.protocols.smtp.session import SmtpSession, State
from courriel.testing.smtp import MemoryTarget, run_transcript

Factory = Callable[..., Callable[[], SmtpSession]]

GREETING = "S: 220 mx.test ESMTP courriel"
EHLO_PLAIN = """
C: EHLO client.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10000
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250-CHUNKING
S: 250 STARTTLS
"""
EHLO_TLS_SUBMISSION = """
C: EHLO client.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 10000
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250-SMTPUTF8
S: 250-CHUNKING
S: 250 AUTH PLAIN LOGIN
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


PLAIN_OK = b64("\0alice@example.test\0correct horse")
PLAIN_BAD = b64("\0alice@example.test\0wrong")
LOGIN_AS_ALICE = f"""
C: AUTH PLAIN {PLAIN_OK}
S: 235 2.7.0 Authentication successful
"""


async def run(factory: Callable[[], SmtpSession], text: str) -> SmtpSession:
    return (await run_transcript(factory, GREETING + "\n" + text)).session


def submission(make_session: Factory, **kw: Any) -> Callable[[], SmtpSession]:
    return make_session(listener="submission", tls_active=True, **kw)


# RFC 5321 §4.1.1.1 / RFC 3207 §4.2: EHLO keywords before and after STARTTLS.


async def test_rfc5321_4_1_1_1_ehlo_keywords_on_mx(make_session: Factory) -> None:
    await run(make_session(), EHLO_PLAIN)


async def test_rfc5321_4_1_1_1_helo_has_no_keywords(make_session: Factory) -> None:
    await run(make_session(), "C: HELO client.test\nS: 250 mx.test")


async def test_rfc3207_4_2_starttls_then_auth_is_offered_on_submission(
    make_session: Factory,
) -> None:
    factory = make_session(listener="submission")
    text = EHLO_PLAIN + (
        "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nE: StartTls\n" + EHLO_TLS_SUBMISSION
    )
    session = await run(factory, text)
    assert session.tls


async def test_rfc3207_4_2_mx_never_offers_auth_even_over_tls(make_session: Factory) -> None:
    text = EHLO_PLAIN + "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nE: StartTls\n"
    text += EHLO_TLS_SUBMISSION.replace(
        "S: 250-CHUNKING\nS: 250 AUTH PLAIN LOGIN", "S: 250 CHUNKING"
    )
    text += "C: AUTH PLAIN\nS: 502 5.5.1 AUTH not available"
    await run(make_session(), text)


async def test_rfc3207_4_2_commands_pipelined_after_starttls_are_dropped(
    make_session: Factory,
) -> None:
    text = (
        EHLO_PLAIN
        + """
C: STARTTLS
C: MAIL FROM:<evil@attacker.test>
S: 220 2.0.0 Ready to start TLS
E: StartTls
C: MAIL FROM:<a@b.test>
S: 503 5.5.1 Bad sequence of commands
"""
    )
    await run(make_session(), text)


async def test_rfc3207_4_starttls_twice_is_refused(make_session: Factory) -> None:
    text = EHLO_PLAIN + "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nE: StartTls\n"
    text += "C: EHLO c.test\nS: 250-mx.test\nS: 250-*\nS: 250-*\nS: 250-*\nS: 250-*\nS: 250-*\n"
    text += "S: 250 CHUNKING\nC: STARTTLS\nS: 502 5.5.1 STARTTLS not available"
    await run(make_session(), text)


# RFC 2920 §3.1: a pipelined group is answered in order.


async def test_rfc2920_3_1_pipelined_group(make_session: Factory, target: MemoryTarget) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<sender@remote.test>
C: RCPT TO:<alice@example.test>
C: RCPT TO:<nobody@example.test>
C: RCPT TO:<bob@example.test>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 550 5.1.1 No such user
S: 250 2.1.5 Ok
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: hi
C:
C: ..leading dot
C: .
C: QUIT
S: 250 2.0.0 Ok: queued as Q1
S: 221 2.0.0 Bye
E: Close
"""
    )
    await run(make_session(), text)
    [message] = target.messages
    assert message.recipients == ("alice@example.test", "bob@example.test")
    assert message.data == b"Subject: hi\r\n\r\n.leading dot\r\n"
    assert message.trace_header == (
        b"Received: from client.test ([192.0.2.1]) by mx.test (courriel) with ESMTP\r\n"
        b"\tid ID1; Tue, 02 Jan 2024 03:04:05 +0000\r\n"
    )


async def test_rfc5321_4_4_received_header_single_recipient_submission(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + LOGIN_AS_ALICE
        + """
C: MAIL FROM:<alice@example.test>
C: RCPT TO:<friend@elsewhere.test>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 End data with <CR><LF>.<CR><LF>
C: From: Alice <alice@example.test>
C:
C: body
C: .
S: 250 2.0.0 Ok: queued as Q1
"""
    )
    await run(submission(make_session), text)
    [message] = target.messages
    assert message.session.authenticated == "alice@example.test"
    header = message.trace_header.decode()
    assert header.startswith("Received: from client.test ([192.0.2.1]) by mx.test (courriel)")
    assert "with ESMTPSA\r\n\tid ID1 for <friend@elsewhere.test>;" in header
    assert header.endswith("Tue, 02 Jan 2024 03:04:05 +0000\r\n")
    assert all(len(line) <= 78 for line in header.split("\r\n"))


# RFC 3030 §2: BDAT chunks.


async def test_rfc3030_2_bdat_chunks_then_bdat_0_last(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<alice@example.test>
C: BDAT 14
C: Subject: x\\r\\n\\r\\n\\
C: BDAT 9
C: .\\r\\nbody\\r\\n\\
C: BDAT 0 LAST
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.0.0 14 octets received
S: 250 2.0.0 9 octets received
S: 250 2.0.0 Ok: queued as Q1
"""
    )
    await run(make_session(), text)
    assert target.messages[0].data == b"Subject: x\r\n\r\n.\r\nbody\r\n"


async def test_rfc3030_2_bdat_last_in_one_chunk_and_split_packets(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<alice@example.test>
C: BDAT 20 LAST
C: Subject: y\\r\\n\\
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
C: \\r\\nxxxxxx\\
S: 250 2.0.0 Ok: queued as Q1
C: NOOP
S: 250 2.0.0 Ok
"""
    )
    await run(make_session(), text)
    assert target.messages[0].data == b"Subject: y\r\n\r\nxxxxxx"


async def test_rfc3030_2_bdat_out_of_sequence_still_consumes_octets(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        EHLO_PLAIN
        + """
C: BDAT 12 LAST
C: QUIT\\r\\nQUIT\\r\\n\\
S: 503 5.5.1 Bad sequence of commands
C: MAIL FROM:<s@remote.test>
C: BDAT 4
C: RSET\\
S: 250 2.1.0 Ok
S: 554 5.5.1 No valid recipients
C: RCPT TO:<alice@example.test>
C: BDAT 3
C: abc\\
C: DATA
S: 250 2.1.5 Ok
S: 250 2.0.0 3 octets received
S: 503 5.5.1 Bad sequence of commands
"""
    )
    await run(make_session(), text)
    assert target.messages == []


# Relay control and unknown users are the target's refusals, mapped to replies.


async def test_rfc5321_3_6_2_relay_denied_by_target(make_session: Factory) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<victim@elsewhere.test>
C: DATA
S: 250 2.1.0 Ok
S: 550 5.7.1 Relaying denied
S: 554 5.5.1 No valid recipients
"""
    )
    await run(make_session(), text)


async def test_rfc5321_4_2_2_unknown_user_and_refused_sender(
    make_session: Factory, target: MemoryTarget
) -> None:
    target.refuse_senders = {"spam@bad.test": DeliveryRefused(550, "5.7.1", "Sender blocked")}
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<spam@bad.test>
S: 550 5.7.1 Sender blocked
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<ghost@example.test>
S: 250 2.1.0 Ok
S: 550 5.1.1 No such user
"""
    )
    await run(make_session(), text)


async def test_rfc5321_4_2_5_refusal_at_commit_fails_data(
    make_session: Factory, target: MemoryTarget
) -> None:
    target.refuse_message = DeliveryRefused(554, "5.7.1", "Message refused")
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<alice@example.test>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 *
C: Subject: x
C:
C: .
S: 554 5.7.1 Message refused
"""
    )
    await run(make_session(), text)
    assert target.messages == [] and target.aborted == 1


# The 2023 SMTP-smuggling defence: only CRLF.CRLF ends DATA; bare CR/LF refuse the message.

SMUGGLING_PREFIX = (
    EHLO_PLAIN
    + """
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<alice@example.test>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 *
"""
)


@pytest.mark.parametrize(
    "payload",
    [
        r"Subject: a\r\n\r\nhi\n.\nMAIL FROM:<x@evil.test>\nRCPT TO:<bob@example.test>\nDATA\n",
        r"Subject: a\r\n\r\nhi\r.\rMAIL FROM:<x@evil.test>\rRCPT TO:<bob@example.test>\r",
        r"Subject: a\r\n\r\nhi\r\n.\nMAIL FROM:<x@evil.test>\r\nRCPT TO:<bob@example.test>\r\n",
        r"Subject: a\r\n\r\nbare LF\ninside a line\r\n",
    ],
    ids=["lf-dot-lf", "cr-dot-cr", "crlf-dot-lf", "bare-lf-in-line"],
)
async def test_rfc5321_2_3_8_smuggling_defence(
    make_session: Factory, target: MemoryTarget, payload: str
) -> None:
    text = (
        SMUGGLING_PREFIX
        + f"""
C: {payload}
C: .
S: 550 5.6.0 Message contains bare CR or LF
C: NOOP
S: 250 2.0.0 Ok
"""
    )
    await run(make_session(), text)
    assert target.messages == [] and target.aborted == 1


# RFC 5321 §4.5.3.1.4 and §4.5.3.1.6: line length limits.


async def test_rfc5321_4_5_3_1_4_overlong_command_line_resynchronises(
    make_session: Factory,
) -> None:
    long_noop = "NOOP " + "x" * 600
    long_mail = f"MAIL FROM:<s@remote.test> SIZE=100 AUTH=<{'x' * 700}@remote.test>"
    text = (
        EHLO_PLAIN
        + f"""
C: {long_noop}
C: NOOP
S: 500 5.5.2 Line too long
S: 250 2.0.0 Ok
C: {long_mail}
S: 250 2.1.0 Ok
C: {"y" * 20000}
C: RSET
S: 500 5.5.2 Line too long
S: 250 2.0.0 Ok
"""
    )
    await run(make_session(), text)


async def test_rfc5321_4_5_3_1_6_overlong_text_line_fails_after_end(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        SMUGGLING_PREFIX
        + f"""
C: Subject: x
C:
C: {"z" * 1200}
C: .
S: 500 5.5.2 Line too long
C: NOOP
S: 250 2.0.0 Ok
"""
    )
    await run(make_session(), text)
    assert target.messages == []


async def test_rfc5321_4_5_3_1_6_998_octet_line_is_fine(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        SMUGGLING_PREFIX
        + f"""
C: Subject: x
C:
C: {"z" * 998}
C: .
S: 250 2.0.0 Ok: queued as Q1
"""
    )
    await run(make_session(), text)
    assert len(target.messages) == 1


# RFC 6531: SMTPUTF8.


async def test_rfc6531_3_2_eight_bit_headers_need_smtputf8(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        SMUGGLING_PREFIX
        + """
C: Subject: café
C:
C: x
C: .
S: 550 5.6.7 Non-ASCII headers require SMTPUTF8
C: MAIL FROM:<s@remote.test> SMTPUTF8 BODY=8BITMIME
C: RCPT TO:<ünï@example.test>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 *
C: Subject: café
C:
C: x
C: .
S: 250 2.0.0 Ok: queued as Q1
"""
    )
    await run(make_session(), text)
    [message] = target.messages
    assert message.mail_from.smtputf8 and message.mail_from.body == "8BITMIME"
    assert b" with UTF8SMTP\r\n\tid ID1 for" in message.trace_header


async def test_rfc6531_3_5_utf8_address_without_smtputf8(make_session: Factory) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<jöran@remote.test>
S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<ünï@example.test>
S: 250 2.1.0 Ok
S: 553 5.6.7 Non-ASCII address requires SMTPUTF8
"""
    )
    await run(make_session(), text)


# RFC 1870: SIZE.


async def test_rfc1870_6_1_declared_size_over_limit(make_session: Factory) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test> SIZE=10001
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<s@remote.test> SIZE=abc
S: 501 5.5.4 Bad SIZE value
C: MAIL FROM:<s@remote.test> SIZE=10000
S: 250 2.1.0 Ok
"""
    )
    await run(make_session(), text)


async def test_rfc1870_6_3_body_growing_past_the_limit(
    make_session: Factory, target: MemoryTarget
) -> None:
    lines = "\n".join(["C: " + "b" * 900] * 12)
    text = (
        SMUGGLING_PREFIX
        + f"""
C: Subject: big
C:
{lines}
C: .
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: NOOP
S: 250 2.0.0 Ok
"""
    )
    await run(make_session(), text)
    assert target.messages == [] and target.aborted == 1


async def test_rfc3030_2_bdat_past_the_size_limit(
    make_session: Factory, target: MemoryTarget
) -> None:
    text = (
        EHLO_PLAIN
        + f"""
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<alice@example.test>
C: BDAT 10001
C: {"x" * 10001}\\
C: BDAT 5 LAST
C: hello\\
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 552 5.3.4 Message size exceeds fixed maximum message size
S: 503 5.5.1 Bad sequence of commands
"""
    )
    await run(make_session(), text)
    assert target.messages == [] and target.aborted == 1


# RFC 5321 §4.5.3.1.8 / §4.5.3.1.10: too many recipients.


async def test_rfc5321_4_5_3_1_10_too_many_recipients(make_session: Factory) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test>
C: RCPT TO:<alice@example.test>
C: RCPT TO:<bob@example.test>
C: RCPT TO:<postmaster>
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.1.5 Ok
S: 452 4.5.3 Too many recipients
"""
    )
    await run(make_session(max_recipients=2), text)


# RFC 4954: AUTH.


async def test_rfc4954_6_auth_before_tls_is_538(make_session: Factory) -> None:
    text = (
        EHLO_PLAIN
        + f"""
C: AUTH PLAIN {PLAIN_OK}
S: 538 5.7.11 Encryption required for authentication
C: MAIL FROM:<alice@example.test>
S: 530 5.7.0 Authentication required
"""
    )
    await run(make_session(listener="submission"), text)


async def test_rfc4954_4_auth_plain_with_initial_response(make_session: Factory) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + LOGIN_AS_ALICE
        + """
C: AUTH PLAIN
S: 503 5.5.1 Already authenticated
"""
    )
    session = await run(submission(make_session), text)
    assert session.principal is not None and session.principal.address == "alice@example.test"


async def test_rfc4954_4_auth_plain_without_initial_response(make_session: Factory) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + f"""
C: AUTH PLAIN
S: 334
C: {PLAIN_OK}
S: 235 2.7.0 Authentication successful
"""
    )
    await run(submission(make_session), text)


async def test_rfc4954_4_auth_login(make_session: Factory) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + f"""
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: {b64("alice@example.test")}
S: 334 UGFzc3dvcmQ6
C: {b64("correct horse")}
S: 235 2.7.0 Authentication successful
"""
    )
    await run(submission(make_session), text)


async def test_rfc4954_4_auth_login_initial_response_and_cancel(make_session: Factory) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + f"""
C: AUTH LOGIN {b64("alice@example.test")}
S: 334 UGFzc3dvcmQ6
C: *
S: 501 5.0.0 Authentication cancelled
C: AUTH CRAM-MD5
S: 504 5.5.4 Unrecognized authentication type
C: AUTH PLAIN not-base64!
S: 501 5.5.2 Invalid base64 data
C: NOOP
S: 250 2.0.0 Ok
"""
    )
    session = await run(submission(make_session), text)
    assert session.state is State.READY and session.principal is None


async def test_rfc4954_4_wrong_password_delay_grows(
    make_session: Factory, authenticator: Any
) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + f"""
C: AUTH PLAIN {PLAIN_BAD}
E: Delay(0.5)
S: 535 5.7.8 Authentication credentials invalid
C: AUTH PLAIN {PLAIN_BAD}
E: Delay(1)
S: 535 5.7.8 Authentication credentials invalid
C: AUTH PLAIN {PLAIN_BAD}
E: Delay(2)
S: 535 5.7.8 Authentication credentials invalid
"""
        + LOGIN_AS_ALICE
    )
    await run(submission(make_session), text)
    assert authenticator.calls == 4


async def test_rfc4954_4_throttle_forgets_after_its_window(
    make_session: Factory, clock: Any
) -> None:
    factory = submission(make_session)
    bad = (
        EHLO_TLS_SUBMISSION
        + f"""
C: AUTH PLAIN {PLAIN_BAD}
E: Delay({{}})
S: 535 5.7.8 Authentication credentials invalid
"""
    )
    await run(factory, bad.format(0.5))
    await run(factory, bad.format(1))
    clock.now += 901
    await run(factory, bad.format(0.5))


# RFC 6409 §4.3 / §8: submission sender checks.


async def test_rfc6409_envelope_sender_must_belong_to_the_account(
    make_session: Factory,
) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + LOGIN_AS_ALICE
        + """
C: MAIL FROM:<ceo@example.test>
S: 553 5.7.1 Sender address not allowed for this account
C: MAIL FROM:<>
S: 553 5.7.1 Sender address not allowed for this account
C: MAIL FROM:<Sales@Example.TEST>
S: 250 2.1.0 Ok
"""
    )
    await run(submission(make_session), text)


@pytest.mark.parametrize(
    "from_header",
    ["From: CEO <ceo@example.test>", "From: alice@example.test, ceo@example.test", "X-No: from"],
)
async def test_rfc6409_from_header_must_belong_to_the_account(
    make_session: Factory, target: MemoryTarget, from_header: str
) -> None:
    text = (
        EHLO_TLS_SUBMISSION
        + LOGIN_AS_ALICE
        + f"""
C: MAIL FROM:<alice@example.test>
C: RCPT TO:<x@elsewhere.test>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 *
C: {from_header}
C: Subject: hi
C:
C: .
S: 553 5.7.1 From: address not allowed for this account
"""
    )
    await run(submission(make_session), text)
    assert target.messages == []


# RFC 5321 §4.1.1.5-10: RSET, VRFY, HELP, NOOP, QUIT; §4.3.2 sequence and syntax errors.


async def test_rfc5321_4_1_1_simple_commands(make_session: Factory, target: MemoryTarget) -> None:
    text = (
        EHLO_PLAIN
        + """
C: MAIL FROM:<s@remote.test>
C: RSET
C: RCPT TO:<alice@example.test>
S: 250 2.1.0 Ok
S: 250 2.0.0 Ok
S: 503 5.5.1 Bad sequence of commands
C: VRFY alice
S: 252 2.5.0 Cannot VRFY user, but will attempt delivery
C: HELP
S: 214 2.0.0 *
C: NOOP whatever
S: 250 2.0.0 Ok
C: EXPN list
S: 502 5.5.1 EXPN not available
C: QUIT
S: 221 2.0.0 Bye
E: Close
"""
    )
    session = await run(make_session(), text)
    assert session.closed and target.aborted == 1


async def test_rfc5321_4_3_2_syntax_and_sequence_errors(make_session: Factory) -> None:
    text = (
        GREETING
        + """
C: MAIL FROM:<s@remote.test>
S: 503 5.5.1 Bad sequence of commands
C: FOO bar
S: 500 5.5.1 Command unrecognized
C: EHLO
S: 501 5.5.4 Syntax: EHLO hostname
C: HELO c.test
S: 250 mx.test
C: MAIL TO:<s@remote.test>
S: 501 5.5.4 Syntax: MAIL FROM:<address> [parameters]
C: MAIL FROM:<s@remote.test> FOO=BAR
S: 555 5.5.4 Unsupported parameter
C: MAIL FROM:<not an address>
S: 501 5.1.3 Bad address syntax
C: DATA x
S: 501 5.5.4 Syntax: DATA
C: MAIL FROM:<s@remote.test>
C: DATA
S: 250 2.1.0 Ok
S: 554 5.5.1 No valid recipients
"""
    )
    await run_transcript(make_session(), text)


async def test_error_limit_closes_with_421(make_session: Factory) -> None:
    text = (
        EHLO_PLAIN
        + """
C: FOO
C: BAR
C: BAZ
C: NOOP
S: 500 5.5.1 Command unrecognized
S: 500 5.5.1 Command unrecognized
S: 500 5.5.1 Command unrecognized
S: 421 4.7.0 Too many errors, closing connection
E: Close
"""
    )
    session = await run(make_session(max_errors=3), text)
    assert session.closed
