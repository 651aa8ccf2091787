"""Fuzzing the IMAP command parser (conventions §9).

The parser never raises: junk becomes a BadCommand. It always makes progress (every
complete line ends in an event or is consumed), never holds more than its caps, and the
events of valid commands do not depend on how the stream is cut into chunks.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.protocols.imap.parser import ImapParser
from courriel.protocols.imap.types import BadCommand, Command, Continue, ParserEvent, RawLine

NOT_AUTHENTICATED = [
    b"a1 CAPABILITY",
    b"a2 NOOP",
    b"a3 STARTTLS",
    b"a4 LOGIN alice {6}\r\nsecret",
    b'a5 LOGIN "alice" "p\\"w"',
    b"a6 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==",
    b"a7 AUTHENTICATE PLAIN",
    b'a8 ID ("name" "mutt" "version" NIL)',
    b"a9 ENABLE UTF8=ACCEPT CONDSTORE",
    b"a10 LOGOUT",
]
AUTHENTICATED = [
    b"b1 SELECT INBOX (CONDSTORE)",
    b"b2 EXAMINE ~peter/mail/&U,BTFw-/&ZeVnLIqe-",
    b"b3 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211 (1:15,19 12:68,70)))",
    b'b4 CREATE "Sent Items" (USE (\\Sent))',
    b"b5 DELETE x",
    b"b6 RENAME a b",
    b"b7 SUBSCRIBE x",
    b"b8 UNSUBSCRIBE x",
    b'b9 LIST "" *',
    b'b10 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("a" "b") RETURN (CHILDREN STATUS (MESSAGES))',
    b'b11 LSUB "" %',
    b"b12 NAMESPACE",
    b"b13 STATUS INBOX (MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)",
    b'b14 APPEND Sent (\\Seen) "17-Jul-1996 02:44:25 -0700" {5+}\r\nhello',
    b"b15 APPEND Sent ~{3}\r\n\x00ab",
    b"b16 IDLE",
]
SELECTED = [
    b"c1 CHECK",
    b"c2 CLOSE",
    b"c3 UNSELECT",
    b"c4 EXPUNGE",
    b"c5 UID EXPUNGE 3:5",
    b"c6 SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 OR (FROM x SINCE 1-Feb-2026) NOT 2:4,*",
    b'c7 UID SEARCH HEADER X-A "b" UNKEYWORD $J LARGER 5 MODSEQ "/flags/\\\\draft" all 4',
    b"c8 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100> UID)",
    b"c9 UID FETCH 1:* FAST (CHANGEDSINCE 12 VANISHED)",
    b"c10 FETCH 2 (BINARY[1] BINARY.SIZE[1] BODY[1.2.MIME] RFC822.HEADER MODSEQ)",
    b"c11 STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen $Junk)",
    b"c12 UID STORE 4 -FLAGS \\Deleted",
    b"c13 COPY 1:2 Trash",
    b"c14 UID MOVE 7 Archive",
    b"c15 SEARCH CHARSET KOI8-R ALL",
    b"c16 SEARCH RETURN (SAVE MIN) OR $ UID $",  # RFC 5182
    b"c17 UID FETCH $ (FLAGS)",
    b"c18 UID SEARCH RETURN (SAVE) CHARSET KOI8-R ALL",
]
SEEDS = NOT_AUTHENTICATED + AUTHENTICATED + SELECTED


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid command with a random mutation: flip, insert, delete, case, cut, lengthen."""
    line = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "case", "cut", "long", "literal"]))
        pos = draw(st.integers(0, len(line)))
        if kind == "flip" and pos < len(line):
            line[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            line[pos:pos] = draw(st.sampled_from([b" ", b"(", b")", b'"', b"\\", b"{3}\r\n", b"*"]))
        elif kind == "delete" and pos < len(line):
            del line[pos]
        elif kind == "case":
            line = bytearray(line.swapcase())
        elif kind == "cut":
            del line[pos:]
        elif kind == "long":
            line[pos:pos] = b"9" * draw(st.integers(30, 300))
        elif kind == "literal":
            size = draw(st.integers(0, 40))
            plus = draw(st.sampled_from([b"", b"+"]))
            line[pos:pos] = b"{%d%s}\r\n" % (size, plus) + b"x" * size
    return bytes(line)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _run(chunks: list[bytes], parser: ImapParser, raw_after: bool = False) -> list[ParserEvent]:
    events: list[ParserEvent] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (event := parser.next_event()) is not None:
            events.append(event)
            if raw_after and isinstance(event, Command) and event.name in ("IDLE", "AUTHENTICATE"):
                parser.want_raw_line()
        # Bounded memory: never more than the caps plus what one feed brought.
        assert parser.buffered <= parser.max_line + parser.max_literal + len(chunk)
    return events


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2000),
    st.lists(st.integers(0, 10_000), max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_arbitrary_bytes_only_produce_events(
    data: bytes, cuts: list[int], literal_plus: bool, utf8: bool
) -> None:
    parser = ImapParser(max_line=300, max_literal=500, literal_plus=literal_plus)
    parser.utf8 = utf8
    for event in _run(_split(data, cuts), parser, raw_after=True):
        assert isinstance(event, Command | Continue | BadCommand | RawLine)
        if isinstance(event, BadCommand):
            assert event.text
    # Progress: whatever state the bytes left, filler and two line ends close it.
    events = _run([b"x" * 1100 + b"\r\n\r\nzz NOOP\r\n"], parser, raw_after=True)
    if re.search(rb"\{[0-9]{4,}", data) is None:
        assert events[-1] == Command(tag="zz", name="NOOP")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(mutated(), st.sampled_from(SEEDS)), max_size=20),
    st.lists(st.integers(0, 10_000), max_size=8),
)
def test_mutated_commands_then_a_valid_one_always_resynchronise(
    lines: list[bytes], cuts: list[int]
) -> None:
    # Junk may leave a literal being read, refused octets being skipped, or a line
    # half-read. Filler longer than any literal the junk can announce (at most three
    # digits, so < 1000 octets) plus two line ends closes all of that; then a sentinel
    # command must come through intact.
    parser = ImapParser(max_line=400, max_literal=200)
    data = b"".join(line + b"\r\n" for line in lines)
    events = _run(_split(data, cuts), parser)
    assert all(isinstance(e, Command | Continue | BadCommand) for e in events)
    events = _run([b"x" * 1100 + b"\r\n\r\nzz NOOP\r\n"], parser)
    if re.search(rb"\{[0-9]{4,}", data) is None:
        assert events[-1] == Command(tag="zz", name="NOOP")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=12), st.data())
def test_valid_commands_parse_the_same_in_any_chunking(
    lines: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    whole = _run([stream], ImapParser())
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30))
    assert _run(_split(stream, cuts), ImapParser()) == whole
    commands = [e for e in whole if isinstance(e, Command)]
    bads = [e for e in whole if isinstance(e, BadCommand)]
    # Every seed is valid except the KOI8-R search (BADCHARSET); each gives one event.
    assert len(commands) + len(bads) == len(lines)
    assert all(b.code == "BADCHARSET" for b in bads)


@given(mutated())
def test_each_mutated_line_gives_at_most_one_final_event(line: bytes) -> None:
    parser = ImapParser()
    events = _run([line + b"\r\n"], parser)
    finals = [e for e in events if isinstance(e, Command | BadCommand)]
    assert len(finals) <= 1 + line.count(b"\n")
