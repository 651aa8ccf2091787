"""IMAP behaviour pinned by transcripts (no sockets), one test per RFC section or case.

``C:`` lines are sent, ``S:`` lines are what the session writes (``{*}`` matches any
text), ``E:`` lines are effects, ``X:`` lines run a step between commands. The sessions
run on a real MailStore (SQLite and PostgreSQL).
"""

from __future__ import annotations

import base64

from courriel.protocols.imap.actions import Action
from courriel.protocols.imap.commands.auth import PLAINTEXT_ALERT, PLAINTEXT_REFUSED
from courriel.protocols.imap.session import ImapState
from courriel.testing.imap import exchange, render, run_transcript

from .conftest import ALICE, PASSWORD, SessionFactory

LOGIN = f'C: a1 LOGIN {ALICE} "{PASSWORD}"\nS: a1 OK [CAPABILITY {{*}}] Logged in'
SELECT = """
C: s1 SELECT INBOX
S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
S: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.
S: * 2 EXISTS
S: * 2 RECENT
S: * OK [UNSEEN 1] First unseen.
S: * OK [UIDVALIDITY {*}] UIDs valid
S: * OK [UIDNEXT 3] Predicted next UID
S: s1 OK [READ-WRITE] Select completed
"""
NOBODY = base64.b64encode(b"\0nobody@example.test\0x").decode()
ENVELOPE1 = (
    '("Mon, 1 Jan 2024 10:00:00 +0000" "one" (("Carol" NIL "carol" "example.test")) '
    '(("Carol" NIL "carol" "example.test")) (("Carol" NIL "carol" "example.test")) '
    '((NIL NIL "alice" "example.test")) NIL NIL NIL "<one@example.test>")'
)
PLAIN_IR = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()


async def test_rfc9051_s7_1_1_greeting_lists_capabilities(make_session: SessionFactory) -> None:
    session = make_session(tls_active=False)
    assert render(session, session.greeting()) == [
        "S: * OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE STARTTLS "
        "LOGINDISABLED] courriel IMAP ready."
    ]


async def test_rfc9051_s6_2_1_starttls_then_capability(make_session: SessionFactory) -> None:
    session = make_session(tls_active=False)
    await run_transcript(
        session,
        f"""
        C: a0 LOGIN {ALICE} x
        S: * {PLAINTEXT_ALERT}
        S: a0 NO [PRIVACYREQUIRED] {PLAINTEXT_REFUSED}
        C: a1 AUTHENTICATE PLAIN {PLAIN_IR}
        S: a1 NO [PRIVACYREQUIRED] {PLAINTEXT_REFUSED}
        C: a2 STARTTLS
        S: a2 OK Begin TLS negotiation now.
        E: StartTls
        C: a3 CAPABILITY
        S: * CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE AUTH=PLAIN
        S: a3 OK Pre-login capabilities listed, post-login capabilities have more.
        C: a4 STARTTLS
        S: a4 BAD TLS is already active.
        """,
    )
    assert session.tls_active


async def test_rfc9051_s6_2_1_starttls_drops_pipelined_input(make_session: SessionFactory) -> None:
    session = make_session(tls_active=False)
    actions = await session.receive(b"a1 STARTTLS\r\na2 LOGIN x y\r\n")
    assert render(session, actions) == ["S: a1 OK Begin TLS negotiation now.", "E: StartTls"]
    assert render(session, await session.receive(b"a3 NOOP\r\n")) == ["S: a3 OK NOOP completed"]


async def test_rfc4959_authenticate_plain_sasl_ir_and_continuation(
    make_session: SessionFactory,
) -> None:
    await run_transcript(
        make_session(),
        f"""
        C: a1 AUTHENTICATE PLAIN
        S: +
        C: *
        S: a1 BAD Authentication aborted by client.
        C: a2 AUTHENTICATE CRAM-MD5
        S: a2 NO Unsupported authentication mechanism.
        C: a3 AUTHENTICATE PLAIN
        S: +
        C: {PLAIN_IR}
        S: a3 OK [CAPABILITY {{*}}] Logged in
        C: a4 LOGIN a b
        S: a4 BAD Already logged in.
        """,
    )
    session = make_session()
    await run_transcript(
        session,
        f"""
        C: b1 AUTHENTICATE PLAIN {PLAIN_IR}
        S: b1 OK [CAPABILITY {{*}}] Logged in
        """,
    )
    assert session.state is ImapState.AUTHENTICATED


