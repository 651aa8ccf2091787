"""Mutated commands against a logged-in, selected session (conventions §9).

Whatever the client sends, the session answers with OK, NO or BAD, never with an
internal error (``[SERVERBUG]``) and never by raising. Mutations are seeded, so a
failure replays exactly.
"""

from __future__ import annotations

import logging
import random

import pytest

from courriel.protocols.imap.actions import Close, Send, Tagged
from courriel.testing.imap import exchange

from .conftest import ALICE, PASSWORD, SessionFactory

SEEDS = [
    "FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)",
    "FETCH 2 (BODY.PEEK[1.MIME] BINARY.PEEK[2]<0.2> BINARY.SIZE[1] BODY[HEADER.FIELDS (TO)])",
    "UID FETCH 1:4294967295 (MODSEQ) (CHANGEDSINCE 1)",
    "STORE 1:2 +FLAGS.SILENT (\\Seen $Junk)",
    "UID STORE 1,2 (UNCHANGEDSINCE 5) -FLAGS (\\Flagged)",
    "SEARCH OR FROM carol SUBJECT two NOT SEEN SINCE 1-Jan-2020 LARGER 10",
    "UID SEARCH RETURN (MIN MAX COUNT) UID 1:* MODSEQ 1",
    "COPY 1:2 Archive",
    "UID MOVE 2 Trash",
    "EXPUNGE",
    "UID EXPUNGE 1:*",
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*" RETURN (CHILDREN STATUS (MESSAGES SIZE))',
    'LSUB "" %',
    "STATUS INBOX (MESSAGES UIDNEXT UNSEEN DELETED SIZE HIGHESTMODSEQ RECENT)",
    "CREATE a/b/c",
    "RENAME a/b x/y",
    "DELETE x/y",
    "SUBSCRIBE Archive",
    "APPEND Archive (\\Seen) {11+}\r\nSubject: z\r",
    "EXAMINE INBOX",
    "SELECT INBOX (CONDSTORE)",
    "ENABLE CONDSTORE IMAP4rev2",
    "NAMESPACE",
    "ID NIL",
    "CHECK",
    "UNSELECT",
    "CLOSE",
]
TOKENS = [
    "*",
    "0",
    "4294967296",
    "1:*",
    "(",
    ")",
    '"',
    "{3}",
    "\\",
    "~{1}",
    "NIL",
    "[",
    "]",
    "<0.5>",
]


def _mutate(rng: random.Random, line: str) -> str:
    parts = line.split(" ")
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(4)
        i = rng.randrange(len(parts))
        if choice == 0:
            parts[i] = rng.choice(TOKENS)
        elif choice == 1 and len(parts) > 1:
            del parts[i]
        elif choice == 2:
            parts.insert(i, rng.choice(TOKENS))
        else:
            word = parts[i]
            if word:
                j = rng.randrange(len(word))
                parts[i] = word[:j] + chr(rng.randrange(32, 127)) + word[j + 1 :]
    return " ".join(parts)


async def test_mutated_commands_never_break_the_session(
    make_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(4)
    session = make_session()
    await exchange(session, f'l LOGIN {ALICE} "{PASSWORD}"\r\ns SELECT INBOX\r\n'.encode())
    answered = 0
    for n in range(300):
        line = rng.choice(SEEDS)
        if n % 3:
            line = _mutate(rng, line)
        actions = await exchange(session, f"t{n} {line}\r\n".encode())
        if any(isinstance(a, Close) for a in actions):
            break
        for action in actions:
            if isinstance(action, Tagged | Send):
                assert b"SERVERBUG" not in action.data, (line, action.data)
        # A command left waiting for a literal gets its end now (and a fresh line).
        if not any(isinstance(a, Tagged) for a in actions):
            await exchange(session, b"\r\n" * 3)
        answered += 1
        if session.selected is None:
            await exchange(session, b"r SELECT INBOX\r\n")
    assert answered > 100
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
