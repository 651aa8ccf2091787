"""The client's sans-I/O core: reply parsing (RFC 5321 §4.2), EHLO reading, encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput, SyntaxProblem
from courriel.protocols.smtp.client_parser import (
    MAX_REPLY_LINE,
    ReplyParser,
    ServerReply,
    dot_stuff,
    encode_mail_from,
    encode_rcpt_to,
    parse_ehlo,
)


def _all(data: bytes) -> list[ServerReply]:
    parser = ReplyParser()
    parser.feed(data)
    out = []
    while (reply := parser.next_reply()) is not None:
        out.append(reply)
    return out


def test_single_line_with_enhanced_code() -> None:
    (reply,) = _all(b"250 2.1.5 Recipient ok\r\n")
    assert (reply.code, reply.enhanced, reply.text) == (250, "2.1.5", "Recipient ok")


def test_rfc5321_4_2_1_multiline_reply_joins_lines_and_strips_each_enhanced_code() -> None:
    (reply,) = _all(b"550-5.7.1 first line\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n")
    assert reply.code == 550 and reply.enhanced == "5.7.1"
    assert reply.lines == ("first line", "second", "third")


def test_rfc2034_enhanced_code_class_must_match_reply_class() -> None:
    (reply,) = _all(b"250 5.1.1 odd\r\n")
    assert reply.enhanced == "" and reply.text == "5.1.1 odd"


def test_bare_code_and_bare_lf_are_read() -> None:
    assert [(r.code, r.text) for r in _all(b"354\n220 ready\r\n")] == [(354, ""), (220, "ready")]


def test_need_more_data_until_the_last_line() -> None:
    parser = ReplyParser()
    parser.feed(b"250-mx.test\r\n250-PIPE")
    assert parser.next_reply() is None
    parser.feed(b"LINING\r\n250 SIZE 10\r")
    assert parser.next_reply() is None
    parser.feed(b"\n")
    reply = parser.next_reply()
    assert reply is not None and reply.lines == ("mx.test", "PIPELINING", "SIZE 10")
    assert parser.buffered == 0


def test_pipelined_replies_come_out_in_order() -> None:
    replies = _all(b"250 2.1.0 ok\r\n550 5.1.1 no\r\n250 2.1.5 ok\r\n354 go\r\n")
    assert [r.code for r in replies] == [250, 550, 250, 354]


@pytest.mark.parametrize(
    "wire",
    [
        b"hello\r\n",
        b"25 short\r\n",
        b"650 bad class\r\n",
        b"250x no separator\r\n",
        b"250-first\r\n251 other code\r\n",
        b"\xff\xfe\xfd\r\n",
    ],
)
def test_unreadable_replies_raise_syntax_problem(wire: bytes) -> None:
    with pytest.raises(SyntaxProblem):
        _all(wire)


def test_size_cap_on_a_line_without_end() -> None:
    parser = ReplyParser()
    parser.feed(b"250 " + b"x" * MAX_REPLY_LINE)
    with pytest.raises(SyntaxProblem):
        parser.next_reply()


def test_size_cap_on_the_number_of_lines() -> None:
    with pytest.raises(SyntaxProblem):
        _all(b"250-x\r\n" * 1000 + b"250 end\r\n")


def test_parse_ehlo_reads_the_extensions() -> None:
    (reply,) = _all(
        b"250-mx.test greets you\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
        b"250-SMTPUTF8\r\n250-CHUNKING\r\n250-STARTTLS\r\n250-auth plain login\r\n"
        b"250 ENHANCEDSTATUSCODES\r\n"
    )
    ext = parse_ehlo(reply)
    assert ext.pipelining and ext.eight_bit_mime and ext.smtputf8 and ext.chunking
    assert ext.starttls and ext.enhanced_status_codes and ext.size == 1000
    assert ext.auth == frozenset({"PLAIN", "LOGIN"})


def test_parse_ehlo_rfc1870_size_without_a_limit() -> None:
    (reply,) = _all(b"250-mx.test\r\n250 SIZE\r\n")
    ext = parse_ehlo(reply)
    assert ext.size == 0 and not ext.pipelining


def test_encode_mail_from_with_parameters() -> None:
    line = encode_mail_from("a@b.test", size=12, body="8BITMIME", smtputf8=True)
    assert line == b"MAIL FROM:<a@b.test> SIZE=12 BODY=8BITMIME SMTPUTF8\r\n"
    assert encode_mail_from("", size=None, body=None, smtputf8=False) == b"MAIL FROM:<>\r\n"
    assert encode_rcpt_to("ünï@b.test") == "RCPT TO:<ünï@b.test>\r\n".encode()


@pytest.mark.parametrize("address", ["a@b.test\r\nRSET", "a>@b.test", "a\x00@b"])
def test_addresses_that_would_break_the_command_line_are_refused(address: str) -> None:
    with pytest.raises(InvalidInput):
        encode_rcpt_to(address)


def test_rfc5321_4_5_2_dot_stuffing_and_end_marker() -> None:
    assert dot_stuff(b".a\r\nb\r\n.\r\n") == b"..a\r\nb\r\n..\r\n.\r\n"
    assert dot_stuff(b"no final crlf") == b"no final crlf\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"


_valid = st.builds(
    lambda code, lines: b"".join(
        f"{code}{'-' if i < len(lines) - 1 else ' '}{t}\r\n".encode() for i, t in enumerate(lines)
    ),
    st.integers(200, 599),
    st.lists(st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=30), min_size=1),
)


@settings(max_examples=300, deadline=None)
@given(
    seeds=st.lists(_valid, max_size=4),
    noise=st.binary(max_size=200),
    cuts=st.lists(st.integers(0, 400), max_size=5),
)
def test_fuzz_parser_raises_only_syntax_problem(
    seeds: list[bytes], noise: bytes, cuts: list[int]
) -> None:
    data = b"".join(seeds) + noise
    parser = ReplyParser()
    pieces = [
        data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
    ]
    try:
        for piece in pieces:
            parser.feed(piece)
            while (reply := parser.next_reply()) is not None:
                assert 200 <= reply.code <= 599
    except SyntaxProblem:
        return


@settings(max_examples=200, deadline=None)
@given(seeds=st.lists(_valid, min_size=1, max_size=5), split=st.integers(0, 10_000))
def test_fuzz_valid_replies_survive_any_split(seeds: list[bytes], split: int) -> None:
    data = b"".join(seeds)
    cut = split % (len(data) + 1)
    whole = _all(data)
    parser = ReplyParser()
    got: list[ServerReply] = []
    for piece in (data[:cut], data[cut:]):
        parser.feed(piece)
        while (reply := parser.next_reply()) is not None:
            got.append(reply)
    assert got == whole and len(got) == len(seeds)
