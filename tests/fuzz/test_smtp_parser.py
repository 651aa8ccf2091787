"""Fuzzing the SMTP parser and session: only SyntaxProblem may leave the parser,
and a session turns any input into replies without raising."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.errors import SyntaxProblem
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.parser import (
    BdatChunk,
    BdatEnd,
    DataChunk,
    DataEnd,
    Event,
    Mode,
    SmtpParser,
)
from courriel.protocols.smtp.replies import Close, Delay, Reply, StartTls
from courriel.protocols.smtp.session import SmtpSession, SmtpSettings
from courriel.testing.smtp import MemoryTarget

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Valid command lines, one seed set per session state.
SEEDS: dict[str, list[bytes]] = {
    "connected": [b"EHLO client.test", b"HELO client.test", b"NOOP", b"HELP", b"QUIT"],
    "ready": [
        b"MAIL FROM:<a@b.test>",
        b"MAIL FROM:<> SIZE=100 BODY=8BITMIME",
        b"MAIL FROM:<j\xc3\xb6@b.test> SMTPUTF8",
        b"STARTTLS",
        b"AUTH PLAIN AGFAYgBj",
        b"AUTH LOGIN",
        b"VRFY someone",
        b"RSET",
    ],
    "mail": [b"RCPT TO:<alice@example.test>", b"RCPT TO:<postmaster>", b"DATA", b"BDAT 5 LAST"],
    "data": [b"Subject: x\r\n\r\nbody\r\n.\r\n", b"..stuffed\r\n.\r\n", b"a\n.\n", b"\r\n.\r\n"],
}
ALL_SEEDS = [line for lines in SEEDS.values() for line in lines]


def drain(parser: SmtpParser, limit: int) -> list[Event]:
    """Pull events until the parser needs data; only SyntaxProblem may be raised."""
    events: list[Event] = []
    for _ in range(limit):
        try:
            event = parser.next_event()
        except SyntaxProblem:
            continue
        if event is None:
            return events
        events.append(event)
    raise AssertionError("the parser made no progress")


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid command (or several) with random byte insertions, deletions and swaps."""
    lines = draw(st.lists(st.sampled_from(ALL_SEEDS), min_size=1, max_size=6))
    data = bytearray(b"\r\n".join(lines) + b"\r\n")
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([0, 10, 13, 46, 60, 62, 64, 255, 32, 58, 61]))
        if op == "insert":
            data.insert(pos, byte)
        elif pos < len(data):
            if op == "delete":
                del data[pos]
            else:
                data[pos] = byte
    return bytes(data)


MODES = st.sampled_from(["command", "line", "data", "bdat"])


def set_mode(parser: SmtpParser, mode: str, size: int) -> None:
    if mode == "line":
        parser.expect_line()
    elif mode == "data":
        parser.expect_data()
    elif mode == "bdat":
        parser.expect_bdat(size)


@FUZZ
@given(mode=MODES, data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 5000), max_size=6))
def test_arbitrary_bytes_in_every_mode(mode: str, data: bytes, cuts: list[int]) -> None:
    parser = SmtpParser()
    set_mode(parser, mode, len(data) // 2)
    for piece in split(data, cuts):
        parser.feed(piece)
        drain(parser, len(data) + 20)


@FUZZ
@given(mode=MODES, data=mutated(), cuts=st.lists(st.integers(0, 500), max_size=4))
def test_mutated_commands_in_every_mode(mode: str, data: bytes, cuts: list[int]) -> None:
    parser = SmtpParser()
    set_mode(parser, mode, 7)
    for piece in split(data, cuts):
        parser.feed(piece)
        drain(parser, len(data) + 20)


TEXT_LINE = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@FUZZ
@given(lines=st.lists(TEXT_LINE, max_size=20), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_data_dot_stuffing_round_trips(lines: list[bytes], cuts: list[int]) -> None:
    body = b"".join(line + b"\r\n" for line in lines)
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines)
    parser = SmtpParser()
    parser.expect_data()
    events: list[Event] = []
    for piece in split(stuffed + b".\r\nNOOP\r\n", cuts):
        parser.feed(piece)
        events += drain(parser, 10_000)
    chunks = [e.data for e in events if isinstance(e, DataChunk)]
    ends = [e for e in events if isinstance(e, DataEnd)]
    assert b"".join(chunks) == body
    assert ends == [DataEnd()]
    assert parser.mode is Mode.COMMAND and len(events) == len(chunks) + 2  # + DataEnd, NOOP


@FUZZ
@given(payload=st.binary(max_size=500), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_bdat_reads_exactly_n_octets(payload: bytes, cuts: list[int]) -> None:
    parser = SmtpParser()
    parser.expect_bdat(len(payload))
    events: list[Event] = []
    for piece in split(payload + b"QUIT\r\n", cuts):
        parser.feed(piece)
        events += drain(parser, 10_000)
    data = b"".join(e.data for e in events if isinstance(e, BdatChunk))
    assert data == payload
    assert sum(isinstance(e, BdatEnd) for e in events) == 1


class Accounts:
    async def authenticate(self, username: str, password: str) -> None:
        return None


async def drive(chunks: list[bytes], listener: str, tls: bool) -> None:
    session = SmtpSession(
        SmtpSettings(
            hostname="mx.test",
            listener=listener,  # type: ignore[arg-type]
            tls_available=True,
            tls_active=tls,
            max_message_size=2000,
            max_recipients=3,
        ),
        MemoryTarget(local_domains=frozenset({"example.test"})),
        authenticator=Accounts(),
        throttle=AuthThrottle(),
    )
    for chunk in chunks:
        actions = await session.receive(chunk)
        assert all(isinstance(a, Reply | StartTls | Close | Delay) for a in actions)
        for action in actions:
            if isinstance(action, Reply):
                assert 200 <= action.code < 600
                assert action.to_bytes().endswith(b"\r\n")
    await session.aclose()


SESSION_INPUT = st.lists(st.one_of(mutated(), st.binary(max_size=300)), max_size=8)


@FUZZ
@given(
    chunks=SESSION_INPUT,
    listener=st.sampled_from(["mx", "submission"]),
    tls=st.booleans(),
)
def test_a_session_never_raises(chunks: list[bytes], listener: str, tls: bool) -> None:
    prefix = [b"EHLO fuzz.test\r\n"]
    asyncio.run(drive(prefix + chunks, listener, tls))
