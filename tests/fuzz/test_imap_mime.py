"""Fuzzing ParsedMessage (conventions §9): no input makes any method raise.

The only exception allowed out is ``InvalidInput("unknown-cte")`` from ``binary()``.
Inputs are random octets and mutations of MIME-shaped messages (boundaries, nested
message/rfc822, odd headers), so the structured paths are reached too.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.protocols.imap.envelope import _parse_addresses, _simple_addresses
from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.search import Candidate, matches
from courriel.protocols.imap.types import SearchKey, Section

SEEDS = [
    b'From: a@b\r\nTo: G: x@y, "q\\" r" <z@w>;\r\nSubject: =?utf-8?b?w6k=?=\r\n\r\nbody\r\n',
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain;"
    b" charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n--b\r\n"
    b"Content-Type: message/rfc822\r\n\r\nFrom: (c) x\r\nContent-Type: multipart/digest;"
    b" boundary=c\r\n\r\n--c\r\n\r\nSubject: s\r\n\r\nt\r\n--c--\r\n--b--\r\n",
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; name*0=a; name*2*=b; charset*=x''y\r\n"
    b'Content-Disposition: attachment; filename="f\\""\r\nContent-Language: en,, (x)\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\nDate: Mon, 99 Foo 10000\r\n\r\n=4=\r\n",
    b"Content-Type: message/rfc822\r\n\r\n" * 60,
]

SECTIONS = [
    Section(),
    Section(text="HEADER"),
    Section(text="TEXT"),
    Section(part=(1,)),
    Section(part=(1,), text="MIME"),
    Section(part=(2,), text="HEADER"),
    Section(part=(2, 1), text="TEXT"),
    Section(part=(2, 1, 1)),
    Section(part=(1,), text="HEADER.FIELDS", fields=("SUBJECT", "TO")),
    Section(text="HEADER.FIELDS.NOT", fields=("FROM",)),
    Section(part=(0,)),
]

KEYS = [
    SearchKey(op="HEADER", field="FROM", text="a"),
    SearchKey(op="HEADER", field="SUBJECT", text=""),
    SearchKey(op="BODY", text="\u00e9"),
    SearchKey(op="TEXT", text="x"),
    SearchKey(op="SENTON", day=date(2026, 1, 1)),
    SearchKey(op="SENTSINCE", day=date(1, 1, 1)),
]

CANDIDATE = Candidate(
    seq=1,
    uid=1,
    flags=frozenset(),
    recent=False,
    size=0,
    internal_date=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    modseq=1,
)


def exercise(data: bytes) -> None:
    message = ParsedMessage.parse(data)
    assert message.size == len(data)
    assert message.envelope().startswith(b"(")
    assert message.body_structure(extended=True).startswith(b"(")
    assert message.body_structure(extended=False).endswith(b")")
    for section in SECTIONS:
        octets = message.section(section)
        if octets is not None and section.text in (None, "HEADER", "TEXT", "MIME"):
            assert octets in data
    for part in ((), (1,), (2,), (1, 1), (2, 1)):
        try:
            message.binary(part)
        except InvalidInput as exc:
            assert str(exc) == "unknown-cte"
    message.header_values("subject")
    message.sent_date()
    message.contains_text("a", include_headers=True)
    message.contains_text("\u00e9", include_headers=False)
    for key in KEYS:
        matches(key, CANDIDATE, message, largest_seq=1, largest_uid=1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_octets(data: bytes) -> None:
    exercise(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seed = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        pos = draw(st.integers(min_value=0, max_value=len(seed)))
        cut = draw(st.integers(min_value=0, max_value=8))
        insert = draw(
            st.one_of(
                st.binary(max_size=6),
                st.sampled_from(
                    [b"\r\n", b"\n", b"--b", b"--c--", b";", b'"', b"(", b"=?", b"\r\n "]
                ),
            )
        )
        seed = seed[:pos] + insert + seed[pos + cut :]
    return seed


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_mutated_mime(data: bytes) -> None:
    exercise(data)


def test_deep_nesting_is_bounded() -> None:
    nested = b"".join(
        b"Content-Type: multipart/mixed; boundary=x%dx\r\n\r\n--x%dx\r\n" % (i, i)
        for i in range(500)
    )
    exercise(nested + b"\r\nleaf\r\n")
    structure = ParsedMessage.parse(nested).body_structure(extended=False)
    assert len(re.findall(rb'"mixed"', structure)) <= 101


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab.@<>, \t\u00e9-_'=?!")), max_size=40))
def test_address_fast_path_agrees_with_the_full_parser(text: str) -> None:
    simple = _simple_addresses(text)
    if simple is not None:
        assert simple == _parse_addresses(text)
