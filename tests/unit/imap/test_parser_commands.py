"""IMAP command grammar: each command of issue 4 parses to the exact AST (RFC 9051 §9)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from courriel.protocols.imap.parser import ImapParser
from courriel.protocols.imap.types import (
    STAR,
    Append,
    Authenticate,
    BadCommand,
    Command,
    CopyMove,
    Enable,
    Expunge,
    Fetch,
    FetchItem,
    Id,
    List,
    Login,
    MailboxArg,
    ParserEvent,
    Rename,
    Search,
    SearchKey,
    Section,
    Select,
    SeqSet,
    Simple,
    Status,
    Store,
)


def parse(line: bytes, *, utf8: bool = False) -> ParserEvent:
    """Feed one command (literals included, no continuations asserted) and return its event."""
    parser = ImapParser()
    parser.utf8 = utf8
    parser.feed(line + b"\r\n")
    events = []
    while (event := parser.next_event()) is not None:
        if type(event).__name__ != "Continue":
            events.append(event)
    assert len(events) == 1, events
    return events[0]


def args(line: bytes, *, utf8: bool = False) -> object:
    event = parse(line, utf8=utf8)
    assert isinstance(event, Command), event
    return event.args


def bad(line: bytes) -> BadCommand:
    event = parse(line)
    assert isinstance(event, BadCommand), event
    return event


def seq(*ranges: tuple[int, int]) -> SeqSet:
    return SeqSet(tuple(ranges))


# -- simple commands and the head ----------------------------------------------------


@pytest.mark.parametrize(
    "verb",
    ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "IDLE", "CHECK", "CLOSE", "UNSELECT", "NAMESPACE"],
)
def test_commands_without_arguments(verb: str) -> None:
    event = parse(b"a1 " + verb.lower().encode())
    assert event == Command(tag="a1", name=verb, args=Simple())


def test_tag_may_hold_any_astring_char_but_plus() -> None:
    assert parse(b"A.b-c]9 NOOP") == Command(tag="A.b-c]9", name="NOOP")
    assert bad(b"a+b NOOP") == BadCommand(tag=None, text="Invalid tag")
    assert bad(b"* NOOP") == BadCommand(tag=None, text="Invalid tag")


def test_unknown_and_missing_verbs() -> None:
    assert bad(b"a1 FROB x") == BadCommand(tag="a1", text="Unknown command", verb="FROB")
    assert bad(b"a1") == BadCommand(tag="a1", text="Missing command")
    assert bad(b"a1 UID NOOP") == BadCommand(tag="a1", text="Unknown command", verb="UID NOOP")
    assert bad(b"a1 NOOP extra") == BadCommand(
        tag="a1", text="Unexpected extra arguments", verb="NOOP"
    )
    assert bad(b"a1 NOOP ").text == "Unexpected extra arguments"


# -- authentication ------------------------------------------------------------------


def test_login_with_atoms_quoted_and_literal() -> None:
    assert args(b'a LOGIN alice "p \\"w\\\\"') == Login(user="alice", password='p "w\\')
    assert args(b"a LOGIN {5}\r\nalice {3}\r\np\xc3\xa9") == Login(user="alice", password="pé")
    assert bad(b"a LOGIN alice").text == "Missing argument"
    assert bad(b'a LOGIN alice "p\\x"').text == "Invalid escape in a quoted string"
    assert bad(b'a LOGIN alice "unterminated').text == "Unterminated quoted string"


def test_authenticate_with_and_without_sasl_ir() -> None:
    assert args(b"a AUTHENTICATE plain") == Authenticate(mechanism="PLAIN")
    assert args(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==") == Authenticate(
        mechanism="PLAIN", initial="AGFsaWNlAHNlY3JldA=="
    )
    assert args(b"a AUTHENTICATE PLAIN =") == Authenticate(mechanism="PLAIN", initial="=")
    assert bad(b"a AUTHENTICATE PLAIN abc!").text == "Invalid SASL initial response"
    assert bad(b"a AUTHENTICATE PLAIN AGF").text == "Invalid SASL initial response"
    assert bad(b"a AUTHENTICATE PLAIN AGFs=x").text == "Unexpected extra arguments"


def test_enable() -> None:
    assert args(b"a ENABLE condstore utf8=accept") == Enable(
        capabilities=("CONDSTORE", "UTF8=ACCEPT")
    )
    assert bad(b"a ENABLE").text == "Missing argument"


def test_id() -> None:
    assert args(b"a ID NIL") == Id(params=None)
    assert args(b'a ID ("name" "mutt" "version" NIL)') == Id(
        params=(("name", "mutt"), ("version", None))
    )
    assert args(b"a ID ()") == Id(params=())
    assert bad(b'a ID ("name")').text == "Expected a space"
    assert bad(b"a ID (name x)").text == "Expected a string"
    assert bad(b"a ID").text == "Missing argument"


# -- mailboxes -----------------------------------------------------------------------


def test_select_and_examine() -> None:
    assert args(b"a SELECT inbox") == Select(mailbox="INBOX")
    assert args(b'a EXAMINE "Inbox"') == Select(mailbox="INBOX", readonly=True)
    assert args(b"a SELECT inbox/x") == Select(mailbox="inbox/x")
    assert args(b"a SELECT Drafts (CONDSTORE)") == Select(mailbox="Drafts", condstore=True)
    assert parse(b"a EXAMINE x").name == "EXAMINE"  # type: ignore[union-attr]


def test_select_qresync_forms() -> None:
    # RFC 7162 §3.2.5.2 examples.
    assert args(b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))") == (
        Select(
            mailbox="INBOX",
            qresync=(67890007, 20050715194045000, seq((41, 41), (43, 211), (214, 541)), None),
        )
    )
    full = args(
        b"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 "
        b"(1:15,19,21 12:68,70,72)) CONDSTORE)"
    )
    assert full == Select(
        mailbox="INBOX",
        condstore=True,
        qresync=(
            67890007,
            90060115194045000,
            seq((41, 211), (214, 541)),
            (seq((1, 15), (19, 19), (21, 21)), seq((12, 68), (70, 70), (72, 72))),
        ),
    )
    assert args(b"a SELECT INBOX (QRESYNC (1 2 (1 5)))") == Select(
        mailbox="INBOX", qresync=(1, 2, None, (seq((1, 1)), seq((5, 5))))
    )
    assert args(b"a SELECT INBOX (QRESYNC (1 2))") == Select(
        mailbox="INBOX", qresync=(1, 2, None, None)
    )
    assert bad(b"a SELECT INBOX (QRESYNC (0 2))").text == "Invalid number"
    assert bad(b"a SELECT INBOX (QRESYNC (1 2 1:*))").text == "Invalid sequence set"
    assert bad(b"a SELECT INBOX (FROB)").text == "Invalid SELECT parameter FROB"
    assert bad(b"a SELECT INBOX ()").text == "Invalid SELECT parameter"


def test_create_delete_subscribe_rename() -> None:
    assert args(b"a CREATE Archive") == MailboxArg(mailbox="Archive")
    assert args(b'a CREATE "Sent Items" (USE (\\sent \\Junk))') == MailboxArg(
        mailbox="Sent Items", special_use=("\\Sent", "\\Junk")
    )
    assert bad(b"a CREATE x (USE (Sent))").text == "Invalid special-use attribute"
    assert parse(b"a DELETE x") == Command(tag="a", name="DELETE", args=MailboxArg(mailbox="x"))
    assert args(b"a SUBSCRIBE x") == MailboxArg(mailbox="x")
    assert args(b"a UNSUBSCRIBE INBOX") == MailboxArg(mailbox="INBOX")
    assert args(b"a RENAME old new") == Rename(old="old", new="new")
    assert bad(b"a RENAME old").text == "Missing argument"


def test_mailbox_names_modified_utf7_and_utf8() -> None:
    assert args(b"a CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-") == MailboxArg(
        mailbox="~peter/mail/台北/日本語"
    )
    assert bad(b"a CREATE &AGE-").text == "Mailbox name is not valid modified UTF-7"
    assert bad('a CREATE "台北"'.encode()).text == "8-bit character in a quoted string"
    assert bad("a CREATE {6}\r\n台北".encode()).text == "Mailbox name is not valid modified UTF-7"
    # RFC 6855 §3: after ENABLE UTF8=ACCEPT names are UTF-8 and "&" is itself.
    assert args('a CREATE "台北&"'.encode(), utf8=True) == MailboxArg(mailbox="台北&")
    assert bad(b'a CREATE "a\\"\x00"').text == "Invalid character in a quoted string"


def test_list_basic_and_extended() -> None:
    assert args(b'a LIST "" *') == List(reference="", patterns=("*",))
    assert args(b"a LIST ~/Mail/ %]") == List(reference="~/Mail/", patterns=("%]",))
    assert args(
        b'a LIST (SUBSCRIBED RECURSIVEMATCH REMOTE SPECIAL-USE) "" ("a" "b") '
        b"RETURN (CHILDREN SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN))"
    ) == List(
        reference="",
        patterns=("a", "b"),
        selection=("SUBSCRIBED", "RECURSIVEMATCH", "REMOTE", "SPECIAL-USE"),
        returns=("CHILDREN", "SUBSCRIBED", "SPECIAL-USE", "STATUS"),
        status_items=("MESSAGES", "UNSEEN"),
    )
    assert args(b'a LIST () "" % RETURN ()') == List(reference="", patterns=("%",))
    assert bad(b'a LIST (RECURSIVEMATCH) "" *').text == (
        "RECURSIVEMATCH needs another selection option"
    )
    assert bad(b'a LIST (FROB) "" *').text == "Unknown LIST selection option FROB"
    assert bad(b'a LIST "" * RETURN (MYRIGHTS)').text == "Unknown LIST return option MYRIGHTS"
    assert bad(b'a LIST "" * FROB (x)').text == "Expected RETURN"


def test_lsub_and_status() -> None:
    assert parse(b'a LSUB "" %') == Command(
        tag="a", name="LSUB", args=List(reference="", patterns=("%",), lsub=True)
    )
    assert args(b"a STATUS inbox (messages UIDNEXT uidvalidity UNSEEN HIGHESTMODSEQ)") == Status(
        mailbox="INBOX", items=("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")
    )
    assert bad(b"a STATUS inbox (FROB)").text == "Unknown STATUS item FROB"
    assert bad(b"a STATUS inbox ()").text == "Unknown STATUS item"


def test_append_forms() -> None:
    assert args(b"a APPEND Sent {5}\r\nhello") == Append(mailbox="Sent", message=b"hello")
    assert args(b'a APPEND Sent (\\Seen $Label1) "17-Jul-1996 02:44:25 -0700" {2+}\r\nhi') == (
        Append(
            mailbox="Sent",
            flags=("\\Seen", "$Label1"),
            internal_date=datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7))),
            message=b"hi",
        )
    )
    assert args(b'a APPEND x " 1-Feb-2026 00:00:00 +0000" {0}\r\n') == Append(
        mailbox="x", internal_date=datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert args(b"a APPEND x () ~{3}\r\n\x00\x01\x02") == Append(
        mailbox="x", message=b"\x00\x01\x02", binary=True
    )
    assert bad(b"a APPEND x {3}\r\na\x00b").text == "NUL octet in a literal"
    assert bad(b'a APPEND x "hello"').text == "Invalid date-time"
    assert bad(b"a APPEND x hello").text == "APPEND needs the message as a literal"
    assert bad(b'a APPEND x "31-Feb-2026 00:00:00 +0000" {1}\r\nx').text == "Invalid date-time"
    assert bad(b"a APPEND x {1}\r\nx {1}\r\ny").text == "Unexpected extra arguments"


# -- messages ------------------------------------------------------------------------


def test_sequence_sets() -> None:
    assert args(b"a COPY 1:*,*:4,2,4:7 Trash") == CopyMove(
        seqset=seq((1, STAR), (STAR, 4), (2, 2), (4, 7)), mailbox="Trash"
    )
    for junk in (b"0", b"1:0", b"1,,2", b"1:2:3", b"01", b"4294967296", b":", b"1,"):
        assert bad(b"a COPY " + junk + b" x").text == "Invalid sequence set", junk
    # RFC 5182 §3: `$` stands alone (tests/unit/imap/test_parser_searchres.py).
    assert bad(b"a COPY 1,$ x").text == "Invalid sequence set"


def test_copy_move_uid_forms() -> None:
    assert parse(b"a UID MOVE 4:7 Archive") == Command(
        tag="a", name="MOVE", uid=True, args=CopyMove(seqset=seq((4, 7)), mailbox="Archive")
    )
    assert parse(b"a uid copy 1 INBOX") == Command(
        tag="a", name="COPY", uid=True, args=CopyMove(seqset=seq((1, 1)), mailbox="INBOX")
    )


def test_expunge_and_uid_expunge() -> None:
    assert parse(b"a EXPUNGE") == Command(tag="a", name="EXPUNGE", args=Expunge())
    assert parse(b"a UID EXPUNGE 3:5") == Command(
        tag="a", name="EXPUNGE", uid=True, args=Expunge(uids=seq((3, 5)))
    )
    assert bad(b"a UID EXPUNGE").text == "Missing argument"
    assert bad(b"a EXPUNGE 3").text == "Unexpected extra arguments"


def test_store_forms() -> None:
    assert args(b"a STORE 1:3 +FLAGS.SILENT (\\Seen)") == Store(
        seqset=seq((1, 3)), mode="+", silent=True, flags=("\\Seen",)
    )
    assert args(b"a STORE 1 -flags \\DELETED $Junk") == Store(
        seqset=seq((1, 1)), mode="-", silent=False, flags=("\\Deleted", "$Junk")
    )
    assert args(b"a STORE * FLAGS ()") == Store(
        seqset=seq((STAR, STAR)), mode="", silent=False, flags=()
    )
    assert args(b"a UID STORE 7 (UNCHANGEDSINCE 12345) FLAGS.SILENT (\\Answered)") == Store(
        seqset=seq((7, 7)), mode="", silent=True, flags=("\\Answered",), unchanged_since=12345
    )
    assert args(b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS x").unchanged_since == 0  # type: ignore[attr-defined]
    assert bad(b"a STORE 1 +LABELS (x)").text == "Invalid store attribute"
    assert bad(b"a STORE 1 (FROB 1) +FLAGS x").text == "Invalid store modifier"
    assert bad(b"a STORE 1 +FLAGS").text == "Missing argument"


# -- fetch ---------------------------------------------------------------------------


def item(name: str, **kw: object) -> FetchItem:
    return FetchItem(name=name, **kw)  # type: ignore[arg-type]


def test_fetch_macros_and_single_items() -> None:
    fast = (item("FLAGS"), item("INTERNALDATE"), item("RFC822.SIZE"))
    assert args(b"a FETCH 1 fast") == Fetch(seqset=seq((1, 1)), items=fast)
    assert args(b"a FETCH 1 ALL").items == (*fast, item("ENVELOPE"))  # type: ignore[attr-defined]
    full = (*fast, item("ENVELOPE"), item("BODY"))
    assert args(b"a FETCH 1 FULL").items == full  # type: ignore[attr-defined]
    assert args(b"a FETCH 2:* flags") == Fetch(seqset=seq((2, STAR)), items=(item("FLAGS"),))
    assert bad(b"a FETCH 1 (ALL)").text == "Unknown fetch attribute ALL"
    assert bad(b"a FETCH 1 FROB").text == "Unknown fetch attribute FROB"
    assert bad(b"a FETCH 0 FLAGS") == BadCommand(tag="a", text="Invalid sequence set", verb="FETCH")
    assert bad(b"a UID FETCH x FLAGS").verb == "UID FETCH"


def test_fetch_sections_and_partials() -> None:
    got = args(
        b'a FETCH 1 (BODY[] BODY.PEEK[HEADER.FIELDS (From "Subject")]<0.2048> '
        b"BODY[1.2.MIME] BODY[3.TEXT] BODY[4] BODY[HEADER.FIELDS.NOT (X-A)] BODY[TEXT]<10.5> "
        b"BINARY[1] BINARY.PEEK[]<0.10> BINARY.SIZE[2] RFC822 RFC822.HEADER RFC822.TEXT "
        b"BODYSTRUCTURE BODY UID MODSEQ ENVELOPE)"
    )
    assert got.items == (  # type: ignore[attr-defined]
        item("BODY[]", section=Section()),
        item(
            "BODY[]",
            section=Section(text="HEADER.FIELDS", fields=("FROM", "SUBJECT")),
            partial=(0, 2048),
            peek=True,
        ),
        item("BODY[]", section=Section(part=(1, 2), text="MIME")),
        item("BODY[]", section=Section(part=(3,), text="TEXT")),
        item("BODY[]", section=Section(part=(4,))),
        item("BODY[]", section=Section(text="HEADER.FIELDS.NOT", fields=("X-A",))),
        item("BODY[]", section=Section(text="TEXT"), partial=(10, 5)),
        item("BINARY[]", section=Section(part=(1,))),
        item("BINARY[]", section=Section(), partial=(0, 10), peek=True),
        item("BINARY.SIZE", section=Section(part=(2,))),
        item("RFC822"),
        item("RFC822.HEADER"),
        item("RFC822.TEXT"),
        item("BODYSTRUCTURE"),
        item("BODY"),
        item("UID"),
        item("MODSEQ"),
        item("ENVELOPE"),
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a FETCH 1 BODY[MIME]", "Invalid section"),
        (b"a FETCH 1 BODY[0]", "Invalid number"),
        (b"a FETCH 1 BODY[1.]", "Invalid section"),
        (b"a FETCH 1 BODY[HEADER.FIELDS]", "Expected a space"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "Expected a string"),
        (b"a FETCH 1 BODY[]<0.0>", "Invalid number"),
        (b"a FETCH 1 BODY[]<1>", "Invalid partial"),
        (b"a FETCH 1 BINARY[TEXT]", "Invalid section"),
        (b"a FETCH 1 BINARY.SIZE[1]<0.1>", "Unexpected extra arguments"),
        (b"a FETCH 1 (FLAGS", "Missing argument"),
        (b"a FETCH 1 (FLAGS))", "Unexpected extra arguments"),
        (b"a FETCH 1 BODY[", "Missing argument"),
    ],
)
def test_fetch_errors(line: bytes, text: str) -> None:
    assert bad(line).text == text


def test_fetch_modifiers() -> None:
    assert args(b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)") == Fetch(
        seqset=seq((1, STAR)), items=(item("FLAGS"),), changed_since=12345
    )
    assert parse(b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)") == Command(
        tag="a",
        name="FETCH",
        uid=True,
        args=Fetch(seqset=seq((1, STAR)), items=(item("FLAGS"),), changed_since=5, vanished=True),
    )
    # RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
    assert bad(b"a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)").text.startswith("VANISHED")
    assert bad(b"a UID FETCH 1 FLAGS (VANISHED)").text.startswith("VANISHED")
    assert bad(b"a FETCH 1 FLAGS (CHANGEDSINCE 0)").text == "Invalid number"
    assert bad(b"a FETCH 1 FLAGS (FROB)").text == "Invalid fetch modifier"


# -- search --------------------------------------------------------------------------


def key(op: str, **kw: object) -> SearchKey:
    return SearchKey(op=op, **kw)  # type: ignore[arg-type]


def search(line: bytes) -> Search:
    got = args(line)
    assert isinstance(got, Search)
    return got


def test_search_plain_and_esearch() -> None:
    assert search(b"a SEARCH ALL") == Search(key=key("AND", keys=(key("ALL"),)))
    assert search(b"a SEARCH RETURN (MIN MAX ALL COUNT) UNSEEN") == Search(
        key=key("AND", keys=(key("FLAG", text="\\Seen", negate=True),)),
        returns=("MIN", "MAX", "ALL", "COUNT"),
    )
    assert search(b"a SEARCH RETURN () ALL").returns == ("ALL",)
    # Quoted strings are ASCII until ENABLE UTF8=ACCEPT (RFC 6855 §3); literals carry UTF-8.
    assert bad(b'a SEARCH CHARSET UTF-8 TEXT "caf\xc3\xa9"').text == (
        "8-bit character in a quoted string"
    )
    assert args(b'a SEARCH TEXT "caf\xc3\xa9"', utf8=True) == Search(
        key=key("AND", keys=(key("TEXT", text="café"),))
    )


def test_search_charsets() -> None:
    assert search(b"a SEARCH CHARSET UTF-8 BODY {5}\r\ncaf\xc3\xa9").key == key(
        "AND", keys=(key("BODY", text="café"),)
    )
    assert search(b'a SEARCH CHARSET "us-ascii" ALL').charset == "US-ASCII"
    refused = bad(b"a SEARCH CHARSET ISO-8859-1 ALL")
    assert refused.code == "BADCHARSET"
    assert "(UTF-8 US-ASCII)" in refused.text
    assert bad(b"a SEARCH RETURN (SORT) ALL").text == "Unsupported search return option SORT"


def test_every_search_key() -> None:
    got = search(
        b"a UID SEARCH ANSWERED BCC b BEFORE 1-Feb-2026 BODY x CC c DELETED DRAFT FLAGGED "
        b'FROM f HEADER X-Spam "yes" KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD '
        b'ON "02-Mar-2025" OR 1:3 UID 5:* RECENT SEEN SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 '
        b"SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000 SMALLER 5 SUBJECT s TEXT t TO o UID 1,3 "
        b"UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD foo UNSEEN 2:4 (SEEN FLAGGED) "
        b'MODSEQ 7 MODSEQ "/flags/\\\\draft" all 620162338'
    )
    d = date(2000, 1, 1)
    assert got.key.keys == (
        key("FLAG", text="\\Answered"),
        key("HEADER", field="BCC", text="b"),
        key("BEFORE", day=date(2026, 2, 1)),
        key("BODY", text="x"),
        key("HEADER", field="CC", text="c"),
        key("FLAG", text="\\Deleted"),
        key("FLAG", text="\\Draft"),
        key("FLAG", text="\\Flagged"),
        key("HEADER", field="FROM", text="f"),
        key("HEADER", field="X-SPAM", text="yes"),
        key("FLAG", text="$Junk"),
        key("LARGER", number=100),
        key("NEW"),
        key("NOT", keys=(key("FLAG", text="\\Seen"),)),
        key("OLD"),
        key("ON", day=date(2025, 3, 2)),
        key("OR", keys=(key("SEQ", seqset=seq((1, 3))), key("UID", seqset=seq((5, STAR))))),
        key("RECENT"),
        key("FLAG", text="\\Seen"),
        key("SENTBEFORE", day=d),
        key("SENTON", day=d),
        key("SENTSINCE", day=d),
        key("SINCE", day=d),
        key("SMALLER", number=5),
        key("HEADER", field="SUBJECT", text="s"),
        key("TEXT", text="t"),
        key("HEADER", field="TO", text="o"),
        key("UID", seqset=seq((1, 1), (3, 3))),
        key("FLAG", text="\\Answered", negate=True),
        key("FLAG", text="\\Deleted", negate=True),
        key("FLAG", text="\\Draft", negate=True),
        key("FLAG", text="\\Flagged", negate=True),
        key("FLAG", text="foo", negate=True),
        key("FLAG", text="\\Seen", negate=True),
        key("SEQ", seqset=seq((2, 4))),
        key("AND", keys=(key("FLAG", text="\\Seen"), key("FLAG", text="\\Flagged"))),
        key("MODSEQ", number=7),
        key("MODSEQ", number=620162338),
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a SEARCH", "Missing argument"),
        (b"a SEARCH FROB", "Unknown search key FROB"),
        (b"a SEARCH OR SEEN", "Missing argument"),
        (b"a SEARCH SINCE 31-Feb-2026", "Invalid date"),
        (b"a SEARCH SINCE 1-Foo-2026", "Invalid date"),
        (b'a SEARCH SINCE "1-Feb-2026', "Missing argument"),
        (b'a SEARCH SINCE "1-Feb-2026 ALL', "Invalid date"),
        (b"a SEARCH (SEEN", "Missing argument"),
        (b"a SEARCH ()", "Invalid search key"),
        (b"a SEARCH KEYWORD \\Seen", "Invalid keyword"),
        (b"a SEARCH LARGER x", "Expected a number"),
        (b'a SEARCH MODSEQ "/flags/x" bogus 1', "Invalid MODSEQ entry type"),
        (b"a SEARCH " + b"(" * 100 + b"ALL" + b")" * 100, "Search program nested too deeply"),
        (b"a SEARCH " + b"NOT " * 100 + b"ALL", "Search program nested too deeply"),
    ],
)
def test_search_errors(line: bytes, text: str) -> None:
    assert bad(line).text == text


def test_repeated_commands_reuse_parsed_arguments_safely() -> None:
    # The argument cache is keyed by verb, the rest of the line and the UTF-8 mode.
    first = parse(b"a FETCH 1:5 (FLAGS BODY.PEEK[HEADER.FIELDS (From)])")
    second = parse(b"b FETCH 1:5 (FLAGS BODY.PEEK[HEADER.FIELDS (From)])")
    assert isinstance(first, Command) and isinstance(second, Command)
    assert (first.tag, second.tag) == ("a", "b")
    assert first.args == second.args
    assert parse(b"c UID FETCH 1:5 (FLAGS BODY.PEEK[HEADER.FIELDS (From)])") == Command(
        tag="c", name="FETCH", uid=True, args=first.args
    )
    assert args(b'a SELECT "&U,BTFw-"') == Select(mailbox="台北")
    assert args(b'a SELECT "&U,BTFw-"', utf8=True) == Select(mailbox="&U,BTFw-")
