"""Fuzzing the bounce and complaint parsers: any bytes give a report or None, never raise."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.mail.arf import ComplaintReport, parse_arf
from courriel.mail.bouncetypes import BounceReport
from courriel.mail.dsnparse import parse_bounce

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "bounces").glob("*.eml"))
SEEDS = [path.read_bytes() for path in FIXTURES]
# Bytes that matter to the parsers: MIME structure, field syntax, folding, encodings.
TOKENS = [
    b"\n",
    b"\r\n",
    b"\n\n",
    b" ",
    b":",
    b";",
    b"<",
    b">",
    b"@",
    b"--",
    b"\xff",
    b"\xc3\xbc",
    b"Content-Type: message/delivery-status\n",
    b"Content-Type: message/feedback-report\n",
    b"Content-Type: multipart/report; boundary=x\n",
    b"Content-Transfer-Encoding: base64\n",
    b"Content-Type: text/plain; charset=bogus-charset\n",
    b"Final-Recipient: utf-8; \\x{110000}@x\n",
    b"Action: failed\n",
    b"Status: 5.1.1\n",
    b"Arrival-Date: Thu, 99 Foo 20240 99:99:99 +9999\n",
    b"Source-Port: 99999999999999999999\n",
    b"<a@b.test>:\n",
    b"Remote host said: 550 5.1.1\n",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A fixture with random slices replaced by tokens or random bytes."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        start = draw(st.integers(min_value=0, max_value=len(data)))
        end = draw(st.integers(min_value=start, max_value=min(len(data), start + 40)))
        piece = draw(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=20)))
        data[start:end] = piece
    return bytes(data)


def _check(data: bytes) -> None:
    bounce = parse_bounce(data)
    assert bounce is None or (isinstance(bounce, BounceReport) and bounce.recipients)
    complaint = parse_arf(data)
    assert complaint is None or isinstance(complaint, ComplaintReport)


@FUZZ
@given(mutated())
def test_mutated_fixtures(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join))
def test_token_soup(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _check(data)