async def test_rfc5530_failed_logins_are_delayed_then_closed(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        f"""
        C: a1 LOGIN {ALICE} wrong
        E: Delay(0.5)
        S: a1 NO [AUTHENTICATIONFAILED] Authentication failed.
        C: a2 AUTHENTICATE PLAIN {NOBODY}
        E: Delay(1)
        S: a2 NO [AUTHENTICATIONFAILED] Authentication failed.
        C: a3 LOGIN {ALICE} wrong
        E: Delay(2)
        S: a3 NO [AUTHENTICATIONFAILED] Authentication failed.
        S: * BYE Too many invalid IMAP commands.
        E: Close
        """,
    )


async def test_rfc9051_s6_3_2_select_examine_close_unselect(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        C: s2 EXAMINE INBOX
        S: * OK [CLOSED] Previous mailbox closed.
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [PERMANENTFLAGS ()] Read-only mailbox.
        S: * 2 EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 1] First unseen.
        S: * OK [UIDVALIDITY {*}] UIDs valid
        S: * OK [UIDNEXT 3] Predicted next UID
        S: s2 OK [READ-ONLY] Examine completed
        C: s3 STORE 1 +FLAGS (\\Deleted)
        S: s3 NO Mailbox is read-only.
        C: s4 UNSELECT
        S: s4 OK Unselect completed
        C: s5 FETCH 1 FLAGS
        S: s5 BAD No mailbox selected
        C: s6 SELECT Nope
        S: s6 NO [NONEXISTENT] Mailbox doesn't exist
        C: s7 ENABLE CONDSTORE
        S: * ENABLED CONDSTORE
        S: s7 OK Enabled
        C: s8 SELECT INBOX
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [PERMANENTFLAGS ({*} \\*)] Flags permitted.
        S: * 2 EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 1] First unseen.
        S: * OK [UIDVALIDITY {*}] UIDs valid
        S: * OK [UIDNEXT 3] Predicted next UID
        S: * OK [HIGHESTMODSEQ {*}] Highest
        S: s8 OK [READ-WRITE] Select completed
        C: s9 CLOSE
        S: s9 OK Close completed
        """,
    )


async def test_rfc9051_s6_4_5_fetch_items(make_session: SessionFactory) -> None:
    session = make_session()

    async def changedsince() -> list[Action]:
        # RFC 7162 §3.1.4: only what changed after message 1's modseq.
        view = session.selected
        assert view is not None
        first = view.meta[1].modseq
        actions: list[Action] = await exchange(
            session, b"f9 FETCH 1:* (FLAGS) (CHANGEDSINCE %d)\r\n" % first
        )
        return actions

    await run_transcript(
        session,
        LOGIN
        + SELECT
        + """
        C: f1 FETCH 1 (UID RFC822.SIZE FLAGS)
        S: * 1 FETCH (UID 1 RFC822.SIZE 236 FLAGS (\\Recent))
        S: f1 OK Fetch completed
        C: f2 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)
        S: * 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}
        S: Subject: one
        S:
        S:  ENVELOPE {ENVELOPE1})
        S: f2 OK Fetch completed
        C: f3 FETCH 1 BODY[TEXT]<0.5>
        S: * 1 FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT]<0> {5}
        S: Hello)
        S: f3 OK Fetch completed
        C: f4 UID FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[3])
        S: * 2 FETCH (UID 2 BINARY[2] ~{3}
        S: {*} BINARY.SIZE[2] 3 BODY[3] NIL)
        S: f4 OK Fetch completed
        C: f5 FETCH 3 FLAGS
        S: f5 BAD Error in IMAP command FETCH: Invalid messageset
        C: f6 UID FETCH 3:9 FLAGS
        S: f6 OK Fetch completed
        C: f7 STORE 2 +FLAGS.SILENT (\\Answered)
        S: f7 OK Store completed
        C: f8 FETCH 1 (MODSEQ)
        S: * 1 FETCH (UID 1 MODSEQ ({*}))
        S: f8 OK Fetch completed
        X: changedsince
        S: * 2 FETCH (UID 2 FLAGS (\\Answered \\Recent) MODSEQ ({*}))
        S: f9 OK Fetch completed
        """.replace("{ENVELOPE1}", ENVELOPE1),
        steps={"changedsince": changedsince},
    )


async def test_rfc9051_s6_4_6_store_modes_and_rfc7162_unchangedsince(
    make_session: SessionFactory,
) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        C: t1 STORE 1:2 +FLAGS (\\Flagged $Label)
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label)
        S: * OK [PERMANENTFLAGS {*} $Label \\*)] Flags permitted.
        S: * 1 FETCH (FLAGS (\\Flagged \\Recent $Label))
        S: * 2 FETCH (FLAGS (\\Flagged \\Recent $Label))
        S: t1 OK Store completed
        C: t2 UID STORE 2 -FLAGS.SILENT ($Label)
        S: t2 OK Store completed
        C: t3 STORE 1 FLAGS (\\Seen)
        S: * 1 FETCH (FLAGS (\\Seen \\Recent))
        S: t3 OK Store completed
        C: t4 UID STORE 1:2 (UNCHANGEDSINCE 1) +FLAGS (\\Deleted)
        S: t4 OK [MODIFIED 1:2] Conditional store failed
        C: t5 STORE 9 +FLAGS (\\Seen)
        S: t5 BAD Error in IMAP command STORE: Invalid messageset
        """,
    )


