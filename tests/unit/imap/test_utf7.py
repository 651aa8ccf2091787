"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.errors import SyntaxProblem
from courriel.protocols.imap.utf7 import decode_mutf7, encode_mutf7


def test_rfc3501_example_round_trips() -> None:
    assert decode_mutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert encode_mutf7("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("", ""),
        ("INBOX", "INBOX"),
        ("a&b", "a&-b"),
        ("&", "&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("😀", "&2D3eAA-"),
        ("tab\there", "tab&AAk-here"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
    ],
)
def test_known_encodings(name: str, wire: str) -> None:
    assert encode_mutf7(name) == wire
    assert decode_mutf7(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        "&",  # unterminated shift
        "a&U,BTFw",  # unterminated shift
        "&AGE-",  # printable ASCII "a" shifted
        "&ACY-",  # "&" shifted instead of "&-"
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent shifts: not canonical
        "&U,BTFx-",  # non-zero padding bits
        "&U-",  # too short for one UTF-16 unit
        "&2D0-",  # lone high surrogate
        "&Jjo!-",  # "!" is not modified base64
        "&Jjo/-",  # "/" is base64 but not modified base64
        "caf\u00e9",  # raw 8-bit
        "a\x01b",  # control character
        "a\x7fb",
    ],
)
def test_malformed_is_refused(wire: str) -> None:
    with pytest.raises(SyntaxProblem) as info:
        decode_mutf7(wire)
    assert "modified UTF-7" in info.value.public


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_round_trip_any_text(name: str) -> None:
    wire = encode_mutf7(name)
    assert wire.isascii()
    assert decode_mutf7(wire) == name


@given(st.text(alphabet="&-ABCabc+,/09 xé\x00", max_size=20))
def test_decode_accepts_only_canonical(wire: str) -> None:
    try:
        name = decode_mutf7(wire)
    except SyntaxProblem:
        return
    assert encode_mutf7(name) == wire
