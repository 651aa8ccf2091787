"""SEARCHRES (RFC 5182; part of IMAP4rev2, RFC 9051 §6.4.4.1) pinned by transcripts.

One test per RFC 5182 section, on both databases. Every session works on an INBOX of
four messages: the fixture's MSG1 (UID 1) and MSG2 (UID 2), then MSG1 (UID 3) and MSG2
(UID 4) again, so ``SUBJECT two`` finds UIDs 2 and 4.
"""

from __future__ import annotations

import asyncio
import imaplib
import ssl

from courriel.mailstore.service import MailStore
from courriel.protocols.imap.session import ImapSession
from courriel.testing.imap import exchange, render, run_transcript

from .conftest import ALICE, MSG1, MSG2, PASSWORD, ServerFactory, SessionFactory, deliver


async def _open(mail: MailStore, make_session: SessionFactory, *, more: bool = True) -> ImapSession:
    """A session logged in as alice with INBOX selected (four messages unless not ``more``)."""
    if more:
        await deliver(mail, ALICE, MSG1)
        await deliver(mail, ALICE, MSG2)
    session = make_session()
    out = render(session, await exchange(session, f'a1 LOGIN {ALICE} "{PASSWORD}"\r\n'.encode()))
    assert out[-1].startswith("S: a1 OK [CAPABILITY ")
    out = render(session, await exchange(session, b"s1 SELECT INBOX\r\n"))
    assert out[-1] == "S: s1 OK [READ-WRITE] Select completed"
    return session


async def test_rfc5182_s1_searchres_advertised_after_login(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session, more=False)
    out = render(session, await exchange(session, b"c1 CAPABILITY\r\n"))
    assert " ESEARCH SEARCHRES " in out[0]
    before = make_session()
    greeting = render(before, before.greeting())[0]
    assert "SEARCHRES" not in greeting  # only after login, as Dovecot does


async def test_rfc5182_s2_1_dollar_before_any_save_is_empty(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: f1 FETCH $ (UID)
        S: f1 OK Fetch completed
        C: f2 UID FETCH $ (UID)
        S: f2 OK Fetch completed
        C: t1 SEARCH $
        S: * SEARCH
        S: t1 OK Search completed
        C: t2 UID SEARCH UID $
        S: * SEARCH
        S: t2 OK Search completed
        C: t3 SEARCH NOT $
        S: * SEARCH 1 2 3 4
        S: t3 OK Search completed
        C: x1 STORE $ +FLAGS (\\Flagged)
        S: x1 OK Store completed
        C: x2 COPY $ Trash
        S: x2 OK No messages found
        """,
    )


async def test_rfc5182_s2_1_saved_result_in_fetch_store_search(
    mail: MailStore, make_session: SessionFactory
) -> None:
    """SAVE alone answers no ESEARCH (§2.4); `$` then names the same messages in sequence
    and UID commands (§2.1), and in SEARCH keys of both kinds (§2.2)."""
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE) SUBJECT two
        S: t1 OK Search completed
        C: f1 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: f1 OK Fetch completed
        C: f2 UID FETCH $ (RFC822.SIZE)
        S: * 2 FETCH (UID 2 RFC822.SIZE {*})
        S: * 4 FETCH (UID 4 RFC822.SIZE {*})
        S: f2 OK Fetch completed
        C: x1 STORE $ +FLAGS.SILENT (\\Flagged)
        S: x1 OK Store completed
        C: x2 UID STORE $ +FLAGS (\\Answered)
        S: * 2 FETCH (UID 2 FLAGS (\\Answered \\Flagged \\Recent))
        S: * 4 FETCH (UID 4 FLAGS (\\Answered \\Flagged \\Recent))
        S: x2 OK Store completed
        C: t2 SEARCH $
        S: * SEARCH 2 4
        S: t2 OK Search completed
        C: t3 UID SEARCH UID $
        S: * SEARCH 2 4
        S: t3 OK Search completed
        C: t4 SEARCH OR $ 1
        S: * SEARCH 1 2 4
        S: t4 OK Search completed
        C: t5 SEARCH RETURN (COUNT) NOT UID $
        S: * ESEARCH (TAG "t5") COUNT 2
        S: t5 OK Search completed
        """,
    )