async def test_rfc9051_s6_4_4_search_and_rfc4731_esearch(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        C: r1 SEARCH SUBJECT two
        S: * SEARCH 2
        S: r1 OK Search completed
        C: r2 UID SEARCH RETURN (MIN MAX COUNT ALL) ALL
        S: * ESEARCH (TAG "r2") UID MIN 1 MAX 2 COUNT 2 ALL 1:2
        S: r2 OK Search completed
        C: r3 SEARCH RETURN () BODY nowhere
        S: * ESEARCH (TAG "r3")
        S: r3 OK Search completed
        C: r4 SEARCH CHARSET KOI8-R ALL
        S: r4 NO [BADCHARSET (UTF-8 US-ASCII)] {*}
        C: r5 SEARCH MODSEQ 1 UNSEEN
        S: * SEARCH 1 2 (MODSEQ {*})
        S: r5 OK Search completed
        C: r6 SEARCH TEXT "Hello Alice" NOT DELETED
        S: * SEARCH 1
        S: r6 OK Search completed
        """,
    )


async def test_rfc9051_s6_3_12_append_literals_and_rfc4315_appenduid(
    make_session: SessionFactory,
) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        # A synchronising literal: the server asks for the octets with "+ OK".
        C: p1 APPEND INBOX (\\Seen) {12}
        S: + OK
        C: Subject: x
        C:
        S: * 3 EXISTS
        S: * 3 RECENT
        S: p1 OK [APPENDUID {*} 3] Append completed
        # LITERAL+ (RFC 7888): no continuation request.
        C: p2 APPEND Archive {12+}
        C: Subject: y
        C:
        S: p2 OK [APPENDUID {*} 1] Append completed
        C: p3 APPEND Nope {1+}
        C: x
        S: p3 NO [TRYCREATE] Mailbox doesn't exist
        C: p4 APPEND INBOX {0+}
        C:
        S: p4 NO Can't save a zero byte message.
        C: p5 FETCH 3 (FLAGS RFC822.SIZE)
        S: * 3 FETCH (FLAGS (\\Seen \\Recent) RFC822.SIZE 12)
        S: p5 OK Fetch completed
        """,
    )


async def test_rfc9051_s6_4_3_expunge_and_rfc4315_uid_expunge(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        C: e1 STORE 1:2 +FLAGS.SILENT (\\Deleted)
        S: e1 OK Store completed
        C: e2 UID EXPUNGE 2
        S: * 2 EXPUNGE
        S: * 1 RECENT
        S: e2 OK Expunge completed
        C: e3 EXPUNGE
        S: * 1 EXPUNGE
        S: * 0 RECENT
        S: e3 OK Expunge completed
        C: e4 FETCH 1:* FLAGS
        S: e4 BAD Error in IMAP command FETCH: Invalid messageset
        """,
    )


async def test_rfc9051_s6_4_7_copy_and_rfc6851_move(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        C: c1 COPY 1 Archive
        S: c1 OK [COPYUID {*} 1 1] Copy completed
        C: c2 UID COPY 1:2 Nope
        S: c2 NO [TRYCREATE] Mailbox doesn't exist
        C: c3 MOVE 1:2 Trash
        S: * OK [COPYUID {*} 1:2 1:2] Moved UIDs.
        S: * 1 EXPUNGE
        S: * 1 EXPUNGE
        S: * 0 RECENT
        S: c3 OK Move completed
        C: c4 STATUS Archive (MESSAGES UIDNEXT)
        S: * STATUS Archive (MESSAGES 1 UIDNEXT 2)
        S: c4 OK Status completed
        C: c5 UID MOVE 1:* Trash
        S: c5 OK No messages found
        """,
    )


