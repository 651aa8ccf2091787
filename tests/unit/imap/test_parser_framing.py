"""IMAP framing: literals, LITERAL+/LITERAL-, size caps, resynchronisation, raw lines.

RFC 9051 §4.3 and §7.5 (literals and continuations), RFC 7888 (LITERAL+ / LITERAL-),
RFC 3516 (literal8).
"""

from __future__ import annotations

import pytest

from courriel.protocols.imap.parser import ImapParser
from courriel.protocols.imap.types import (
    Append,
    Authenticate,
    BadCommand,
    Command,
    Continue,
    Login,
    ParserEvent,
    RawLine,
    Simple,
)

NOOP_B = Command(tag="b", name="NOOP", args=Simple())


def drain(parser: ImapParser) -> list[ParserEvent]:
    out: list[ParserEvent] = []
    while (event := parser.next_event()) is not None:
        out.append(event)
    return out


def run(*chunks: bytes, **settings: object) -> list[ParserEvent]:
    parser = ImapParser(**settings)  # type: ignore[arg-type]
    out: list[ParserEvent] = []
    for chunk in chunks:
        parser.feed(chunk)
        out += drain(parser)
    return out


def test_pipelined_commands_in_one_feed() -> None:
    events = run(b"a NOOP\r\nb NOOP\r\nc LOGOUT\r\n")
    assert [e.tag for e in events] == ["a", "b", "c"]  # type: ignore[union-attr]


def test_incomplete_line_needs_more_data() -> None:
    parser = ImapParser()
    parser.feed(b"a NO")
    assert parser.next_event() is None
    parser.feed(b"OP\r")
    assert parser.next_event() is None
    parser.feed(b"\n")
    assert parser.next_event() == Command(tag="a", name="NOOP")
    assert parser.next_event() is None
    assert parser.buffered == 0


def test_bare_lf_and_empty_lines() -> None:
    assert run(b"\r\n\r\na NOOP\n\nb NOOP\r\n") == [Command(tag="a", name="NOOP"), NOOP_B]


APPEND = b"a APPEND INBOX (\\Seen) {12}\r\nhello\r\nworld\r\nb NOOP\r\n"
APPENDED = Command(
    tag="a",
    name="APPEND",
    args=Append(mailbox="INBOX", flags=("\\Seen",), message=b"hello\r\nworld"),
)


@pytest.mark.parametrize("cut", range(len(APPEND) + 1))
def test_literal_split_at_every_byte(cut: int) -> None:
    assert run(APPEND[:cut], APPEND[cut:]) == [Continue(), APPENDED, NOOP_B]


def test_literal_fed_byte_by_byte() -> None:
    chunks = [APPEND[i : i + 1] for i in range(len(APPEND))]
    assert run(*chunks) == [Continue(), APPENDED, NOOP_B]


def test_two_literals_and_continuations_in_order() -> None:
    parser = ImapParser()
    parser.feed(b"a LOGIN {5}\r\n")
    assert drain(parser) == [Continue()]
    parser.feed(b"alice {6}\r\n")
    assert drain(parser) == [Continue()]
    parser.feed(b"secret\r\n")
    assert drain(parser) == [
        Command(tag="a", name="LOGIN", args=Login(user="alice", password="secret"))
    ]


def test_zero_length_literal() -> None:
    assert run(b"a LOGIN {0}\r\n {0}\r\n\r\n") == [
        Continue(),
        Continue(),
        Command(tag="a", name="LOGIN", args=Login(user="", password="")),
    ]


def test_non_synchronising_literal_sends_no_continuation() -> None:
    assert run(b"a LOGIN {5+}\r\nalice {2+}\r\npw\r\nb NOOP\r\n") == [
        Command(tag="a", name="LOGIN", args=Login(user="alice", password="pw")),
        NOOP_B,
    ]


def test_literal8_append() -> None:
    events = run(b"a APPEND x ~{4+}\r\n\x00\xff\r\n\r\n")
    assert events == [
        Command(
            tag="a", name="APPEND", args=Append(mailbox="x", message=b"\x00\xff\r\n", binary=True)
        )
    ]


# -- size caps -----------------------------------------------------------------------


def test_synchronising_literal_over_the_cap_is_refused_at_once() -> None:
    # RFC 9051 §7.5: no continuation, so the client never sends the octets.
    events = run(b"a APPEND x {101}\r\nb NOOP\r\n", max_literal=100)
    assert events == [
        BadCommand(tag="a", text="Literal too big", code="TOOBIG", verb="APPEND"),
        NOOP_B,
    ]