async def test_rfc5182_s2_1_new_messages_do_not_join_the_saved_result(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session)

    async def arrive() -> None:
        await deliver(mail, ALICE, MSG2)

    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE) SUBJECT two
        S: t1 OK Search completed
        X: arrive
        C: n1 NOOP
        S: * 5 EXISTS
        S: * 5 RECENT
        S: n1 OK NOOP completed
        C: f1 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: f1 OK Fetch completed
        """,
        steps={"arrive": arrive},
    )


async def test_rfc5182_s2_1_no_empties_and_bad_keeps_the_saved_result(
    mail: MailStore, make_session: SessionFactory
) -> None:
    """A SAVE search answered NO (here BADCHARSET) leaves `$` empty; one answered BAD
    was not carried out (RFC 9051 §7.1.5) and changes nothing."""
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE) SUBJECT two
        S: t1 OK Search completed
        C: t2 SEARCH RETURN (SAVE) NOSUCHKEY
        S: t2 BAD Error in IMAP command SEARCH: Unknown search key NOSUCHKEY
        C: t3 SEARCH RETURN (SAVE BOGUS) ALL
        S: t3 BAD Error in IMAP command SEARCH: Unsupported search return option BOGUS
        C: f1 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: f1 OK Fetch completed
        C: t4 SEARCH CHARSET X-UNKNOWN ALL
        S: t4 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset, use one of (UTF-8 US-ASCII)
        C: f2 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: f2 OK Fetch completed
        C: t5 UID SEARCH RETURN (SAVE) CHARSET X-UNKNOWN ALL
        S: t5 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset, use one of (UTF-8 US-ASCII)
        C: f3 FETCH $ (UID)
        S: f3 OK Fetch completed
        """,
    )


async def test_rfc5182_s2_1_expunged_messages_leave_the_saved_result(
    mail: MailStore, make_session: SessionFactory
) -> None:
    """Our own EXPUNGE, and another session's once announced: until then the message
    keeps its sequence number, and `$` still names it (RFC 9051 §7.5.1)."""
    a = await _open(mail, make_session)
    b = make_session()
    await run_transcript(
        {"A": a, "B": b},
        f"""
        A C: t1 SEARCH RETURN (SAVE) ALL
        A S: t1 OK Search completed
        A C: x1 STORE 1 +FLAGS.SILENT (\\Deleted)
        A S: x1 OK Store completed
        A C: x2 EXPUNGE
        A S: * 1 EXPUNGE
        A S: * 3 RECENT
        A S: x2 OK Expunge completed
        A C: f1 FETCH $ (UID)
        A S: * 1 FETCH (UID 2)
        A S: * 2 FETCH (UID 3)
        A S: * 3 FETCH (UID 4)
        A S: f1 OK Fetch completed
        B C: b1 LOGIN {ALICE} "{PASSWORD}"
        B S: b1 OK [CAPABILITY {{*}}] Logged in
        B C: b2 UID EXPUNGE 1
        B S: b2 BAD No mailbox selected
        B C: b3 SELECT INBOX
        B S: {{*}}
        B S: {{*}}
        B S: * 3 EXISTS
        B S: * 0 RECENT
        B S: {{*}}
        B S: {{*}}
        B S: {{*}}
        B S: b3 OK [READ-WRITE] Select completed
        B C: b4 UID STORE 3 +FLAGS.SILENT (\\Deleted)
        B S: b4 OK Store completed
        B C: b5 UID EXPUNGE 3
        B S: * 2 EXPUNGE
        B S: b5 OK Expunge completed
        A C: t2 SEARCH $
        A S: * SEARCH 1 2 3
        A S: t2 OK Search completed
        A C: n1 NOOP
        A S: * 2 EXPUNGE
        A S: * 2 RECENT
        A S: n1 OK NOOP completed
        A C: f2 FETCH $ (UID)
        A S: * 1 FETCH (UID 2)
        A S: * 2 FETCH (UID 4)
        A S: f2 OK Fetch completed
        """,
    )


