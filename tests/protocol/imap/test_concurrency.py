"""Two sessions on one folder, IDLE, and pipelining, pinned by transcripts.

RFC 9051 §5.2 and §7.5.1: a session learns of other sessions' changes at its next
command; EXPUNGE is never sent while answering FETCH, STORE or SEARCH (only their UID
forms), so sequence numbers stay valid for the client.
"""

from __future__ import annotations

from courriel.mailstore.service import MailStore
from courriel.protocols.imap.session import ImapSession
from courriel.testing.imap import exchange, expand, render, run_transcript

from .conftest import ALICE, MSG1, PASSWORD, SessionFactory, deliver

LOGIN_AB = f"""
A C: a1 LOGIN {ALICE} "{PASSWORD}"
A S: a1 OK [CAPABILITY {{*}}] Logged in
B C: b1 LOGIN {ALICE} "{PASSWORD}"
B S: b1 OK [CAPABILITY {{*}}] Logged in
A C: a2 SELECT INBOX
A S: * FLAGS {{*}}
A S: * OK [PERMANENTFLAGS {{*}}
A S: * 2 EXISTS
A S: * 2 RECENT
A S: * OK [UNSEEN 1] First unseen.
A S: * OK [UIDVALIDITY {{*}}] UIDs valid
A S: * OK [UIDNEXT 3] Predicted next UID
A S: a2 OK [READ-WRITE] Select completed
B C: b2 SELECT INBOX
B S: * FLAGS {{*}}
B S: * OK [PERMANENTFLAGS {{*}}
B S: * 2 EXISTS
B S: * 0 RECENT
B S: * OK [UNSEEN 1] First unseen.
B S: * OK [UIDVALIDITY {{*}}] UIDs valid
B S: * OK [UIDNEXT 3] Predicted next UID
B S: b2 OK [READ-WRITE] Select completed
"""


def _pair(make_session: SessionFactory) -> dict[str, ImapSession]:
    return {"A": make_session(), "B": make_session()}


async def test_rfc9051_s7_5_1_no_expunge_during_fetch_store_search(
    make_session: SessionFactory,
) -> None:
    await run_transcript(
        _pair(make_session),
        LOGIN_AB
        + """
        B C: b3 STORE 1 +FLAGS.SILENT (\\Deleted)
        B S: b3 OK Store completed
        B C: b4 EXPUNGE
        B S: * 1 EXPUNGE
        B S: b4 OK Expunge completed
        # A still numbers the expunged message 1 while FETCH, STORE and SEARCH run.
        A C: a3 FETCH 1:2 (UID FLAGS)
        A S: * 1 FETCH (UID 1 FLAGS (\\Recent))
        A S: * 2 FETCH (UID 2 FLAGS (\\Recent))
        A S: a3 OK Fetch completed
        A C: a4 STORE 2 +FLAGS (\\Flagged)
        A S: * 2 FETCH (FLAGS (\\Flagged \\Recent))
        A S: a4 OK Store completed
        A C: a5 SEARCH FLAGGED
        A S: * SEARCH 2
        A S: a5 OK Search completed
        A C: a6 FETCH 1 BODY[]
        A S: a6 NO [EXPUNGEISSUED] Some of the requested messages no longer exist.
        # NOOP may send it: from now on the message formerly 2 is 1.
        A C: a7 NOOP
        A S: * 1 EXPUNGE
        A S: * 1 RECENT
        A S: a7 OK NOOP completed
        A C: a8 FETCH 1 UID
        A S: * 1 FETCH (UID 2)
        A S: a8 OK Fetch completed
        # B sees A's flag change at its next command.
        B C: b5 NOOP
        B S: * 1 FETCH (FLAGS (\\Flagged))
        B S: b5 OK NOOP completed
        """,
    )


async def test_rfc9051_s7_4_1_uid_commands_may_expunge(make_session: SessionFactory) -> None:
    await run_transcript(
        _pair(make_session),
        LOGIN_AB
        + """
        B C: b3 STORE 2 +FLAGS.SILENT (\\Deleted)
        B S: b3 OK Store completed
        B C: b4 EXPUNGE
        B S: * 2 EXPUNGE
        B S: b4 OK Expunge completed
        A C: a3 UID SEARCH ALL
        A S: * SEARCH 1 2
        A S: * 2 EXPUNGE
        A S: * 1 RECENT
        A S: a3 OK Search completed
        """,
    )


async def test_rfc9051_s7_3_1_new_mail_seen_at_next_command(
    make_session: SessionFactory, mail: MailStore
) -> None:
    async def arrive() -> None:
        await deliver(mail, ALICE, MSG1)

    await run_transcript(
        _pair(make_session),
        LOGIN_AB
        + """
        X: arrive
        B C: b3 CHECK
        B S: * 3 EXISTS
        B S: * 1 RECENT
        B S: b3 OK Check completed
        # The message is \\Recent for B only: B's poll claimed it first.
        A C: a3 NOOP
        A S: * 3 EXISTS
        A S: a3 OK NOOP completed
        A C: a4 FETCH 3 FLAGS
        A S: * 3 FETCH (FLAGS ())
        A S: a4 OK Fetch completed
        """,
        steps={"arrive": arrive},
    )