def test_non_synchronising_literal_over_the_cap_is_read_and_discarded() -> None:
    # RFC 7888 §4: the octets come anyway; they are skipped, then the command is refused.
    parser = ImapParser(max_literal=100)
    parser.feed(b"a APPEND x {150+}\r\n" + b"N" * 100)
    assert drain(parser) == []
    parser.feed(b"a NOOP\r\n" * 6 + b"rest of line {3+}\r\nabc\r\nb NOOP\r\n")
    assert drain(parser) == [
        BadCommand(tag="a", text="Literal too big", code="TOOBIG", verb="APPEND"),
        NOOP_B,
    ]


def test_literal_minus_caps_non_synchronising_literals_at_4096() -> None:
    # RFC 7888 §5: LITERAL- servers refuse {n+} over 4096 octets with TOOBIG.
    ok = run(b"a LOGIN {4096+}\r\n" + b"u" * 4096 + b" p\r\n", literal_plus=False)
    assert ok == [Command(tag="a", name="LOGIN", args=Login(user="u" * 4096, password="p"))]
    refused = run(b"a LOGIN {4097+}\r\n" + b"u" * 4097 + b" p\r\nb NOOP\r\n", literal_plus=False)
    assert refused == [
        BadCommand(tag="a", text="Literal too big", code="TOOBIG", verb="LOGIN"),
        NOOP_B,
    ]
    # A synchronising literal is still fine over 4096.
    sync = run(b"a LOGIN {5000}\r\n" + b"u" * 5000 + b" p\r\n", literal_plus=False)
    assert sync[0] == Continue() and isinstance(sync[1], Command)


def test_total_literal_octets_of_one_command_are_capped() -> None:
    events = run(b"a LOGIN {60}\r\n" + b"u" * 60 + b" {60}\r\nb NOOP\r\n", max_literal=100)
    assert events == [
        Continue(),
        BadCommand(tag="a", text="Literal too big", code="TOOBIG", verb="LOGIN"),
        NOOP_B,
    ]


def test_too_long_line_is_refused_once_and_skipped_without_buffering() -> None:
    parser = ImapParser(max_line=1000)
    parser.feed(b"a1 SEARCH " + b"X" * 2000)
    assert drain(parser) == [
        BadCommand(tag="a1", text="Too long command line", code="TOOBIG", verb="SEARCH")
    ]
    for _ in range(100):
        parser.feed(b"Y" * 10_000)
        assert drain(parser) == []
        assert parser.buffered == 0
    parser.feed(b"Z\r\nb NOOP\r\n")
    assert drain(parser) == [NOOP_B]


def test_too_long_line_complete_in_one_chunk() -> None:
    events = run(b"a NOOP " + b"x" * 100 + b"\r\nb NOOP\r\n", max_line=50)
    assert events == [
        BadCommand(tag="a", text="Too long command line", code="TOOBIG", verb="NOOP"),
        NOOP_B,
    ]


def test_line_cap_counts_every_part_of_a_command() -> None:
    events = run(b"a LOGIN {1}\r\nu " + b"p" * 60 + b"\r\nb NOOP\r\n", max_line=50)
    assert events == [
        Continue(),
        BadCommand(tag="a", text="Too long command line", code="TOOBIG", verb="LOGIN"),
        NOOP_B,
    ]


def test_too_long_line_ending_with_non_sync_literal_skips_its_octets() -> None:
    data = b"a LOGIN " + b"x" * 100 + b" {5+}\r\nb BAD\r\nc NOOP\r\n"
    events = run(data, max_line=50)
    assert events == [
        BadCommand(tag="a", text="Too long command line", code="TOOBIG", verb="LOGIN"),
        Command(tag="c", name="NOOP"),
    ]
    # The same when the long line arrives in pieces (the marker is spotted in the tail).
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert run(*pieces, max_line=50) == events


# -- resynchronisation ---------------------------------------------------------------


def test_bad_command_then_next_parses() -> None:
    assert run(b"a FETCH 0 FLAGS\r\nb NOOP\r\n") == [
        BadCommand(tag="a", text="Invalid sequence set", verb="FETCH"),
        NOOP_B,
    ]


def test_unknown_verb_with_sync_literal_gets_no_continuation() -> None:
    assert run(b"a FROB {5}\r\nb NOOP\r\n") == [
        BadCommand(tag="a", text="Unknown command", verb="FROB"),
        NOOP_B,
    ]
    assert run(b"+ LOGIN {5}\r\nb NOOP\r\n") == [BadCommand(tag=None, text="Invalid tag"), NOOP_B]


