"""POP3 behaviour pinned by transcripts (no sockets), one test per RFC section or case.

``C:`` lines are sent, ``S:`` lines are what the server writes, ``E:`` lines are the
effects (TLS upgrade, delay, close) the session asks the server to perform.
"""

from __future__ import annotations

from courriel.protocols.pop3.session import Close, Pop3State, Send
from courriel.testing.pop3 import MemoryMaildrops, run_transcript

from .conftest import ALICE, MSG2, FakeClock, SessionFactory

LOGIN = """
S: +OK courriel POP3 ready
C: USER alice@example.test
S: +OK
C: PASS correct horse battery
S: +OK Logged in, 2 messages (146 octets).
"""
AUTH_PLAIN = "AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk="
REFUSED = "S: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."


async def test_rfc1939_s4_greeting_and_quit_in_authorization(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: QUIT
        S: +OK Logging out.
        E: Close
        """,
    )


async def test_rfc2449_s5_capa_before_and_after_stls(make_session: SessionFactory) -> None:
    session = make_session(tls_active=False)
    await run_transcript(
        session,
        """
        S: +OK courriel POP3 ready
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: STLS
        S: .
        C: STLS
        S: +OK Begin TLS negotiation now.
        E: StartTls
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: USER
        S: SASL PLAIN
        S: .
        C: STLS
        S: -ERR Command not permitted when TLS active
        C: USER alice@example.test
        S: +OK
        """,
    )
    assert session.tls_active


async def test_rfc2595_stls_unavailable_without_certificate(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(tls_active=False, tls_available=False),
        """
        S: +OK courriel POP3 ready
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: .
        C: STLS
        S: -ERR TLS not available
        """,
    )


async def test_rfc2595_input_pipelined_after_stls_is_discarded(
    make_session: SessionFactory,
) -> None:
    session = make_session(tls_active=False)
    session.greeting()
    actions = await session.receive(b"STLS\r\nUSER alice@example.test\r\nPASS x\r\n")
    assert len(actions) == 2
    session.tls_started()
    assert await session.receive(b"NOOP\r\n") == (await make_session().receive(b"NOOP\r\n"))


async def test_rfc3206_login_refused_before_tls(make_session: SessionFactory) -> None:
    session = make_session(tls_active=False)
    await run_transcript(
        session,
        f"""
        S: +OK courriel POP3 ready
        C: USER alice@example.test
        {REFUSED}
        C: PASS correct horse battery
        {REFUSED}
        C: AUTH PLAIN {AUTH_PLAIN}
        {REFUSED}
        C: AUTH PLAIN
        {REFUSED}
        C: STAT
        S: -ERR STAT not allowed in the AUTHORIZATION state
        """,
    )
    assert session.state is Pop3State.AUTHORIZATION


async def test_rfc1939_s7_user_pass(make_session: SessionFactory, store: MemoryMaildrops) -> None:
    session = make_session()
    await run_transcript(session, LOGIN)
    assert session.state is Pop3State.TRANSACTION
    assert store.is_locked(ALICE)


async def test_rfc1939_s7_pass_without_user(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: PASS correct horse battery
        S: -ERR No username given.
        """,
    )


async def test_rfc5034_auth_plain_with_initial_response(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        f"""
        S: +OK courriel POP3 ready
        C: auth plain {AUTH_PLAIN}
        S: +OK Logged in, 2 messages (146 octets).
        """,
    )


async def test_rfc5034_auth_plain_without_initial_response(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        f"""
        S: +OK courriel POP3 ready
        C: AUTH
        S: +OK
        S: PLAIN
        S: .
        C: AUTH PLAIN
        S: +
        C: {AUTH_PLAIN}
        S: +OK Logged in, 2 messages (146 octets).
        """,
    )


async def test_rfc5034_auth_cancelled_with_star(make_session: SessionFactory) -> None:
    session = make_session()
    await run_transcript(
        session,
        """
        S: +OK courriel POP3 ready
        C: AUTH PLAIN
        S: +
        C: *
        S: -ERR Authentication aborted by client.
        C: AUTH CRAM-MD5
        S: -ERR Unsupported authentication mechanism.
        C: AUTH PLAIN
        S: +
        C: not base64!
        S: -ERR Invalid base64 data
        C: AUTH PLAIN =
        S: -ERR Malformed PLAIN credentials
        """,
    )
    assert session.state is Pop3State.AUTHORIZATION