async def test_rfc2177_idle_woken_by_delivery_and_other_session(
    make_session: SessionFactory, mail: MailStore
) -> None:
    async def arrive() -> None:
        await deliver(mail, ALICE, MSG1)

    await run_transcript(
        _pair(make_session),
        LOGIN_AB
        + """
        A C: i1 IDLE
        A S: + idling
        A E: WaitForChange
        X: arrive
        A X: idle_changed
        A S: * 3 EXISTS
        A S: * 3 RECENT
        A E: WaitForChange
        B C: b3 STORE 1 +FLAGS (\\Answered)
        B S: * 1 FETCH (FLAGS (\\Answered))
        B S: * 3 EXISTS
        B S: b3 OK Store completed
        B C: b4 STORE 2 +FLAGS.SILENT (\\Deleted)
        B S: b4 OK Store completed
        B C: b5 EXPUNGE
        B S: * 2 EXPUNGE
        B S: b5 OK Expunge completed
        A X: idle_changed
        A S: * 2 EXPUNGE
        A S: * 2 RECENT
        A S: * 1 FETCH (FLAGS (\\Answered \\Recent))
        A E: WaitForChange
        A X: idle_keepalive
        A S: * OK Still here
        A E: WaitForChange
        A C: done
        A S: i1 OK Idle completed
        A C: i2 IDLE
        A S: + idling
        A E: WaitForChange
        A C: NOPE
        A S: i2 BAD Expected DONE.
        """,
        steps={"arrive": arrive},
    )


async def test_rfc2177_idle_when_authenticated_only_keeps_alive(
    make_session: SessionFactory,
) -> None:
    session = make_session()
    await run_transcript(
        session,
        f"""
        C: a1 LOGIN {ALICE} "{PASSWORD}"
        S: a1 OK [CAPABILITY {{*}}] Logged in
        C: i1 IDLE
        S: + idling
        E: WaitForChange
        X: idle_keepalive
        S: * OK Still here
        E: WaitForChange
        C: DONE
        S: i1 OK Idle completed
        """,
    )
    assert session.idle_wait is None


async def test_selected_folder_deleted_by_another_session(make_session: SessionFactory) -> None:
    await run_transcript(
        _pair(make_session),
        f"""
        A C: a1 LOGIN {ALICE} "{PASSWORD}"
        A S: a1 OK [CAPABILITY {{*}}] Logged in
        A C: a2 SELECT Archive
        A S: * FLAGS {{*}}
        A S: * OK [PERMANENTFLAGS {{*}}
        A S: * 0 EXISTS
        A S: * 0 RECENT
        A S: * OK [UIDVALIDITY {{*}}] UIDs valid
        A S: * OK [UIDNEXT 1] Predicted next UID
        A S: a2 OK [READ-WRITE] Select completed
        B C: b1 LOGIN {ALICE} "{PASSWORD}"
        B S: b1 OK [CAPABILITY {{*}}] Logged in
        B C: b2 DELETE Archive
        B S: b2 OK Delete completed
        A C: a3 NOOP
        A S: * BYE Selected mailbox was deleted, have to disconnect.
        A E: Close
        """,
    )


async def test_rfc9051_s5_5_pipelined_commands_answered_in_order(
    make_session: SessionFactory,
) -> None:
    session = make_session()
    data = (
        f'a1 LOGIN {ALICE} "{PASSWORD}"\r\na2 SELECT INBOX\r\n'
        "a3 FETCH 1 (FLAGS)\r\na4 APPEND INBOX {5+}\r\nhello\r\na5 NOOP\r\na6 LOGOUT\r\n"
    ).encode()
    lines = render(session, await exchange(session, data))
    tagged = [line.split()[1] for line in lines if line.startswith("S: a")]
    assert tagged == ["a1", "a2", "a3", "a4", "a5", "a6"]
    assert "S: * 3 EXISTS" in lines
    assert lines[-1] == "E: Close"


async def test_commands_behind_a_streamed_fetch_wait_for_it(make_session: SessionFactory) -> None:
    session = make_session()
    await exchange(session, f'a1 LOGIN {ALICE} "{PASSWORD}"\r\na2 SELECT INBOX\r\n'.encode())
    await exchange(session, b"a3 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    actions = await session.receive(b"a4 FETCH 1 (BODY.PEEK[TEXT])\r\na5 EXPUNGE\r\n")
    # The FETCH is a stream; the EXPUNGE waits in the parser until it is written.
    assert session.more
    lines = render(session, await expand(actions))
    assert lines == [
        "S: * 1 FETCH (BODY[TEXT] {13}",
        "S: Hello Alice",
        "S: )",
        "S: a4 OK Fetch completed",
    ]
    rest = render(session, await exchange(session, b""))
    assert rest == ["S: * 1 EXPUNGE", "S: * 1 RECENT", "S: a5 OK Expunge completed"]
