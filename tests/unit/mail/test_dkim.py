"""DKIM signing: canonicalization (RFC 6376 §3.4), and every signature verified by dkimpy."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.mail import dkim

DOMAIN = "example.test"
TIMESTAMP = 1_764_201_600


# One key pair per module: hypothesis tests cannot take function-scoped fixtures.
_RSA = dkim.generate_rsa()
_ED = dkim.generate_ed25519()
_KEYS: dict[str, dkim.PrivateKey] = {"rsa": _RSA, "ed": _ED}


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return _RSA


@pytest.fixture
def ed_key() -> ed25519.Ed25519PrivateKey:
    return _ED


def body_hash(body: bytes) -> bytes:
    hasher = dkim.BodyHasher()
    hasher.update(body)
    return hasher.digest()


def dns_for(selector: str, key: dkim.PrivateKey) -> Callable[..., bytes]:
    record = dkim.txt_record(dkim.algorithm_of(key), dkim.public_key_record(key)).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{selector}._domainkey.{DOMAIN}.".encode()
        return record

    return dnsfunc


def signed(message: bytes, key: dkim.PrivateKey, selector: str = "sel", **kwargs: object) -> bytes:
    header, body = dkim.split_message(message)
    field = dkim.sign(
        header_section=header,
        body_hash=body_hash(body),
        domain=DOMAIN,
        selector=selector,
        key=key,
        algorithm=dkim.algorithm_of(key),
        timestamp=TIMESTAMP,
        **kwargs,  # type: ignore[arg-type]
    )
    return field + message


def verifies(message: bytes, key: dkim.PrivateKey, selector: str = "sel") -> bool:
    return bool(dkimpy.verify(message, dnsfunc=dns_for(selector, key)))


ODD = (
    b"From:   Alice  Example <alice@example.test>  \r\n"
    b"To: bob@remote.test,\r\n"
    b"\t  carol@remote.test \t\r\n"
    b"Subject:\tHello \t  there\r\n"
    b"  folded twice\r\n"
    b"Date: Thu, 27 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Received: from somewhere\r\n"
    b"\r\n"
    b"Line  with   spaces \t \r\n"
    b"\r\n"
    b"  indented\r\n"
    b" \t \r\n"
    b"\r\n"
    b"\r\n"
)


# --- RFC 6376 §3.4.5 example -----------------------------------------------------------------

RFC_HEADERS = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n"
RFC_BODY = b" C \r\nD \t E\r\n\r\n\r\n"


def test_rfc6376_3_4_5_relaxed_headers() -> None:
    fields = dkim.parse_header_fields(RFC_HEADERS)
    assert [name for name, _raw in fields] == ["a", "b"]
    assert [dkim.canonicalize_header(raw) for _n, raw in fields] == [b"a:X\r\n", b"b:Y Z\r\n"]


def test_rfc6376_3_4_5_relaxed_body() -> None:
    assert dkim.canonicalize_body(RFC_BODY) == b" C\r\nD E\r\n"
    assert body_hash(RFC_BODY) == hashlib.sha256(b" C\r\nD E\r\n").digest()


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),  # §3.4.4: an empty body stays empty under relaxed
        (b"\r\n", b""),
        (b"\r\n \t\r\n\r\n", b""),
        (b"abc", b"abc\r\n"),  # a missing final CRLF is added
        (b"abc \t", b"abc\r\n"),
        (b"a\r\n\r\nb\r\n\r\n", b"a\r\n\r\nb\r\n"),  # inner empty lines stay
        (b"a\tb  c\r\n", b"a b c\r\n"),
        (b"bare\nlf \r\n", b"bare\nlf\r\n"),  # only CRLF ends a line
    ],
)
def test_relaxed_body_cases(body: bytes, canonical: bytes) -> None:
    assert dkim.canonicalize_body(body) == canonical
    assert body_hash(body) == hashlib.sha256(canonical).digest()


def test_header_canonicalization_details() -> None:
    assert dkim.canonicalize_header(b"SUBJECT \t:  a \r\n\t b  ") == b"subject:a b\r\n"
    assert dkim.canonicalize_header(b"X-Empty:") == b"x-empty:\r\n"
    with pytest.raises(InvalidInput):
        dkim.canonicalize_header(b"no colon here")


# --- streaming ---------------------------------------------------------------------------------

BODY_BYTES = st.lists(
    st.sampled_from([b"a", b"Z", b" ", b"\t", b"\r\n", b"\r", b"\n", b"\xc3\xa9", b""]),
    max_size=60,
).map(b"".join)
# RFC 5321 §2.3.8: no bare CR or LF in SMTP data (dkimpy would read a bare LF as a line end).
SMTP_BODY = st.lists(
    st.sampled_from([b"a", b"Z", b" ", b"\t", b"\r\n", b"\xc3\xa9"]), max_size=60
).map(b"".join)


@given(body=BODY_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_any_chunking_gives_the_same_body_hash(body: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(body)) for c in cuts})
    hasher = dkim.BodyHasher()
    previous = 0
    for point in [*points, len(body)]:
        hasher.update(body[previous:point])
        previous = point
    assert hasher.digest() == hashlib.sha256(dkim.canonicalize_body(body)).digest()
    assert hasher.digest() == body_hash(body)  # digest() may be called twice


@given(body=BODY_BYTES)
def test_body_canonicalization_matches_dkimpy(body: bytes) -> None:
    # dkimpy is the oracle for CRLF-terminated bodies (all SMTP bodies are).
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    assert dkim.canonicalize_body(body) == Relaxed.canonicalize_body(body)


def test_update_after_digest_is_refused() -> None:
    hasher = dkim.BodyHasher()
    hasher.digest()
    with pytest.raises(InvalidInput):
        hasher.update(b"x")


# --- header section ----------------------------------------------------------------------------


def test_split_header_section() -> None:
    assert dkim.split_header_section(b"From: a\r\nTo: b\r\n") is None
    assert dkim.split_header_section(b"From: a\r\n\r\nbody") == b"From: a\r\n\r\n"
    assert dkim.split_header_section(b"\r\nbody") == b"\r\n"
    assert dkim.split_message(b"From: a\r\n") == (b"From: a\r\n", b"")
    assert dkim.split_message(b"From: a\r\n\r\nx\r\n") == (b"From: a\r\n\r\n", b"x\r\n")


def test_parse_header_fields_keeps_folding_and_skips_junk() -> None:
    fields = dkim.parse_header_fields(b" stray\r\nFrom: a\r\n b\r\nnot a field\r\nTo: c\r\n\r\n")
    assert fields == [("from", b"From: a\r\n b"), ("to", b"To: c")]


# --- signatures, verified by dkimpy ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_odd_whitespace_message_verifies(
    kind: str, rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    key: dkim.PrivateKey = rsa_key if kind == "rsa" else ed_key
    message = signed(ODD, key)
    assert verifies(message, key)
    field = message[: message.index(b"From:")]
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))
    assert f"a={dkim.algorithm_of(key)};".encode() in field
    assert b"c=relaxed/relaxed;" in field and f"t={TIMESTAMP};".encode() in field


def test_h_tag_lists_present_headers_bottom_up_and_oversigns_from(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    message = b"From: a@example.test\r\nTo: x@r.test\r\nTo: y@r.test\r\nX-Mine: 1\r\n\r\nhi\r\n"
    field = signed(message, rsa_key)
    parsed = dkimpy.util.parse_tag_value(field.split(b":", 1)[1])
    names = [n.strip() for n in parsed[b"h"].replace(b"\r\n", b"").split(b":")]
    assert names == [b"from", b"from", b"to", b"to"]
    assert base64.b64decode(parsed[b"bh"]) == body_hash(b"hi\r\n")
    assert verifies(field, rsa_key)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_added_from_breaks_the_signature(
    kind: str, rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    key: dkim.PrivateKey = rsa_key if kind == "rsa" else ed_key
    message = signed(ODD, key)
    assert verifies(message, key)
    assert not verifies(b"From: mallory@evil.test\r\n" + message, key)
    cut = message.index(b"\r\n\r\n") + 2
    assert not verifies(message[:cut] + b"From: mallory@evil.test\r\n" + message[cut:], key)


def test_oversigning_is_what_catches_an_added_field(rsa_key: rsa.RSAPrivateKey) -> None:
    # dkimpy itself always counts one more From when verifying, so the control uses
    # Subject: signed once, a Subject added on top goes unnoticed; oversigned, it is caught.
    added = b"Subject: something else\r\n"
    assert verifies(added + signed(ODD, rsa_key), rsa_key)
    assert not verifies(added + signed(ODD, rsa_key, oversign=("from", "Subject")), rsa_key)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_changed_body_or_subject_breaks_the_signature(
    kind: str, rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    key: dkim.PrivateKey = rsa_key if kind == "rsa" else ed_key
    message = signed(ODD, key)
    assert not verifies(message.replace(b"indented", b"Indented"), key)
    assert not verifies(message.replace(b"Hello", b"Hallo"), key)
    # Relaxed canonicalization tolerates whitespace changes in transit.
    relaxed = message.replace(b"Line  with", b"Line\twith").replace(
        b"Hello \t  there", b"Hello there"
    )
    assert verifies(relaxed[:-4], key)  # and trailing empty lines may go


def test_empty_body_and_headers_only_message(ed_key: ed25519.Ed25519PrivateKey) -> None:
    assert verifies(signed(b"From: a@example.test\r\n\r\n", ed_key), ed_key)
    assert verifies(signed(b"From: a@example.test\r\nSubject: s\r\n", ed_key), ed_key)


def test_signature_is_deterministic_for_ed25519(ed_key: ed25519.Ed25519PrivateKey) -> None:
    assert signed(ODD, ed_key) == signed(ODD, ed_key)


def test_utf8_headers_sign_and_verify(rsa_key: rsa.RSAPrivateKey) -> None:
    message = "From: Zoé <zoé@example.test>\r\nSubject: café\r\n\r\nété\r\n".encode()
    assert verifies(signed(message, rsa_key), rsa_key)


HEADER_VALUE = st.text(alphabet="abc XYZ\t,.<>@", min_size=1, max_size=30).filter(
    lambda v: v.strip(" \t") != ""
)


@settings(max_examples=40, deadline=None)
@given(
    subject=HEADER_VALUE,
    fold=st.sampled_from(["", "\r\n ", "\r\n\t", "  "]),
    body=SMTP_BODY,
    cut=st.integers(min_value=0, max_value=80),
    ed=st.booleans(),
)
def test_generated_messages_verify(
    subject: str, fold: str, body: bytes, cut: int, ed: bool
) -> None:
    key = _KEYS["ed" if ed else "rsa"]
    header = f"From: a@example.test\r\nSubject: {subject}{fold}end\r\nTo:{fold}b@r.test\r\n\r\n"
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    message = header.encode() + body
    head, rest = dkim.split_message(message)
    hasher = dkim.BodyHasher()
    hasher.update(rest[:cut])
    hasher.update(rest[cut:])
    field = dkim.sign(
        header_section=head,
        body_hash=hasher.digest(),
        domain=DOMAIN,
        selector="sel",
        key=key,
        algorithm=dkim.algorithm_of(key),
        timestamp=TIMESTAMP,
    )
    assert verifies(field + message, key)


def test_algorithm_must_match_key(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidInput):
        dkim.sign(
            header_section=b"From: a\r\n\r\n",
            body_hash=body_hash(b""),
            domain=DOMAIN,
            selector="s",
            key=rsa_key,
            algorithm="ed25519-sha256",
            timestamp=0,
        )
    with pytest.raises(InvalidInput):
        dkim.sign(
            header_section=b"From: a\r\n\r\n",
            body_hash=b"short",
            domain=DOMAIN,
            selector="s",
            key=rsa_key,
            algorithm="rsa-sha256",
            timestamp=0,
        )


# --- keys -------------------------------------------------------------------------------------


def test_pem_round_trip_and_records(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    for key in (rsa_key, ed_key):
        again = dkim.key_from_pem(dkim.key_to_pem(key))
        assert dkim.public_key_record(again) == dkim.public_key_record(key)
    # RFC 8463 §4: the raw 32-octet Ed25519 key; RFC 6376: RSA as SubjectPublicKeyInfo.
    assert len(base64.b64decode(dkim.public_key_record(ed_key))) == 32
    assert base64.b64decode(dkim.public_key_record(rsa_key))[:2] == b"\x30\x82"
    assert dkim.txt_record("ed25519-sha256", "AAAA") == "v=DKIM1; k=ed25519; p=AAAA"
    assert dkim.txt_record("rsa-sha256", "BBBB") == "v=DKIM1; k=rsa; p=BBBB"
    assert rsa_key.key_size == 2048


def test_bad_pem_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        dkim.key_from_pem("not a key")