async def test_rfc4616_authzid_other_than_user_refused(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: AUTH PLAIN Ym9iQGV4YW1wbGUudGVzdABhbGljZUBleGFtcGxlLnRlc3QAY29ycmVjdCBob3JzZSBiYXR0ZXJ5
        E: Delay(0.5)
        S: -ERR [AUTH] Authentication failed.
        """,
    )


async def test_wrong_password_grows_the_delay_then_closes(
    make_session: SessionFactory, clock: FakeClock
) -> None:
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: USER alice@example.test
        S: +OK
        C: PASS wrong
        E: Delay(0.5)
        S: -ERR [AUTH] Authentication failed.
        C: AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==
        E: Delay(1)
        S: -ERR [AUTH] Authentication failed.
        C: USER nobody@example.test
        S: +OK
        C: PASS wrong
        E: Delay(2)
        S: -ERR [AUTH] Authentication failed.
        E: Close
        """,
    )
    # The throttle is per peer: a new connection from it continues the growth, and
    # the count is forgotten once the window has passed on the (fake) clock.
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: USER alice@example.test
        S: +OK
        C: PASS wrong
        E: Delay(4)
        S: -ERR [AUTH] Authentication failed.
        """,
    )
    clock.now += 901
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: USER alice@example.test
        S: +OK
        C: PASS wrong
        E: Delay(0.5)
        S: -ERR [AUTH] Authentication failed.
        """,
    )


async def test_rfc2449_s8_1_2_in_use_for_a_second_session(
    make_session: SessionFactory, store: MemoryMaildrops
) -> None:
    first = make_session()
    await run_transcript(first, LOGIN)
    second = make_session()
    await run_transcript(
        second,
        f"""
        S: +OK courriel POP3 ready
        C: AUTH PLAIN {AUTH_PLAIN}
        S: -ERR [IN-USE] Mailbox is locked by another POP3 session.
        """,
    )
    assert second.state is Pop3State.AUTHORIZATION
    await first.connection_lost()
    assert not store.is_locked(ALICE)
    await run_transcript(make_session(), LOGIN)


async def test_rfc1939_s5_stat_list_uidl(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: STAT
        S: +OK 2 146
        C: LIST
        S: +OK 2 messages (146 octets)
        S: 1 84
        S: 2 62
        S: .
        C: LIST 2
        S: +OK 2 62
        C: LIST 3
        S: -ERR no such message
        C: LIST 0
        S: -ERR no such message
        C: LIST x
        S: -ERR Invalid message number
        C: UIDL
        S: +OK
        S: 1 1.1
        S: 2 1.2
        S: .
        C: UIDL 1
        S: +OK 1 1.1
        C: NOOP
        S: +OK
        """,
    )


async def test_rfc1939_s3_retr_is_dot_stuffed(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: RETR 1
        S: +OK 84 octets
        S: From: carol@example.test
        S: Subject: one
        S:
        S: Hello
        S: ..hidden dot line
        S: ...two dots
        S: end
        S: .
        """,
    )


async def test_rfc1939_s7_top_zero_and_n(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: TOP 2 0
        S: +OK
        S: From: dave@example.test
        S: Subject: two
        S:
        S: .
        C: TOP 1 2
        S: +OK
        S: From: carol@example.test
        S: Subject: one
        S:
        S: Hello
        S: ..hidden dot line
        S: .
        C: TOP 2 99
        S: +OK
        S: From: dave@example.test
        S: Subject: two
        S:
        S: line1
        S: line2
        S: line3
        S: .
        C: TOP 1
        S: -ERR Wrong number of arguments for TOP
        """,
    )


async def test_rfc1939_s5_dele_then_list_stat_retr(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: DELE 1
        S: +OK message 1 deleted
        C: DELE 1
        S: -ERR message 1 already deleted
        C: STAT
        S: +OK 1 62
        C: LIST
        S: +OK 1 messages (62 octets)
        S: 2 62
        S: .
        C: LIST 1
        S: -ERR message 1 already deleted
        C: RETR 1
        S: -ERR message 1 already deleted
        C: TOP 1 0
        S: -ERR message 1 already deleted
        C: UIDL
        S: +OK
        S: 2 1.2
        S: .
        C: RSET
        S: +OK maildrop has 2 messages (146 octets)
        C: STAT
        S: +OK 2 146
        """,
    )