async def test_rfc9051_s6_3_mailbox_management(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: m1 CREATE Projects/2026/
        S: m1 OK Create completed
        C: m2 CREATE INBOX
        S: m2 NO [ALREADYEXISTS] Mailbox already exists
        C: m3 CREATE Projects
        S: m3 NO [ALREADYEXISTS] Mailbox already exists
        C: m4 DELETE Projects
        S: m4 NO [CANNOT] Mailbox has children, delete them first.
        C: m5 RENAME Projects/2026 Projects/2027
        S: m5 OK Rename completed
        C: m6 SUBSCRIBE Projects/2027
        S: m6 OK Subscribe completed
        C: m7 LIST "" Projects*
        S: * LIST (\\HasChildren) "/" Projects
        S: * LIST (\\HasNoChildren) "/" Projects/2027
        S: m7 OK List completed
        C: m8 LSUB "" Pro*
        S: * LSUB () "/" Projects/2027
        S: m8 OK Lsub completed
        C: m9 DELETE Projects/2027
        S: m9 OK Delete completed
        C: m10 DELETE INBOX
        S: m10 NO [CANNOT] INBOX can't be deleted
        C: m11 DELETE Nope
        S: m11 NO [NONEXISTENT] Mailbox doesn't exist
        C: m12 CREATE Stuff (USE (\\Flagged))
        S: m12 OK Create completed
        C: m13 CREATE Other (USE (\\Bogus))
        S: m13 NO [USEATTR] Unsupported special-use attribute.
        C: m14 UNSUBSCRIBE Projects/2027
        S: m14 OK Unsubscribe completed
        C: m15 LSUB "" Pro*
        S: m15 OK Lsub completed
        """,
    )


async def test_rfc9051_s6_3_9_list_patterns_and_extensions(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: l1 LIST "" ""
        S: * LIST (\\Noselect) "/" ""
        S: l1 OK List completed
        C: l2 LIST "" %
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: l2 OK List completed
        C: l3 LIST "" inbox
        S: * LIST (\\HasNoChildren) "/" INBOX
        S: l3 OK List completed
        C: l4 UNSUBSCRIBE Sent
        S: l4 OK Unsubscribe completed
        C: l5 LIST (SUBSCRIBED) "" S* RETURN (STATUS (MESSAGES UNSEEN))
        S: l5 OK List completed
        C: l5b LIST "" S* RETURN (SUBSCRIBED)
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: l5b OK List completed
        C: l5c SUBSCRIBE Sent
        S: l5c OK Subscribe completed
        C: l5d LIST (SUBSCRIBED) "" S* RETURN (STATUS (MESSAGES UNSEEN))
        S: * LIST (\\HasNoChildren \\Subscribed \\Sent) "/" Sent
        S: * STATUS Sent (MESSAGES 0 UNSEEN 0)
        S: l5d OK List completed
        C: l6 LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE)
        S: * LIST (\\HasNoChildren \\Archive) "/" Archive
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: * LIST (\\HasNoChildren \\Junk) "/" Junk
        S: * LIST (\\HasNoChildren \\Sent) "/" Sent
        S: * LIST (\\HasNoChildren \\Trash) "/" Trash
        S: l6 OK List completed
        C: l7 LIST "Dr" %
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: l7 OK List completed
        C: l8 LIST "" "Dr%"
        S: * LIST (\\HasNoChildren \\Drafts) "/" Drafts
        S: l8 OK List completed
        C: l8b CREATE Lists/Inner
        S: l8b OK Create completed
        C: l8c SUBSCRIBE Lists/Inner
        S: l8c OK Subscribe completed
        C: l8d LIST (SUBSCRIBED RECURSIVEMATCH) "" L%
        S: * LIST (\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))
        S: l8d OK List completed
        C: l8e LIST (RECURSIVEMATCH) "" *
        S: l8e BAD Error in IMAP command LIST: {*}
        C: l9 NAMESPACE
        S: * NAMESPACE (("" "/")) NIL NIL
        S: l9 OK Namespace completed
        C: l10 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED)
        S: * STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY {*} UNSEEN 2 DELETED 0)
        S: l10 OK Status completed
        C: l10b STATUS INBOX (SIZE HIGHESTMODSEQ)
        S: * STATUS INBOX (SIZE 582 HIGHESTMODSEQ {*})
        S: l10b OK Status completed
        C: l11 STATUS Nope (MESSAGES)
        S: l11 NO [NONEXISTENT] Mailbox doesn't exist
        """,
    )


