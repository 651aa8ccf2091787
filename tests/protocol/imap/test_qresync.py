"""QRESYNC (RFC 7162 §3.2) pinned by transcripts, one test per subsection, on both databases.

Values the store chooses (UIDVALIDITY, modseqs) are read from a first session's view and
put into the transcripts, so every line is compared in full.
"""

from __future__ import annotations

import asyncio
import imaplib
import re
import ssl

from courriel.mailstore.service import MailStore
from courriel.protocols.imap.commands.qresync import qresync_problem
from courriel.protocols.imap.session import ImapSession
from courriel.protocols.imap.types import SeqSet
from courriel.testing.imap import exchange, render, run_transcript

from .conftest import ALICE, MSG1, MSG2, PASSWORD, ServerFactory, SessionFactory, deliver

LOGIN = f'C: a1 LOGIN {ALICE} "{PASSWORD}"\nS: a1 OK [CAPABILITY {{*}}] Logged in'
OPENING = """
S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
S: * OK [PERMANENTFLAGS ({*} \\*)] Flags permitted.
S: * {exists} EXISTS
S: * 0 RECENT
S: * OK [UNSEEN {unseen}] First unseen.
S: * OK [UIDVALIDITY {v}] UIDs valid
S: * OK [UIDNEXT 5] Predicted next UID
S: * OK [HIGHESTMODSEQ {*}] Highest
"""


async def _login(session: ImapSession, *, qresync: bool = True) -> None:
    out = render(session, await exchange(session, f'a1 LOGIN {ALICE} "{PASSWORD}"\r\n'.encode()))
    assert out[-1].startswith("S: a1 OK [CAPABILITY ")
    if qresync:
        out = render(session, await exchange(session, b"a2 ENABLE QRESYNC\r\n"))
        assert out == ["S: * ENABLED QRESYNC", "S: a2 OK Enabled"]


async def _history(mail: MailStore, make_session: SessionFactory) -> tuple[int, int]:
    """Four messages; after modseq M: UID 2 seen, UID 1 expunged, UID 3 moved to Trash.

    Returns (UIDVALIDITY, M). The session that made the changes is logged out.
    """
    await deliver(mail, ALICE, MSG1)
    await deliver(mail, ALICE, MSG2)
    a = make_session()
    await _login(a, qresync=False)
    await exchange(a, b"s1 SELECT INBOX\r\n")
    view = a.selected
    assert view is not None and view.uids == [1, 2, 3, 4]
    before = view.highest_modseq
    await exchange(a, b"s2 STORE 2 +FLAGS (\\Seen)\r\ns3 STORE 1 +FLAGS (\\Deleted)\r\n")
    await exchange(a, b"s4 EXPUNGE\r\ns5 UID MOVE 3 Trash\r\ns6 LOGOUT\r\n")
    return view.uidvalidity, before


async def test_rfc7162_s3_2_capability_and_enable(make_session: SessionFactory) -> None:
    session = make_session()
    await run_transcript(
        session,
        LOGIN
        + """
        C: c1 CAPABILITY
        S: * CAPABILITY {*} CONDSTORE QRESYNC {*}
        S: c1 OK Capability completed
        C: c2 ENABLE QRESYNC
        S: * ENABLED QRESYNC
        S: c2 OK Enabled
        C: c3 ENABLE QRESYNC
        S: * ENABLED
        S: c3 OK Enabled
        """,
    )
    # RFC 7162 §3.2: QRESYNC implies CONDSTORE (HIGHESTMODSEQ, MODSEQ in FETCH).
    assert session.enabled.qresync and session.enabled.condstore