async def test_rfc1939_s6_quit_applies_deletions(
    make_session: SessionFactory, store: MemoryMaildrops
) -> None:
    session = make_session()
    await run_transcript(
        session,
        LOGIN
        + """
        C: DELE 1
        S: +OK message 1 deleted
        C: QUIT
        S: +OK Logging out, 1 messages left.
        E: Close
        """,
    )
    assert session.state is Pop3State.UPDATE
    assert store.stored(ALICE) == [MSG2]
    assert not store.is_locked(ALICE)
    # UIDLs are stable: the message left keeps its UIDL in the next session.
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: USER alice@example.test
        S: +OK
        C: PASS correct horse battery
        S: +OK Logged in, 1 messages (62 octets).
        C: UIDL
        S: +OK
        S: 1 1.2
        S: .
        """,
    )


async def test_rfc1939_s3_dropped_connection_deletes_nothing(
    make_session: SessionFactory, store: MemoryMaildrops
) -> None:
    session = make_session()
    await run_transcript(
        session, LOGIN + "C: DELE 1\nS: +OK message 1 deleted\nC: DELE 2\nS: +OK message 2 deleted"
    )
    await session.connection_lost()
    assert len(store.stored(ALICE)) == 2
    assert not store.is_locked(ALICE)


async def test_rfc1939_s3_idle_timeout_deletes_nothing(
    make_session: SessionFactory, store: MemoryMaildrops
) -> None:
    session = make_session()
    await run_transcript(session, LOGIN + "C: DELE 1\nS: +OK message 1 deleted")
    rendered = await session.timed_out()
    assert rendered == [Send(data=b"-ERR Disconnected for inactivity.\r\n"), Close()]
    assert len(store.stored(ALICE)) == 2
    assert not store.is_locked(ALICE)


async def test_rfc2449_s4_overlong_lines_and_resynchronisation(
    make_session: SessionFactory,
) -> None:
    long_arg = "1" * 41
    await run_transcript(
        make_session(),
        LOGIN
        + f"""
        C: NOOP {"x" * 300}
        S: -ERR Line too long (max 255 octets)
        C: LIST {long_arg}
        S: -ERR Argument too long (max 40 characters)
        C: NOOP
        S: +OK
        """,
    )


async def test_overlong_line_in_pieces_is_skipped_to_its_end(make_session: SessionFactory) -> None:
    session = make_session()
    session.greeting()
    assert await session.receive(b"NOOP " + b"x" * 200) == []
    first = await session.receive(b"y" * 200)
    assert first == [Send(data=b"-ERR Line too long (max 255 octets)\r\n")]
    assert await session.receive(b"z" * 1000) == []
    rest = await session.receive(b"zz\r\nCAPA\r\n")
    assert isinstance(rest[0], Send)
    assert rest[0].data.startswith(b"+OK Capability list follows\r\n")


async def test_partial_input_waits_for_the_line_end(make_session: SessionFactory) -> None:
    session = make_session()
    session.greeting()
    assert await session.receive(b"CA") == []
    assert await session.receive(b"PA\r") == []
    assert len(await session.receive(b"\n")) == 1


async def test_unknown_commands_and_wrong_states(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        """
        S: +OK courriel POP3 ready
        C: APOP alice@example.test c4c9334bac560ecc979e58001b3e22fb
        S: -ERR Unknown command
        C: XYZZY
        S: -ERR Unknown command
        C: RETR 1
        S: -ERR RETR not allowed in the AUTHORIZATION state
        C: NOOP
        S: -ERR NOOP not allowed in the AUTHORIZATION state
        C: STAT now
        S: -ERR STAT takes no arguments
        C:
        S: -ERR Unknown command
        C: USER alice@example.test
        S: +OK
        C: PASS correct horse battery
        S: +OK Logged in, 2 messages (146 octets).
        C: USER bob@example.test
        S: -ERR USER not allowed in the TRANSACTION state
        C: STLS
        S: -ERR STLS not allowed in the TRANSACTION state
        C: CAPA
        S: +OK Capability list follows
        S: TOP
        S: UIDL
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        S: USER
        S: SASL PLAIN
        S: .
        """,
    )


async def test_rfc2449_pipelined_commands_answer_in_order(make_session: SessionFactory) -> None:
    session = make_session()
    session.greeting()
    actions = await session.receive(
        b"USER alice@example.test\r\nPASS correct horse battery\r\nSTAT\r\nQUIT\r\nNOOP\r\n"
    )
    lines = [a.data for a in actions if hasattr(a, "data")]
    assert lines == [
        b"+OK\r\n",
        b"+OK Logged in, 2 messages (146 octets).\r\n",
        b"+OK 2 146\r\n",
        b"+OK Logging out, 2 messages left.\r\n",
    ]
