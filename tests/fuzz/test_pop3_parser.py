"""Fuzzing the POP3 parser and session (conventions §9).

Only :class:`courriel.errors.SyntaxProblem` may leave the parser, and a whole session
fed arbitrary input (split at arbitrary points, in any state) never raises.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import SyntaxProblem
from courriel.protocols.pop3.parser import (
    LINE_LIMIT,
    LineReader,
    parse_auth_response,
    parse_command,
)
from courriel.protocols.pop3.session import Close, Pop3Session, Pop3Settings, Send
from courriel.protocols.sasl import AuthThrottle
from courriel.testing.pop3 import MemoryMaildrops

AUTHORIZATION = [
    b"CAPA",
    b"STLS",
    b"USER alice@example.test",
    b"PASS correct horse battery",
    b"AUTH",
    b"AUTH PLAIN",
    b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk=",
    b"*",
    b"QUIT",
]
TRANSACTION = [
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"UIDL",
    b"UIDL 2",
    b"RETR 1",
    b"TOP 1 0",
    b"TOP 2 3",
    b"DELE 1",
    b"RSET",
    b"NOOP",
    b"QUIT",
]
SEEDS = AUTHORIZATION + TRANSACTION


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid command with a random mutation: flip, insert, delete, case, truncate."""
    line = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "case", "cut", "long"]))
        pos = draw(st.integers(0, len(line)))
        if kind == "flip" and pos < len(line):
            line[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            line[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete" and pos < len(line):
            del line[pos]
        elif kind == "case":
            line = bytearray(line.swapcase())
        elif kind == "cut":
            del line[pos:]
        elif kind == "long":
            line += b"9" * draw(st.integers(30, 300))
    return bytes(line)


@given(st.one_of(st.binary(max_size=300), mutated()))
def test_parse_command_raises_only_syntax_problem(line: bytes) -> None:
    try:
        command = parse_command(line)
    except SyntaxProblem as exc:
        assert exc.public
    else:
        assert command.verb == line.split(b" ", 1)[0].decode().upper()


@given(st.one_of(st.binary(max_size=300), st.sampled_from([b"*", b"=", b""]), mutated()))
def test_parse_auth_response_raises_only_syntax_problem(line: bytes) -> None:
    try:
        response = parse_auth_response(line)
    except SyntaxProblem as exc:
        assert exc.public
    else:
        assert response.cancelled == (line.strip() == b"*")


@given(st.lists(st.binary(max_size=400), max_size=10))
def test_line_reader_bounds_lines_and_resynchronises(chunks: list[bytes]) -> None:
    reader = LineReader()
    for chunk in chunks:
        reader.feed(chunk)
        while True:
            try:
                line = reader.next_line()
            except SyntaxProblem:
                continue
            if line is None:
                break
            assert len(line) <= LINE_LIMIT - 2 and b"\n" not in line
        assert reader.pending < LINE_LIMIT + len(chunk)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


async def _run(data: list[bytes], tls_active: bool) -> tuple[Pop3Session, MemoryMaildrops]:
    store = MemoryMaildrops()
    store.add_account("alice@example.test", "correct horse battery")
    store.deliver("alice@example.test", b"Subject: a\r\n\r\n.dot\r\nbody\r\n")
    store.deliver("alice@example.test", b"Subject: b\r\n\r\nbody\r\n")
    session = Pop3Session(
        settings=Pop3Settings(tls_active=tls_active, tls_available=True),
        authenticator=store,
        maildrops=store,
        throttle=AuthThrottle(clock=lambda: 0.0),
        peer="127.0.0.1",
    )
    session.greeting()
    for piece in data:
        if session.closed:
            break
        for action in await session.receive(piece):
            assert not isinstance(action, Send) or action.data.endswith(b"\r\n")
            assert not isinstance(action, Send) or action.data[:1] in (b"+", b"-")
    if not session.closed:
        await session.connection_lost()
    return session, store


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(mutated(), st.sampled_from(SEEDS)), max_size=25),
    st.lists(st.integers(0, 10_000), max_size=8),
    st.booleans(),
)
def test_session_never_raises_on_mutated_commands(
    lines: list[bytes], cuts: list[int], tls_active: bool
) -> None:
    # A login first, most of the time, so TRANSACTION commands get exercised too.
    login = b"USER alice@example.test\r\nPASS correct horse battery\r\n"
    data = login + b"".join(line + b"\r\n" for line in lines)
    session, store = asyncio.run(_run(_split(data, cuts), tls_active))
    assert session.closed
    assert not store.is_locked("alice@example.test")  # released whatever happened
    if b"QUIT" not in data.upper():
        assert len(store.stored("alice@example.test")) == 2  # nothing deleted without QUIT


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 10_000), max_size=8), st.booleans())
def test_session_never_raises_on_arbitrary_bytes(
    data: bytes, cuts: list[int], tls_active: bool
) -> None:
    session, store = asyncio.run(_run(_split(data, cuts), tls_active))
    assert session.closed
    assert not store.is_locked("alice@example.test")


def test_close_effect_ends_processing() -> None:
    async def run() -> list[object]:
        store = MemoryMaildrops()
        session = Pop3Session(
            settings=Pop3Settings(),
            authenticator=store,
            maildrops=store,
            throttle=AuthThrottle(),
            peer="127.0.0.1",
        )
        return list(await session.receive(b"QUIT\r\nNOOP\r\n"))

    actions = asyncio.run(run())
    assert isinstance(actions[-1], Close)
    assert len(actions) == 2