async def test_rfc2971_id_rfc5161_enable_and_any_state(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        """
        C: i1 ID ("name" "test")
        S: * ID ("name" "courriel")
        S: i1 OK ID completed
        C: i2 ENABLE CONDSTORE
        S: i2 BAD ENABLE is not allowed before login.
        C: i3 FROB
        S: i3 BAD Error in IMAP command received by server.
        C: i4 NOOP
        S: i4 OK NOOP completed
        """
        + LOGIN
        + """
        C: i5 FROB
        S: i5 BAD Error in IMAP command FROB: Unknown command
        C: i6 ENABLE CONDSTORE IMAP4rev2 X-UNKNOWN
        S: * ENABLED CONDSTORE IMAP4rev2
        S: i6 OK Enabled
        C: i7 SELECT INBOX
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [PERMANENTFLAGS ({*} \\*)] Flags permitted.
        S: * 2 EXISTS
        S: * LIST () "/" INBOX
        S: * OK [UIDVALIDITY {*}] UIDs valid
        S: * OK [UIDNEXT 3] Predicted next UID
        S: * OK [HIGHESTMODSEQ {*}] Highest
        S: i7 OK [READ-WRITE] Select completed
        C: i8 SEARCH ALL
        S: * ESEARCH (TAG "i8") ALL 1:2
        S: i8 OK Search completed
        C: i9 FETCH 1 FLAGS
        S: * 1 FETCH (UID 1 FLAGS () MODSEQ ({*}))
        S: i9 OK Fetch completed
        C: i10 LOGOUT
        S: * BYE Logging out
        S: i10 OK Logout completed
        E: Close
        """,
    )


async def test_rfc7889_appendlimit_toobig(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(append_limit=1024),
        LOGIN
        + """
        C: p1 APPEND INBOX {2000}
        S: p1 NO [TOOBIG] {*}
        C: p2 NOOP
        S: p2 OK NOOP completed
        """,
    )


async def test_bad_syntax_and_wrong_state_answers(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        """
        C: a1 SELECT INBOX
        S: a1 BAD SELECT is not allowed before login.
        C: * NOOP
        S: * BAD {*}
        """
        + LOGIN
        + """
        C: a2 FETCH 1 FLAGS
        S: a2 BAD No mailbox selected
        C: a3 STARTTLS
        S: a3 BAD STARTTLS is not allowed in the authenticated state.
        C: a4 SELECT
        S: a4 BAD Error in IMAP command SELECT: {*}
        """,
    )


async def test_rfc3516_unknown_cte_and_examine_never_sets_seen(
    make_session: SessionFactory,
) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: p1 APPEND Archive {66+}
        C: MIME-Version: 1.0
        C: Content-Transfer-Encoding: x-uuencode
        C:
        C: body
        C:
        S: p1 OK [APPENDUID {*} 1] Append completed
        C: p2 EXAMINE Archive
        S: * FLAGS {*}
        S: * OK [PERMANENTFLAGS ()] Read-only mailbox.
        S: * 1 EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 1] First unseen.
        S: * OK [UIDVALIDITY {*}] UIDs valid
        S: * OK [UIDNEXT 2] Predicted next UID
        S: p2 OK [READ-ONLY] Examine completed
        C: p3 FETCH 1 BINARY[1]
        S: p3 NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding.
        C: p4 FETCH 1 (BODY[TEXT] FLAGS)
        S: * 1 FETCH (BODY[TEXT] {6}
        S: body
        S:  FLAGS ())
        S: p4 OK Fetch completed
        """,
    )


async def test_rfc3501_s2_3_2_recent_cannot_be_stored(make_session: SessionFactory) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + SELECT
        + """
        C: r1 STORE 1 FLAGS (\\Recent)
        S: r1 BAD Error in IMAP command STORE: Invalid system flag \\Recent
        C: r2 APPEND INBOX (\\Recent) {1+}
        C: x
        S: r2 BAD Error in IMAP command APPEND: Invalid system flag \\Recent
        """,
    )


async def test_rfc3501_s5_1_3_modified_utf7_names_and_rfc5258_nonexistent(
    make_session: SessionFactory,
) -> None:
    await run_transcript(
        make_session(),
        LOGIN
        + """
        C: u1 CREATE &AOk-t&AOk-
        S: u1 OK Create completed
        C: u2 LIST "" &AOk-*
        S: * LIST (\\HasNoChildren) "/" &AOk-t&AOk-
        S: u2 OK List completed
        C: u3 SUBSCRIBE &AOk-t&AOk-
        S: u3 OK Subscribe completed
        C: u4 DELETE &AOk-t&AOk-
        S: u4 OK Delete completed
        C: u5 LIST (SUBSCRIBED) "" &AOk-*
        S: * LIST (\\NonExistent \\Subscribed) "/" &AOk-t&AOk-
        S: u5 OK List completed
        C: u6 LSUB "" &AOk-*
        S: * LSUB (\\Noselect) "/" &AOk-t&AOk-
        S: u6 OK Lsub completed
        """,
    )
