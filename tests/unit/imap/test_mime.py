"""ParsedMessage: sections, BINARY and the SEARCH helpers on real-world shaped messages.

The fixture messages live in ``mime_samples/``; the expected section octets were checked
against Dovecot 2.3's answers for the same messages.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from courriel.errors import InvalidInput
from courriel.protocols.imap.mime import ParsedMessage, decode_words
from courriel.protocols.imap.types import Section

SAMPLES_DIR = Path(__file__).parent / "mime_samples"


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def sample(name: str) -> bytes:
    """A fixture message, stored as octets in ``mime_samples/NAME.eml``."""
    return (SAMPLES_DIR / f"{name}.eml").read_bytes()


def sec(
    part: tuple[int, ...] = (), text: str | None = None, fields: tuple[str, ...] = ()
) -> Section:
    return Section(part=part, text=text, fields=fields)


PLAIN = sample("plain")
ALTERNATIVE = sample("alternative")
MIXED = sample("mixed")
NESTED = sample("nested")
ODD = sample("odd")


# -- sections (RFC 9051 §6.4.5); expected octets checked against Dovecot -------------


def test_whole_header_and_text() -> None:
    message = ParsedMessage.parse(PLAIN)
    split = PLAIN.index(b"\r\n\r\n") + 4
    assert message.section(sec()) == PLAIN
    assert message.section(sec(text="HEADER")) == PLAIN[:split]
    assert message.section(sec(text="TEXT")) == PLAIN[split:]
    assert message.section(sec((1,))) == PLAIN[split:]
    assert message.section(sec((1,), "MIME")) == PLAIN[:split]


def test_multipart_parts_exclude_the_line_break_before_a_delimiter() -> None:
    message = ParsedMessage.parse(ALTERNATIVE)
    assert message.section(sec((1,))) == b"Caf=C3=A9 du jour"
    assert message.section(sec((2,))) == "<p>Caf\u00e9</p>".encode()
    assert message.section(sec((2,), "MIME")) == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert message.section(sec((2, 1))) == "<p>Caf\u00e9</p>".encode()  # a leaf's part 1
    assert message.section(sec((2, 1, 1))) is None
    assert message.section(sec((3,))) is None
    assert message.section(sec((0,))) is None


def test_header_or_text_of_a_non_message_part_is_empty() -> None:
    message = ParsedMessage.parse(ALTERNATIVE)
    assert message.section(sec((1,), "HEADER")) == b""
    assert message.section(sec((1,), "TEXT")) == b""
    assert message.section(sec((1,), "HEADER.FIELDS", ("SUBJECT",))) == b""


def test_nested_message_rfc822_sections() -> None:
    message = ParsedMessage.parse(NESTED)
    inner_start = NESTED.index(b"From: Original")
    inner_split = NESTED.index(b"\r\n\r\n", inner_start) + 4
    inner_end = NESTED.index(b"\r\n--x--")  # the line break belongs to the delimiter
    assert message.section(sec((2,))) == NESTED[inner_start:inner_end]
    assert message.section(sec((2,), "MIME")) == b"Content-Type: message/rfc822\r\n\r\n"
    assert message.section(sec((2,), "HEADER")) == NESTED[inner_start:inner_split]
    assert message.section(sec((2,), "TEXT")) == NESTED[inner_split:inner_end]
    assert message.section(sec((2, 1))) == b"inner plain"
    assert message.section(sec((2, 2), "MIME")) == (
        b"Content-Type: text/html; charset=us-ascii\r\n\r\n"
    )
    assert message.section(sec((2,), "HEADER.FIELDS", ("SUBJECT", "TO"))) == (
        b"To: fwd@example.com\r\nSubject: hello\r\n\r\n"
    )
    assert message.section(sec((2, 3))) is None


def test_top_level_message_rfc822() -> None:
    message = ParsedMessage.parse(sample("rootrfc822"))
    assert (
        message.section(sec((1,)))
        == b"From: inner@example.com\r\nSubject: inner\r\n\r\ninner body\r\n"
    )
    assert message.section(sec((1,), "MIME")) == (
        b"From: outer@example.com\r\nContent-Type: message/rfc822\r\n\r\n"
    )
    assert (
        message.section(sec((1,), "HEADER")) == b"From: inner@example.com\r\nSubject: inner\r\n\r\n"
    )
    assert message.section(sec((1,), "TEXT")) == b"inner body\r\n"
    assert message.section(sec((1, 1))) == b"inner body\r\n"


def test_header_fields_keep_folding_and_order() -> None:
    message = ParsedMessage.parse(ODD)
    assert message.section(sec(text="HEADER.FIELDS", fields=("X-FOLDED", "SUBJECT"))) == (
        b"Subject: caf\xc3\xa9 8-bit\r\nX-Folded: first\r\n second\r\n\r\n"
    )
    assert message.section(sec(text="HEADER.FIELDS", fields=("NOPE",))) == b"\r\n"
    not_fields = message.section(
        sec(text="HEADER.FIELDS.NOT", fields=("FROM", "TO", "CONTENT-TYPE", "X-FOLDED"))
    )
    assert not_fields == (
        b"Subject: caf\xc3\xa9 8-bit\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    )


def test_part_without_header_and_message_without_body() -> None:
    message = ParsedMessage.parse(sample("emptyparthdr"))
    assert message.section(sec((1,), "MIME")) == b"\r\n"
    assert message.section(sec((1,))) == b"no header part"
    assert message.section(sec((2,))) == b"body2\r\n"
    headeronly = ParsedMessage.parse(sample("headeronly"))
    assert headeronly.section(sec(text="TEXT")) == b""
    assert headeronly.section(sec(text="HEADER")) == sample("headeronly")


def test_unterminated_multipart_runs_to_the_end() -> None:
    data = crlf("Content-Type: multipart/mixed; boundary=u\n\n--u\n\nlast part\n")
    message = ParsedMessage.parse(data)
    assert message.section(sec((1,))) == b"last part\r\n"


def test_nested_boundaries_bound_inner_parts() -> None:
    data = crlf(
        "Content-Type: multipart/mixed; boundary=a\n\n--a\n"
        "Content-Type: multipart/alternative; boundary=b\n\n--b\n\ninner\n--b--\n"
        "--a\n\nsecond\n--a--\n"
    )
    message = ParsedMessage.parse(data)
    assert message.section(sec((1, 1))) == b"inner"
    assert message.section(sec((2,))) == b"second"


# -- BINARY (RFC 3516) ------------------------------------------------------------------


def test_binary_decodes_base64_and_quoted_printable() -> None:
    message = ParsedMessage.parse(MIXED)
    assert message.binary((2,)) == b"%PDF-1.4 fake but binary \x00\xff" * 4
    assert message.binary((1,)) == b"Thanks for your order."
    alternative = ParsedMessage.parse(ALTERNATIVE)
    assert alternative.binary((1,)) == "Caf\u00e9 du jour".encode()
    assert alternative.binary((9,)) is None
    assert alternative.binary(()) == ALTERNATIVE


def test_binary_of_multipart_and_message_parts_is_stored_octets() -> None:
    message = ParsedMessage.parse(NESTED)
    assert message.binary((2,)) == message.section(sec((2,)))
    assert message.binary((2, 1)) == b"inner plain"


def test_binary_unknown_cte_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown-cte"):
        ParsedMessage.parse(ODD).binary((1,))


def test_binary_tolerates_broken_base64() -> None:
    data = crlf("MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\naGVsbG8*!gd29ybGQ\n")
    assert ParsedMessage.parse(data).binary((1,)) == b"hello world"


def test_content_fields_of_a_non_mime_message_are_ignored() -> None:
    # RFC 2045 §4: without MIME-Version (or Content-Type) the body is plain text.
    data = crlf("Content-Transfer-Encoding: base64\n\naGVsbG8=\n")
    assert ParsedMessage.parse(data).binary((1,)) == b"aGVsbG8=\r\n"


# -- SEARCH helpers --------------------------------------------------------------------


def test_header_values_are_unfolded_and_decoded() -> None:
    message = ParsedMessage.parse(ALTERNATIVE)
    assert message.header_values("subject") == ["Caf\u00e9 menu"]
    assert message.header_values("SUBJECT") == ["Caf\u00e9 menu"]
    assert message.header_values("x-missing") == []
    odd = ParsedMessage.parse(ODD)
    assert odd.header_values("X-Folded") == ["first second"]
    assert odd.header_values("subject") == ["caf\u00e9 8-bit"]
    assert odd.header_values("from")[0].startswith("J\u00f6rg <jorg@")


def test_decode_words() -> None:
    assert decode_words("=?utf-8?b?w6k=?= =?utf-8?q?t=C3=A9?=") == "\u00e9t\u00e9"
    assert decode_words("a =?x-unknown?q?b_c?= d") == "a b c d"
    assert decode_words("=?utf-8?q?bad") == "=?utf-8?q?bad"


def test_sent_date_uses_the_fields_own_zone() -> None:
    assert ParsedMessage.parse(PLAIN).sent_date() == datetime.date(1994, 2, 7)
    assert ParsedMessage.parse(ODD).sent_date() is None
    bad = crlf("Date: not a date at all\n\nx\n")
    assert ParsedMessage.parse(bad).sent_date() is None
    impossible = crlf("Date: 31 Feb 2024 10:00:00 +0000\n\nx\n")
    assert ParsedMessage.parse(impossible).sent_date() is None


def test_contains_text_decodes_bodies() -> None:
    alternative = ParsedMessage.parse(ALTERNATIVE)
    assert alternative.contains_text("CAF\u00c9 DU", include_headers=False)
    assert not alternative.contains_text("menu", include_headers=False)
    assert alternative.contains_text("caf\u00e9 menu", include_headers=True)
    assert alternative.contains_text("", include_headers=False)
    mixed = ParsedMessage.parse(MIXED)
    assert not mixed.contains_text("PDF-1.4", include_headers=False)  # not a text part
    assert mixed.contains_text("thanks", include_headers=False)
    nested = ParsedMessage.parse(NESTED)
    assert nested.contains_text("inner html", include_headers=False)
    assert nested.contains_text("orig@example.org", include_headers=True)
    assert not nested.contains_text("orig@example.org", include_headers=False)


def test_contains_text_charsets() -> None:
    latin = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nd=E9j=E0 vu\r\n"
    )
    assert ParsedMessage.parse(latin).contains_text("D\u00c9J\u00c0", include_headers=False)
    unknown = b"Content-Type: text/plain; charset=x-nope\r\n\r\nplain words\r\n"
    assert ParsedMessage.parse(unknown).contains_text("words", include_headers=False)


def test_text_in_an_unknown_transfer_encoding_is_not_searched() -> None:
    # Dovecot does not match a text part whose encoding it cannot undo.
    assert not ParsedMessage.parse(ODD).contains_text("body with", include_headers=False)
    assert ParsedMessage.parse(ODD).contains_text("x-uuencode", include_headers=True)
