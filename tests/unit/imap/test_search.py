"""search: every RFC 9051 §6.4.4 key evaluated on one message."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.search import Candidate, matches, needs_message
from courriel.protocols.imap.types import STAR, SearchKey, SeqSet

MESSAGE = (
    b"From: Jane Doe <jane@example.org>\r\n"
    b"To: bob@example.com\r\n"
    b"Cc: =?utf-8?q?Ren=C3=A9e?= <renee@example.net>\r\n"
    b"Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=\r\n"
    b"Date: Sun, 1 Mar 2026 23:30:00 -0800\r\n"
    b"X-Empty:\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Numbers are up. Voil=C3=A0.\r\n"
)

PLUS_ONE = timezone(timedelta(hours=1))
CANDIDATE = Candidate(
    seq=3,
    uid=42,
    flags=frozenset({"\\Seen", "$Important"}),
    recent=True,
    size=len(MESSAGE),
    # 00:30 on 2 March in +0100: still 1 March in UTC; the internal date's own zone counts.
    internal_date=datetime(2026, 3, 2, 0, 30, tzinfo=PLUS_ONE),
    modseq=17,
)


def check(key: SearchKey, candidate: Candidate = CANDIDATE) -> bool:
    return matches(key, candidate, ParsedMessage.parse(MESSAGE), largest_seq=10, largest_uid=50)


def k(op: str, **kwargs: object) -> SearchKey:
    return SearchKey(op=op, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (k("ALL"), True),
        (k("FLAG", text="\\Seen"), True),
        (k("FLAG", text="\\seen"), True),  # case-insensitive
        (k("FLAG", text="\\Seen", negate=True), False),
        (k("FLAG", text="\\Deleted"), False),
        (k("FLAG", text="\\Deleted", negate=True), True),
        (k("FLAG", text="$important"), True),  # KEYWORD
        (k("FLAG", text="$Other", negate=True), True),  # UNKEYWORD
        (k("RECENT"), True),
        (k("NEW"), False),  # recent but seen
        (k("OLD"), False),
        (k("HEADER", field="FROM", text="JANE"), True),
        (k("HEADER", field="TO", text="bob@"), True),
        (k("HEADER", field="CC", text="ren\u00e9e"), True),  # RFC 2047 decoded
        (k("HEADER", field="BCC", text=""), False),  # no such field
        (k("HEADER", field="X-EMPTY", text=""), True),  # empty string: field exists
        (k("HEADER", field="SUBJECT", text="R\u00c9SUM\u00c9"), True),
        (k("HEADER", field="SUBJECT", text="annual"), False),
        (k("BODY", text="voil\u00e0"), True),
        (k("BODY", text="quarterly"), False),  # only in a header
        (k("TEXT", text="quarterly"), True),
        (k("TEXT", text="numbers ARE"), True),
        (k("ON", day=date(2026, 3, 2)), True),
        (k("ON", day=date(2026, 3, 1)), False),
        (k("BEFORE", day=date(2026, 3, 2)), False),
        (k("BEFORE", day=date(2026, 3, 3)), True),
        (k("SINCE", day=date(2026, 3, 2)), True),
        (k("SINCE", day=date(2026, 3, 3)), False),
        (k("SENTON", day=date(2026, 3, 1)), True),  # the Date: field's own zone
        (k("SENTBEFORE", day=date(2026, 3, 1)), False),
        (k("SENTBEFORE", day=date(2026, 3, 2)), True),
        (k("SENTSINCE", day=date(2026, 3, 1)), True),
        (k("SENTSINCE", day=date(2026, 3, 2)), False),
        (k("LARGER", number=len(MESSAGE) - 1), True),
        (k("LARGER", number=len(MESSAGE)), False),
        (k("SMALLER", number=len(MESSAGE) + 1), True),
        (k("SMALLER", number=len(MESSAGE)), False),
        (k("SEQ", seqset=SeqSet(((1, 3),))), True),
        (k("SEQ", seqset=SeqSet(((4, STAR),))), False),
        (k("SEQ", seqset=SeqSet(((STAR, 2),))), True),  # 10:2 contains 3
        (k("UID", seqset=SeqSet(((42, 42),))), True),
        (k("UID", seqset=SeqSet(((STAR, STAR),))), False),  # * is 50
        (k("UID", seqset=SeqSet(((43, STAR),))), False),
        (k("MODSEQ", number=17), True),
        (k("MODSEQ", number=18), False),
        (k("NOT", keys=(k("RECENT"),)), False),
        (k("OR", keys=(k("NEW"), k("FLAG", text="\\Seen"))), True),
        (k("OR", keys=(k("NEW"), k("OLD"))), False),
        (k("AND", keys=(k("RECENT"), k("BODY", text="up"))), True),
        (k("AND", keys=()), True),
        (k("OLDER", number=5), False),  # not parsed; never matches
    ],
)
def test_key(key: SearchKey, expected: bool) -> None:
    assert check(key) is expected


def test_new_and_old() -> None:
    unseen_recent = Candidate(
        seq=1,
        uid=1,
        flags=frozenset(),
        recent=True,
        size=1,
        internal_date=datetime(2026, 1, 1, tzinfo=PLUS_ONE),
        modseq=1,
    )
    assert check(k("NEW"), unseen_recent)
    assert not check(k("OLD"), unseen_recent)
    old = Candidate(
        seq=1,
        uid=1,
        flags=frozenset(),
        recent=False,
        size=1,
        internal_date=datetime(2026, 1, 1, tzinfo=PLUS_ONE),
        modseq=1,
    )
    assert check(k("OLD"), old)
    assert not check(k("NEW"), old)


def test_a_message_without_a_date_field_counts_as_sent_in_1970() -> None:
    # As in Dovecot: SENTBEFORE matches it, SENTSINCE and SENTON (other days) do not.
    message = ParsedMessage.parse(b"Subject: no date\r\n\r\nbody\r\n")

    def sent(op: str, day: date) -> bool:
        return matches(k(op, day=day), CANDIDATE, message, largest_seq=1, largest_uid=1)

    assert sent("SENTBEFORE", date(2026, 1, 1))
    assert not sent("SENTSINCE", date(2026, 1, 1))
    assert not sent("SENTON", date(2026, 1, 1))
    assert sent("SENTON", date(1970, 1, 1))


def test_header_blanks_count_as_one_space() -> None:
    message = ParsedMessage.parse(
        b"Subject:  two  spaces\tand\r\n  =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\n\r\nx\r\n"
    )
    assert message.header_values("subject") == ["two spaces and ab"]

    def subject(text: str) -> bool:
        key = k("HEADER", field="SUBJECT", text=text)
        return matches(key, CANDIDATE, message, largest_seq=1, largest_uid=1)

    assert subject("two spaces and")
    assert not subject("two  spaces")


def test_star_in_an_empty_mailbox_matches_nothing() -> None:
    key = k("SEQ", seqset=SeqSet(((1, STAR),)))
    assert not matches(key, CANDIDATE, None, largest_seq=0, largest_uid=0)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (k("ALL"), False),
        (k("FLAG", text="\\Seen"), False),
        (k("UID", seqset=SeqSet(((1, 2),))), False),
        (k("HEADER", field="FROM", text="x"), True),
        (k("BODY", text="x"), True),
        (k("TEXT", text="x"), True),
        (k("SENTON", day=date(2026, 1, 1)), True),
        (k("ON", day=date(2026, 1, 1)), False),
        (k("NOT", keys=(k("OR", keys=(k("RECENT"), k("BODY", text="x"))),)), True),
        (k("AND", keys=(k("LARGER", number=1), k("MODSEQ", number=1))), False),
    ],
)
def test_needs_message(key: SearchKey, expected: bool) -> None:
    assert needs_message(key) is expected


def test_content_keys_without_content_match_nothing() -> None:
    # The session loads content whenever needs_message() says so; if it did not, the
    # key sees an empty message rather than failing.
    assert not matches(k("BODY", text="up"), CANDIDATE, None, largest_seq=10, largest_uid=50)


def test_address_keys_search_the_normalised_addresses() -> None:
    # As in Dovecot: FROM/TO/CC/BCC look in the parsed addresses written back in one
    # form, names with blanks or specials quoted, a missing domain filled in.
    message = ParsedMessage.parse(
        b'From: John  Smith <js@example.com>, "Doe, Jane" <jane@example.org>\r\n'
        b"To: undisclosed-recipients:;\r\n"
        b"Bcc: broken@\r\n"
        b"Cc: =?utf-8?q?Ren=C3=A9e?= <renee@example.net>\r\n\r\nx\r\n"
    )
    assert message.address_values("from") == [
        '"John Smith" <js@example.com>, "Doe, Jane" <jane@example.org>'
    ]
    assert message.address_values("to") == ["undisclosed-recipients:;"]
    assert message.address_values("bcc") == ["broken@MISSING_DOMAIN"]
    assert message.address_values("cc") == ["Ren\u00e9e <renee@example.net>"]

    def header(field: str, text: str) -> bool:
        key = k("HEADER", field=field, text=text)
        return matches(key, CANDIDATE, message, largest_seq=1, largest_uid=1)

    assert header("FROM", '"doe, jane"')
    assert header("FROM", "john smith")
    assert not header("FROM", "John  Smith")
    assert header("BCC", "missing_domain")
    assert header("CC", "ren\u00e9e <renee@")