async def test_rfc7162_s3_2_5_select_parameter_refused(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = make_session()
    await run_transcript(
        session,
        LOGIN
        + """
        C: s1 SELECT INBOX (QRESYNC (1 1))
        S: s1 BAD Error in IMAP command SELECT: QRESYNC not enabled
        C: s2 ENABLE QRESYNC
        S: * ENABLED QRESYNC
        S: s2 OK Enabled
        C: s3 EXAMINE INBOX (QRESYNC (1 1 1:2 (1:2 3)))
        S: s3 BAD Error in IMAP command EXAMINE: Invalid QRESYNC sets
        """,
    )
    assert session.selected is None
    # Overlapping and reversed ranges count each number once; ``*`` ranges do not count.
    pairs = SeqSet(ranges=((1, 3), (2, 4), (9, 8))), SeqSet(ranges=((10, 15),))
    assert qresync_problem(session, (1, 1, None, pairs)) == ""


async def test_rfc7162_s3_2_5_uidvalidity_mismatch_is_a_plain_select(
    mail: MailStore, make_session: SessionFactory
) -> None:
    validity, modseq = await _history(mail, make_session)
    session = make_session()
    await _login(session)
    opening = OPENING.replace("{exists}", "2").replace("{unseen}", "2")
    await run_transcript(
        session,
        f"C: s1 SELECT INBOX (QRESYNC ({validity + 1} {modseq}))"
        + opening.replace("{v}", str(validity))
        + "S: s1 OK [READ-WRITE] Select completed",
    )


async def test_rfc7162_s3_2_5_select_resynchronises(
    mail: MailStore, make_session: SessionFactory
) -> None:
    validity, modseq = await _history(mail, make_session)
    session = make_session()
    await _login(session)
    opening = (
        OPENING.replace("{exists}", "2").replace("{unseen}", "2").replace("{v}", str(validity))
    )
    await run_transcript(
        session,
        f"C: s1 SELECT INBOX (QRESYNC ({validity} {modseq}))"
        + opening
        + f"""
        S: * VANISHED (EARLIER) 1,3
        S: * 1 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ({{*}}))
        S: s1 OK [READ-WRITE] Select completed
        # Known UIDs limit both the vanished and the changed messages.
        C: s2 EXAMINE INBOX (QRESYNC ({validity} {modseq} 3:4 (1:2 3:4)))
        S: * OK [CLOSED] Previous mailbox closed.
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [PERMANENTFLAGS ()] Read-only mailbox.
        S: * 2 EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 2] First unseen.
        S: * OK [UIDVALIDITY {validity}] UIDs valid
        S: * OK [UIDNEXT 5] Predicted next UID
        S: * OK [HIGHESTMODSEQ {{*}}] Highest
        S: * VANISHED (EARLIER) 3
        S: s2 OK [READ-ONLY] Examine completed
        """,
    )
    view = session.selected
    assert view is not None
    # Nothing changed after the current HIGHESTMODSEQ: only the normal responses.
    out = render(
        session,
        await exchange(
            session, b"s3 SELECT INBOX (QRESYNC (%d %d))\r\n" % (validity, view.highest_modseq)
        ),
    )
    assert not [line for line in out if "VANISHED" in line or "FETCH" in line]
    assert out[-1] == "S: s3 OK [READ-WRITE] Select completed"


async def test_rfc7162_s3_2_6_uid_fetch_vanished(
    mail: MailStore, make_session: SessionFactory
) -> None:
    validity, modseq = await _history(mail, make_session)
    plain = make_session()
    await _login(plain, qresync=False)
    await run_transcript(
        plain,
        f"""
        C: s1 SELECT INBOX
        S: {{*}}
        S: {{*}}
        S: {{*}}
        S: {{*}}
        S: {{*}}
        S: {{*}}
        S: {{*}}
        S: s1 OK [READ-WRITE] Select completed
        C: f1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)
        S: f1 BAD Error in IMAP command UID FETCH: QRESYNC not enabled
        """,
    )
    session = make_session()
    await _login(session)
    await exchange(session, b"s1 SELECT INBOX\r\n")
    await run_transcript(
        session,
        f"""
        C: f1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)
        S: * VANISHED (EARLIER) 1,3
        S: * 1 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ({{*}}))
        S: f1 OK Fetch completed
        C: f2 UID FETCH 2:4 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)
        S: * VANISHED (EARLIER) 3
        S: * 1 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ({{*}}))
        S: f2 OK Fetch completed
        C: f3 UID FETCH 4 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)
        S: f3 OK Fetch completed
        C: f4 UID FETCH 1:* (FLAGS) (VANISHED)
        S: f4 BAD {{*}}
        C: f5 FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)
        S: f5 BAD {{*}}
        """,
    )
    assert validity > 0


async def test_rfc7162_s3_2_10_vanished_replaces_expunge(
    mail: MailStore, make_session: SessionFactory
) -> None:
    await deliver(mail, ALICE, MSG1)
    await deliver(mail, ALICE, MSG2)
    a, b = make_session(), make_session()
    await _login(a)
    await _login(b)
    await exchange(a, b"s1 SELECT INBOX\r\n")
    await exchange(b, b"s1 SELECT INBOX\r\n")
    await run_transcript(
        {"A": a, "B": b},
        """
        # RFC 7162 §3.2.7: EXPUNGE answers VANISHED and the new HIGHESTMODSEQ.
        A C: e1 STORE 1:2 +FLAGS.SILENT (\\Deleted)
        A S: * 1 FETCH (UID 1 MODSEQ ({*}))
        A S: * 2 FETCH (UID 2 MODSEQ ({*}))
        A S: e1 OK Store completed
        A C: e2 EXPUNGE
        A S: * VANISHED 1:2
        A S: * 2 RECENT
        A S: e2 OK [HIGHESTMODSEQ {*}] Expunge completed
        # Another session's expunges: not while answering FETCH (RFC 9051 §7.5.1: the
        # view is still the one before them), then one VANISHED.
        B C: n1 FETCH 1 (FLAGS)
        B S: * 1 FETCH (UID 1 FLAGS () MODSEQ ({*}))
        B S: n1 OK Fetch completed
        B C: n2 NOOP
        B S: * VANISHED 1:2
        B S: n2 OK NOOP completed
        # RFC 7162 §3.2.9 UID EXPUNGE, and MOVE (RFC 6851) with QRESYNC.
        A C: e3 UID STORE 3 +FLAGS.SILENT (\\Deleted)
        A S: * 1 FETCH (UID 3 MODSEQ ({*}))
        A S: e3 OK Store completed
        A C: e4 UID EXPUNGE 3:4
        A S: * VANISHED 3
        A S: * 1 RECENT
        A S: e4 OK [HIGHESTMODSEQ {*}] Expunge completed
        A C: e5 MOVE 1 Trash
        A S: * OK [COPYUID {*} 4 1] Moved UIDs.
        A S: * VANISHED 4
        A S: * 0 RECENT
        A S: e5 OK [HIGHESTMODSEQ {*}] Move completed
        A C: e6 UID EXPUNGE 1:*
        A S: e6 OK Expunge completed
        B C: n3 UID FETCH 1:* (FLAGS)
        B S: * VANISHED 3:4
        B S: n3 OK Fetch completed
        # RFC 7162 §3.2.8: CLOSE expunges silently.
        B C: c1 CLOSE
        B S: c1 OK Close completed
        """,
    )
    view = a.selected
    assert view is not None and view.exists == 0


async def test_rfc7162_s3_2_7_condstore_alone_keeps_expunge(
    mail: MailStore, make_session: SessionFactory
) -> None:
    session = make_session()
    await _login(session, qresync=False)
    await run_transcript(
        session,
        """
        C: e0 ENABLE CONDSTORE
        S: * ENABLED CONDSTORE
        S: e0 OK Enabled
        C: e1 SELECT INBOX
        S: {*}
        S: {*}
        S: * 2 EXISTS
        S: {*}
        S: {*}
        S: {*}
        S: {*}
        S: {*}
        S: e1 OK [READ-WRITE] Select completed
        C: e2 STORE 2 +FLAGS.SILENT (\\Deleted)
        S: * 2 FETCH (UID 2 MODSEQ ({*}))
        S: e2 OK Store completed
        C: e3 EXPUNGE
        S: * 2 EXPUNGE
        S: * 1 RECENT
        S: e3 OK Expunge completed
        """,
    )


async def test_rfc7162_s3_2_over_sockets_with_imaplib(
    mail: MailStore, start_server: ServerFactory, client_tls: ssl.SSLContext
) -> None:
    """The stdlib client, over TLS: one session expunges, a second one resynchronises."""
    server = await start_server(implicit_tls=True)

    def client() -> dict[str, object]:
        out: dict[str, object] = {}
        first = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=client_tls, timeout=10)
        out["caps"] = first.login(ALICE, PASSWORD)[1]
        first.enable("QRESYNC")
        first.select("INBOX")
        validity, modseq = (
            first.response("UIDVALIDITY")[1][-1],
            first.response("HIGHESTMODSEQ")[1][-1],
        )
        assert isinstance(validity, bytes) and isinstance(modseq, bytes)
        first.store("1", "+FLAGS.SILENT", "(\\Deleted)")
        out["expunge"] = first.expunge()
        out["vanished"] = first.response("VANISHED")
        first.logout()
        second = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=client_tls, timeout=10)
        second.login(ALICE, PASSWORD)
        second.enable("QRESYNC")
        out["select"] = second._simple_command(
            "SELECT", "INBOX", f"(QRESYNC ({validity.decode()} {modseq.decode()}))"
        )
        out["earlier"] = second.response("VANISHED")
        out["exists"] = second.response("EXISTS")
        second.logout()
        return out

    out = await asyncio.to_thread(client)
    assert re.search(rb"\bQRESYNC\b", out["caps"][0])  # type: ignore[index]
    assert out["expunge"][0] == "OK"  # type: ignore[index]
    # imaplib files VANISHED as an untagged response of its own (not as EXPUNGE).
    assert out["vanished"] == ("VANISHED", [b"1"])
    assert out["select"][0] == "OK"  # type: ignore[index]
    assert out["earlier"] == ("VANISHED", [b"(EARLIER) 1"])
    assert out["exists"] == ("EXISTS", [b"1"])