async def test_rfc5182_s2_1_select_examine_unselect_close_reset_the_saved_result(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE) ALL
        S: t1 OK Search completed
        C: s2 EXAMINE INBOX
        S: * OK [CLOSED] Previous mailbox closed.
        S: {*}
        S: {*}
        S: * 4 EXISTS
        S: * 0 RECENT
        S: {*}
        S: {*}
        S: {*}
        S: s2 OK [READ-ONLY] Examine completed
        C: f1 FETCH $ (UID)
        S: f1 OK Fetch completed
        C: t2 SEARCH RETURN (SAVE) ALL
        S: t2 OK Search completed
        C: s3 SELECT INBOX
        S: * OK [CLOSED] Previous mailbox closed.
        S: {*}
        S: {*}
        S: * 4 EXISTS
        S: * 0 RECENT
        S: {*}
        S: {*}
        S: {*}
        S: s3 OK [READ-WRITE] Select completed
        C: f2 FETCH $ (UID)
        S: f2 OK Fetch completed
        C: t3 SEARCH RETURN (SAVE) ALL
        S: t3 OK Search completed
        C: u1 UNSELECT
        S: u1 OK Unselect completed
        C: s4 SELECT INBOX
        S: {*}
        S: {*}
        S: * 4 EXISTS
        S: * 0 RECENT
        S: {*}
        S: {*}
        S: {*}
        S: s4 OK [READ-WRITE] Select completed
        C: f3 FETCH $ (UID)
        S: f3 OK Fetch completed
        C: t4 SEARCH RETURN (SAVE) ALL
        S: t4 OK Search completed
        C: c1 CLOSE
        S: c1 OK Close completed
        C: f4 FETCH $ (UID)
        S: f4 BAD No mailbox selected
        C: s5 SELECT INBOX
        S: {*}
        S: {*}
        S: * 4 EXISTS
        S: * 0 RECENT
        S: {*}
        S: {*}
        S: {*}
        S: s5 OK [READ-WRITE] Select completed
        C: f5 UID FETCH $ (UID)
        S: f5 OK Fetch completed
        """,
    )


async def test_rfc5182_s2_2_a_save_search_reads_the_previous_result(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE) 2:4
        S: t1 OK Search completed
        C: t2 SEARCH RETURN (SAVE) UID $ SUBJECT one
        S: t2 OK Search completed
        C: f1 FETCH $ (UID)
        S: * 3 FETCH (UID 3)
        S: f1 OK Fetch completed
        C: t3 UID SEARCH RETURN (SAVE ALL) NOT $
        S: * ESEARCH (TAG "t3") UID ALL 1:2,4
        S: t3 OK Search completed
        C: f2 UID FETCH $ (UID)
        S: * 1 FETCH (UID 1)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: f2 OK Fetch completed
        """,
    )


