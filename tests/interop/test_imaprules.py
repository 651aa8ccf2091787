"""The differential test's normaliser: each rule hides what it names and nothing else.

No server is needed: transcripts are built by hand from response bytes.
"""

from __future__ import annotations

from .imapdiff import Literal, Transcript, parse, render
from .imaprules import normalise


def _lines(command: str, *responses: bytes) -> list[str]:
    return normalise(Transcript(steps=[(1, command, list(responses))]))[1:]


def test_parse_keeps_sections_literals_and_quoted_strings_apart() -> None:
    items, _ = parse(
        b'* 1 FETCH (BODY[HEADER.FIELDS (A B)]<0> {3}\r\nx\r\n FLAGS (\\Seen) X "q\\"")\r\n'
    )
    assert items[:3] == [b"*", b"1", b"FETCH"]
    assert items[3] == [
        b"BODY[HEADER.FIELDS (A B)]<0>",
        Literal(b"x\r\n"),
        b"FLAGS",
        [b"\\Seen"],
        b"X",
        Literal(b'q\\"'),
    ]
    assert render([Literal(b"a\r\n")]) == '"a\\r\\n"'


def test_status_text_and_capability_are_masked_but_codes_stay() -> None:
    lines = _lines(
        "a LOGIN u p",
        b"* CAPABILITY IMAP4rev1 IDLE\r\n",
        b"a OK [CAPABILITY IMAP4rev1] Logged in (0.001 secs)\r\n",
    )
    assert lines == ["S: a OK"]
    assert _lines("c COPY 1 X", b"c NO [TRYCREATE] Mailbox doesn't exist: X\r\n") == [
        "S: c NO [TRYCREATE]"
    ]


def test_uidvalidity_values_are_named_in_order_of_appearance() -> None:
    transcript = Transcript(
        steps=[
            (1, "a SELECT INBOX", [b"* OK [UIDVALIDITY 1795786002] ok\r\n", b"a OK\r\n"]),
            (2, "b APPEND X {1}", [b"b OK [APPENDUID 99 1] done\r\n"]),
            (3, "c COPY 1 X", [b"c OK [COPYUID 99 1 2] done\r\n"]),
            (4, "d STATUS INBOX (UIDVALIDITY)", [b"* STATUS INBOX (UIDVALIDITY 1795786002)\r\n"]),
        ]
    )
    lines = normalise(transcript)
    assert "S: * OK [UIDVALIDITY V1]" in lines
    assert "S: b OK [APPENDUID V2 1]" in lines
    assert "S: c OK [COPYUID V2 1 2]" in lines
    assert "S: * STATUS INBOX (UIDVALIDITY V1)" in lines


def test_fetch_items_and_flags_are_sorted_and_the_day_is_padded() -> None:
    ours = _lines(
        "f FETCH 1 ALL",
        b"* 1 FETCH (UID 4 FLAGS (\\Seen \\Answered)"
        b' INTERNALDATE " 1-Feb-2026 10:00:00 +0000")\r\n',
    )
    theirs = _lines(
        "f FETCH 1 ALL",
        b'* 1 FETCH (INTERNALDATE "01-Feb-2026 10:00:00 +0000"'
        b" FLAGS (\\Answered \\Seen) UID 4)\r\n",
    )
    assert ours == theirs


def test_expunges_compare_by_the_messages_they_remove() -> None:
    ascending = _lines("m UID MOVE 4:5 T", b"* 3 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"m OK\r\n")
    descending = _lines("m UID MOVE 4:5 T", b"* 4 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n", b"m OK\r\n")
    assert ascending == descending == ["S: * 4 EXPUNGE", "S: * 3 EXPUNGE", "S: m OK"]
    # A different set of messages stays different.
    other = _lines("m UID MOVE 4:5 T", b"* 4 EXPUNGE\r\n", b"* 4 EXPUNGE\r\n", b"m OK\r\n")
    assert other != descending


def test_list_order_and_unasked_attributes() -> None:
    ours = _lines(
        'l LIST "" "*" RETURN (SPECIAL-USE)',
        b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n',
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b"l OK\r\n",
    )
    theirs = _lines(
        'l LIST "" "*" RETURN (SPECIAL-USE)',
        b'* LIST () "/" INBOX\r\n',
        b'* LIST (\\Sent) "/" Sent\r\n',
        b"l OK\r\n",
    )
    assert ours == theirs == ['S: * LIST () "/" INBOX', 'S: * LIST (\\Sent) "/" Sent', "S: l OK"]
    # Plain LIST compares child information.
    plain = _lines('l LIST "" "*"', b'* LIST (\\HasNoChildren) "/" INBOX\r\n')
    assert plain == ['S: * LIST (\\HasNoChildren) "/" INBOX']


def test_optional_codes_only_where_named() -> None:
    assert _lines("s SELECT Nowhere", b"s NO [NONEXISTENT] no\r\n") == ["S: s NO"]
    assert _lines("r RENAME A B", b"r NO [NONEXISTENT] no\r\n") == ["S: r NO [NONEXISTENT]"]
    assert _lines("s SEARCH CHARSET X ALL", b"s NO [BADCHARSET (UTF-8)] no\r\n") == [
        "S: s NO [BADCHARSET]"
    ]


def test_modseq_values_are_masked_but_their_places_stay() -> None:
    lines = _lines(
        "u UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        b"* VANISHED (EARLIER) 1:3\r\n",
        b"* 1 FETCH (UID 4 MODSEQ (12) FLAGS (\\Seen))\r\n",
        b"u OK [HIGHESTMODSEQ 12] Done\r\n",
    )
    assert lines == [
        "S: * VANISHED (EARLIER) 1:3",
        "S: * 1 FETCH (FLAGS (\\Seen) MODSEQ (M) UID 4)",
        "S: u OK [HIGHESTMODSEQ M]",
    ]
    status = _lines(
        "s STATUS X (MESSAGES HIGHESTMODSEQ)", b"* STATUS X (MESSAGES 3 HIGHESTMODSEQ 7)\r\n"
    )
    assert status == ["S: * STATUS X (MESSAGES 3 HIGHESTMODSEQ M)"]