def test_unknown_verb_with_non_sync_literals_skips_them_all() -> None:
    events = run(b"a FROB {8+}\r\nb NOOP\r\n {4+}\r\nc NO\r\nd NOOP\r\n")
    assert events == [
        BadCommand(tag="a", text="Unknown command", verb="FROB"),
        Command(tag="d", name="NOOP"),
    ]


def test_bad_arguments_after_an_accepted_literal() -> None:
    assert run(b"a LOGIN {5}\r\nalice junk junk\r\nb NOOP\r\n") == [
        Continue(),
        BadCommand(tag="a", text="Unexpected extra arguments", verb="LOGIN"),
        NOOP_B,
    ]


def test_literal_marker_in_the_middle_of_a_line_is_not_a_literal() -> None:
    assert run(b"a LOGIN {5} x\r\nb NOOP\r\n") == [
        BadCommand(tag="a", text="Invalid literal", verb="LOGIN"),
        NOOP_B,
    ]


def test_nul_outside_literal8_is_refused() -> None:
    assert run(b"a LOGIN a\x00 b\r\nb NOOP\r\n")[1] == NOOP_B
    assert run(b'a LOGIN "a\x00" b\r\n')[0] == BadCommand(
        tag="a", text="Invalid character in a quoted string", verb="LOGIN"
    )


# -- modes ---------------------------------------------------------------------------


def test_raw_line_for_authenticate_and_idle() -> None:
    parser = ImapParser()
    parser.feed(b"a AUTHENTICATE PLAIN\r\nAGFsaWNl\r\nb NOOP\r\n")
    assert parser.next_event() == Command(
        tag="a", name="AUTHENTICATE", args=Authenticate(mechanism="PLAIN")
    )
    parser.want_raw_line()
    assert parser.next_event() == RawLine(text="AGFsaWNl")
    assert parser.next_event() == NOOP_B
    parser.feed(b"c IDLE\r\n")
    assert parser.next_event() == Command(tag="c", name="IDLE")
    parser.want_raw_line()
    assert parser.next_event() is None
    parser.feed(b"DO")
    assert parser.next_event() is None
    parser.feed(b"NE\r\n")
    assert parser.next_event() == RawLine(text="DONE")


def test_raw_line_over_the_cap() -> None:
    parser = ImapParser(max_line=10)
    parser.want_raw_line()
    parser.feed(b"x" * 20)
    assert parser.next_event() == BadCommand(tag=None, text="Too long command line", code="TOOBIG")
    parser.feed(b"\r\nb NOOP\r\n")
    assert parser.next_event() == NOOP_B


def test_clear_drops_input_injected_before_starttls() -> None:
    # RFC 9051 §6.2.1 (and CVE-2011-0411-style injection): nothing read before the
    # TLS handshake may be taken as a command after it.
    parser = ImapParser()
    parser.feed(b"a STARTTLS\r\nb LOGIN {5}\r\nal")
    assert parser.next_event() == Command(tag="a", name="STARTTLS")
    parser.clear()
    assert parser.next_event() is None
    parser.feed(b"c NOOP\r\n")
    assert parser.next_event() == Command(tag="c", name="NOOP")


def test_utf8_mode_switches_mailbox_decoding() -> None:
    parser = ImapParser()
    parser.feed(b'a SELECT "Entw&APw-rfe"\r\n')
    assert parser.next_event().args.mailbox == "Entwürfe"  # type: ignore[union-attr]
    parser.utf8 = True
    parser.feed('b SELECT "Entwürfe&"\r\n'.encode())
    assert parser.next_event().args.mailbox == "Entwürfe&"  # type: ignore[union-attr]


def test_utf8_mode_allows_utf8_atoms_for_names_only() -> None:
    parser = ImapParser()
    parser.feed("a SELECT Entwürfe\r\n".encode())
    assert parser.next_event() == BadCommand(
        tag="a", text="Unexpected extra arguments", verb="SELECT"
    )
    parser.utf8 = True
    parser.feed("b SELECT Entwürfe\r\n".encode())
    assert parser.next_event().args.mailbox == "Entwürfe"  # type: ignore[union-attr]
    parser.feed(b"c SELECT \xff\r\n")
    assert parser.next_event() == BadCommand(
        tag="c", text="String is not valid UTF-8", verb="SELECT"
    )
