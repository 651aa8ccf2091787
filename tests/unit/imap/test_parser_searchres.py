"""SEARCHRES grammar (RFC 5182 §3): ``$`` as a sequence set and the SAVE return option."""

from __future__ import annotations

import pytest

from courriel.protocols.imap.parser import ImapParser
from courriel.protocols.imap.types import (
    BadCommand,
    Command,
    CopyMove,
    Expunge,
    Fetch,
    FetchItem,
    ParserEvent,
    Search,
    SearchKey,
    SeqSet,
    Store,
)

SAVED = SeqSet((), saved=True)


def parse(line: bytes) -> ParserEvent:
    parser = ImapParser()
    parser.feed(line + b"\r\n")
    event = parser.next_event()
    assert parser.next_event() is None
    assert event is not None
    return event


def args(line: bytes) -> object:
    event = parse(line)
    assert isinstance(event, Command), event
    return event.args


def bad(line: bytes) -> BadCommand:
    event = parse(line)
    assert isinstance(event, BadCommand), event
    return event


def test_dollar_in_every_command_with_a_sequence_set() -> None:
    assert args(b"a FETCH $ (UID)") == Fetch(seqset=SAVED, items=(FetchItem(name="UID"),))
    assert args(b"a UID FETCH $ UID") == Fetch(seqset=SAVED, items=(FetchItem(name="UID"),))
    assert args(b"a STORE $ +FLAGS (\\Seen)") == Store(
        seqset=SAVED, mode="+", silent=False, flags=("\\Seen",)
    )
    assert args(b"a UID COPY $ Trash") == CopyMove(seqset=SAVED, mailbox="Trash")
    assert args(b"a MOVE $ Trash") == CopyMove(seqset=SAVED, mailbox="Trash")
    assert args(b"a UID EXPUNGE $") == Expunge(uids=SAVED)


def test_dollar_as_search_keys() -> None:
    search = args(b"a UID SEARCH UID $ NOT $ OR $ 1")
    assert isinstance(search, Search)
    assert search.key.keys == (
        SearchKey(op="UID", seqset=SAVED),
        SearchKey(op="NOT", keys=(SearchKey(op="SEQ", seqset=SAVED),)),
        SearchKey(
            op="OR",
            keys=(SearchKey(op="SEQ", seqset=SAVED), SearchKey(op="SEQ", seqset=SeqSet(((1, 1),)))),
        ),
    )


@pytest.mark.parametrize(
    ("line", "returns"),
    [
        (b"a SEARCH RETURN (SAVE) ALL", ("SAVE",)),
        (b"a SEARCH RETURN (save MIN) ALL", ("SAVE", "MIN")),
        (b"a UID SEARCH RETURN (MIN MAX SAVE SAVE) ALL", ("MIN", "MAX", "SAVE")),
        (b"a SEARCH RETURN (COUNT ALL SAVE) ALL", ("COUNT", "ALL", "SAVE")),
        (b"a SEARCH RETURN () ALL", ("ALL",)),
    ],
)
def test_save_return_option(line: bytes, returns: tuple[str, ...]) -> None:
    search = args(line)
    assert isinstance(search, Search)
    assert search.returns == returns


@pytest.mark.parametrize(
    "line",
    [
        b"a FETCH $,1 UID",
        b"a FETCH 1,$ UID",
        b"a FETCH $:3 UID",
        b"a FETCH $$ UID",
        b"a COPY 2:$ Trash",
        b"a SEARCH UID $,4",
    ],
)
def test_dollar_stands_alone(line: bytes) -> None:
    refused = bad(line)
    assert refused.tag == "a"
    assert not refused.resets_saved


def test_dollar_is_not_a_set_outside_the_selected_commands() -> None:
    # QRESYNC's known UIDs are read when SELECT replaces the saved result (RFC 5182 §2.1).
    assert bad(b"a SELECT INBOX (QRESYNC (1 2 $))").text == "Invalid sequence set"


def test_badcharset_of_a_save_search_resets_the_saved_result() -> None:
    """RFC 5182 §2.1: NO [BADCHARSET] for a SEARCH with SAVE empties `$`; others do not."""
    refused = bad(b"a SEARCH RETURN (MIN SAVE) CHARSET KOI8-R ALL")
    assert (refused.code, refused.resets_saved) == ("BADCHARSET", True)
    assert bad(b"a UID SEARCH RETURN (SAVE) CHARSET KOI8-R ALL").resets_saved
    assert not bad(b"a SEARCH CHARSET KOI8-R ALL").resets_saved
    assert not bad(b"a SEARCH RETURN (MIN) CHARSET KOI8-R ALL").resets_saved
    assert not bad(b"a SEARCH RETURN (SAVE) NOSUCHKEY").resets_saved  # BAD: unchanged
