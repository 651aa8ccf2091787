"""encode: atoms, quoted strings, literals, flag lists, dates, mailbox names, number sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.protocols.imap.encode import (
    astring,
    flag_list,
    internal_date,
    literal,
    mailbox,
    nstring,
    number_set,
    quoted_or_literal,
    string,
)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("INBOX", b"INBOX"),
        ("foo]bar", b"foo]bar"),  # RFC 9051 §9: "]" is an ASTRING-CHAR
        ("", b'""'),
        ("two words", b'"two words"'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ('say "hi"', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"'),
        ("a(b", b'"a(b"'),
        ("100%", b'"100%"'),
        ("star*", b'"star*"'),
        ("{5}", b'"{5}"'),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("nul\x00", b"{4}\r\nnul\x00"),
        ("caf\u00e9", b"{5}\r\ncaf\xc3\xa9"),
    ],
)
def test_astring(value: str, wire: bytes) -> None:
    assert astring(value) == wire


def test_astring_utf8_quotes_8bit() -> None:
    assert astring("caf\u00e9 x", utf8=True) == '"caf\u00e9 x"'.encode()
    assert astring("caf\u00e9\n", utf8=True) == b"{6}\r\ncaf\xc3\xa9\n"


def test_string_and_nstring() -> None:
    assert string("atom") == b'"atom"'
    assert string(b"\xff") == b"{1}\r\n\xff"
    assert nstring(None) == b"NIL"
    assert nstring(b"") == b'""'
    assert nstring("x y") == b'"x y"'


def test_literal_and_literal8() -> None:
    assert literal(b"abc") == b"{3}\r\nabc"
    assert literal(b"", binary=True) == b"~{0}\r\n"


def test_quoted_or_literal_without_escapes() -> None:
    assert quoted_or_literal(b'a "b"', escape=False) == b'{5}\r\na "b"'
    assert quoted_or_literal(b"plain", escape=False) == b'"plain"'


def test_flag_list() -> None:
    assert flag_list(["\\Seen", "$Forwarded", "foo"]) == b"(\\Seen $Forwarded foo)"
    assert flag_list([]) == b"()"


def test_internal_date() -> None:
    zone = timezone(-timedelta(hours=7))
    assert internal_date(datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone)) == (
        b'"17-Jul-1996 02:44:25 -0700"'
    )
    # RFC 9051 §9 date-day-fixed: a space-padded day.
    assert (
        internal_date(datetime(2026, 3, 4, 8, 5, 0, tzinfo=UTC)) == b'" 4-Mar-2026 08:05:00 +0000"'
    )
    assert internal_date(datetime(2026, 1, 1)) == b'" 1-Jan-2026 00:00:00 +0000"'
    india = timezone(timedelta(hours=5, minutes=30))
    assert internal_date(datetime(2026, 12, 31, 23, 59, 59, tzinfo=india)).endswith(b'+0530"')


def test_mailbox() -> None:
    assert mailbox("inbox", utf8=False) == b"INBOX"
    assert mailbox("Sent", utf8=False) == b"Sent"
    assert mailbox("Entw\u00fcrfe", utf8=False) == b"Entw&APw-rfe"
    assert mailbox("Entw\u00fcrfe", utf8=True) == '"Entw\u00fcrfe"'.encode()
    assert mailbox("My Folder", utf8=False) == b'"My Folder"'
    assert mailbox("a&b", utf8=False) == b"a&-b"


def test_number_set() -> None:
    assert number_set([1, 2, 3, 5, 8, 9, 10]) == "1:3,5,8:10"
    assert number_set([7, 3, 3, 4]) == "3:4,7"
    assert number_set([42]) == "42"
    assert number_set([]) == ""


@given(st.sets(st.integers(min_value=1, max_value=500)))
def test_number_set_round_trips(numbers: set[int]) -> None:
    text = number_set(numbers)
    out: set[int] = set()
    for piece in filter(None, text.split(",")):
        low, _, high = piece.partition(":")
        out.update(range(int(low), int(high or low) + 1))
    assert out == numbers


@given(st.text())
def test_astring_is_always_well_formed(value: str) -> None:
    wire = astring(value)
    if wire.startswith(b"{"):
        size, _, rest = wire[1:].partition(b"}\r\n")
        assert int(size) == len(rest)
    elif wire.startswith(b'"'):
        assert wire.endswith(b'"')
        assert b"\r" not in wire and b"\n" not in wire
    else:
        assert wire == value.encode()