async def test_rfc5182_s2_4_save_with_min_max_all_count(
    mail: MailStore, make_session: SessionFactory
) -> None:
    """MIN and/or MAX alone save only those messages; with ALL or COUNT, all of them."""
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE MIN) SUBJECT two
        S: * ESEARCH (TAG "t1") MIN 2
        S: t1 OK Search completed
        C: f1 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: f1 OK Fetch completed
        C: t2 UID SEARCH RETURN (MAX SAVE) ALL
        S: * ESEARCH (TAG "t2") UID MAX 4
        S: t2 OK Search completed
        C: f2 FETCH $ (UID)
        S: * 4 FETCH (UID 4)
        S: f2 OK Fetch completed
        C: t3 SEARCH RETURN (MIN MAX SAVE) ALL
        S: * ESEARCH (TAG "t3") MIN 1 MAX 4
        S: t3 OK Search completed
        C: f3 FETCH $ (UID)
        S: * 1 FETCH (UID 1)
        S: * 4 FETCH (UID 4)
        S: f3 OK Fetch completed
        C: t4 SEARCH RETURN (SAVE MIN COUNT) SUBJECT one
        S: * ESEARCH (TAG "t4") MIN 1 COUNT 2
        S: t4 OK Search completed
        C: f4 FETCH $ (UID)
        S: * 1 FETCH (UID 1)
        S: * 3 FETCH (UID 3)
        S: f4 OK Fetch completed
        C: t5 SEARCH RETURN (SAVE MAX ALL) 2:3
        S: * ESEARCH (TAG "t5") MAX 3 ALL 2:3
        S: t5 OK Search completed
        C: f5 FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 3 FETCH (UID 3)
        S: f5 OK Fetch completed
        C: t6 SEARCH RETURN (SAVE MIN) DELETED
        S: * ESEARCH (TAG "t6")
        S: t6 OK Search completed
        C: f6 FETCH $ (UID)
        S: f6 OK Fetch completed
        """,
    )


async def test_rfc5182_s2_1_copy_move_and_uid_expunge_take_the_saved_result(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: t1 SEARCH RETURN (SAVE) SUBJECT one
        S: t1 OK Search completed
        C: c1 COPY $ Archive
        S: c1 OK [COPYUID {*} 1,3 1:2] Copy completed
        C: m1 UID MOVE $ Trash
        S: * OK [COPYUID {*} 1,3 1:2] Moved UIDs.
        S: * 1 EXPUNGE
        S: * 2 EXPUNGE
        S: * 2 RECENT
        S: m1 OK Move completed
        C: f1 FETCH $ (UID)
        S: f1 OK Fetch completed
        C: t2 SEARCH RETURN (SAVE) 2
        S: t2 OK Search completed
        C: x1 STORE 1:* +FLAGS.SILENT (\\Deleted)
        S: x1 OK Store completed
        C: e1 UID EXPUNGE $
        S: * 2 EXPUNGE
        S: * 1 RECENT
        S: e1 OK Expunge completed
        C: f2 FETCH 1:* (UID)
        S: * 1 FETCH (UID 2)
        S: f2 OK Fetch completed
        """,
    )


async def test_rfc9051_s6_4_4_rev2_answers_esearch_and_save_alone_nothing(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = await _open(mail, make_session)
    await run_transcript(
        session,
        """
        C: e1 ENABLE IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: e1 OK Enabled
        C: t1 SEARCH RETURN (SAVE) SUBJECT two
        S: t1 OK Search completed
        C: t2 SEARCH $
        S: * ESEARCH (TAG "t2") ALL 2,4
        S: t2 OK Search completed
        C: t3 UID SEARCH RETURN (SAVE COUNT) UID $
        S: * ESEARCH (TAG "t3") UID COUNT 2
        S: t3 OK Search completed
        C: f1 UID FETCH $ (UID)
        S: * 2 FETCH (UID 2)
        S: * 4 FETCH (UID 4)
        S: f1 OK Fetch completed
        """,
    )


async def test_imaplib_save_then_uid_fetch_dollar(
    mail: MailStore, start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    """The stdlib client over a real socket: SEARCH RETURN (SAVE) then UID FETCH $."""
    await deliver(mail, ALICE, MSG1)
    server = await start_server()

    def client() -> tuple[object, object, object]:
        imap = imaplib.IMAP4("127.0.0.1", server.port, timeout=10)
        imap.starttls(client_tls)
        imap.login(ALICE, PASSWORD)
        imap.select("INBOX")
        saved = imap.search(None, "RETURN", "(SAVE)", "SUBJECT", "one")
        fetched = imap.uid("FETCH", "$", "(FLAGS)")
        capability = imap.capability()
        imap.logout()
        return saved, fetched, capability

    saved, fetched, capability = await asyncio.to_thread(client)
    assert saved == ("OK", [None])  # SAVE alone: no SEARCH or ESEARCH data (RFC 5182 §2.4)
    assert fetched[0] == "OK"  # type: ignore[index]
    assert fetched[1] == [b"1 (UID 1 FLAGS (\\Recent))", b"3 (UID 3 FLAGS (\\Recent))"]  # type: ignore[index]
    assert b"SEARCHRES" in capability[1][0].split()  # type: ignore[index]
