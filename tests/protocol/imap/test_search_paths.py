"""SEARCH's fast paths give the answers of the one-message evaluator, message by message.

``_matching`` answers from flag/date memos, shared header columns and per-message
tests; here each of its answers is compared with :func:`search.matches` applied to
every message, over a folder whose messages vary in senders, subjects (RFC 2047
encoded too), flags and dates, before and after messages arrive and go.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.errors import NotFound
from courriel.mailstore.imapport import FolderDelta, FolderSnapshot, MessageMeta
from courriel.mailstore.types import Principal
from courriel.protocols.imap.cache import MessageCache
from courriel.protocols.imap.commands import search as command
from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.search import Candidate, matches
from courriel.protocols.imap.searchcolumns import Column, ColumnCache
from courriel.protocols.imap.selected import SelectedFolder, UpdateOptions
from courriel.protocols.imap.types import SearchKey, SeqSet

WORDS = ("order", "Invoice", "ship\u00e9", "r\u00e9sum\u00e9", "gift")


def _message(n: int) -> bytes:
    word = WORDS[n % len(WORDS)]
    subject = f"{word} #{n}"
    if n % 4 == 0:  # an encoded word, decoded before searching
        subject = f"=?utf-8?b?{base64.b64encode(subject.encode()).decode()}?="
    cc = f"Cc: Team {n % 3} <team{n % 3}@example.org>\r\n" if n % 2 else ""
    return (
        f"From: Customer {n % 7} <customer{n % 7}@example.test>\r\n"
        f"To: shop@example.test\r\n{cc}"
        f"Subject: {subject}\r\n"
        f"X-Tag: t{n % 5}\r\n"
        "\r\n"
        f"body {n}\r\n"
    ).encode()


def _meta(n: int) -> MessageMeta:
    flags = {0: frozenset(), 1: frozenset({"\\Flagged"}), 2: frozenset({"\\Seen", "$Work"})}
    return MessageMeta(
        message_id=n,
        uid=n,
        flags=flags[n % 3],
        modseq=n,
        size=len(_message(n)),
        internal_date=datetime(2026, 1, 1 + n % 28, 12, tzinfo=UTC),
        blob_key=f"k{n}",
    )


class _Session:
    """What ``_matching`` uses of a session: the view, the shared cache, message()."""

    def __init__(self, view: SelectedFolder, cache: MessageCache, gone: set[int]) -> None:
        self.view = view
        self.cache = cache
        self.gone = gone
        self.loads = 0
        self.account = 3

    def require_selected(self) -> SelectedFolder:
        return self.view

    def require_principal(self) -> Principal:
        return Principal(account_id=self.account, address="a@example.test", senders=frozenset())

    async def message(self, meta: MessageMeta) -> ParsedMessage:
        self.loads += 1
        if meta.uid in self.gone:
            raise NotFound("expunged")

        async def load() -> bytes:
            return _message(meta.uid)

        return await self.cache.get(meta.message_id, meta.blob_key, load)


def _folder(count: int) -> SelectedFolder:
    snap = FolderSnapshot(
        folder_id=1,
        name="INBOX",
        uidvalidity=7,
        uidnext=count + 1,
        highest_modseq=count,
        messages=[_meta(n) for n in range(1, count + 1)],
        recent_from=count - 5,
        keywords=frozenset({"$Work"}),
        last_change_id=1,
    )
    return SelectedFolder.from_snapshot(snap, readonly=False)


def _expected(view: SelectedFolder, key: SearchKey) -> list[int]:
    out = []
    for seq, uid in enumerate(view.uids, 1):
        meta = view.meta[uid]
        candidate = Candidate(
            seq=seq,
            uid=uid,
            flags=meta.flags,
            recent=uid in view.recent,
            size=meta.size,
            internal_date=meta.internal_date,
            modseq=meta.modseq,
        )
        message = ParsedMessage.parse(_message(uid))
        if matches(key, candidate, message, largest_seq=view.exists, largest_uid=view.largest_uid):
            out.append(uid)
    return out


def k(op: str, **kwargs: object) -> SearchKey:
    return SearchKey(op=op, **kwargs)  # type: ignore[arg-type]


def both(*keys: SearchKey) -> SearchKey:
    return SearchKey(op="AND", keys=keys)


KEYS = [
    k("FLAG", text="\\flagged"),
    k("FLAG", text="$work", negate=True),
    k("SINCE", day=date(2026, 1, 20)),
    both(k("SINCE", day=date(2026, 1, 10)), k("HEADER", field="FROM", text="CUSTOMER3")),
    k("HEADER", field="SUBJECT", text="r\u00e9sum"),
    k("HEADER", field="SUBJECT", text="#1"),
    k("HEADER", field="CC", text="team1@example.org"),
    k("HEADER", field="X-TAG", text="t4"),
    k("HEADER", field="X-TAG", text=""),  # has the field: the per-message path
    both(k("HEADER", field="FROM", text="customer"), k("HEADER", field="SUBJECT", text="gift")),
    both(k("FLAG", text="\\Seen"), k("HEADER", field="TO", text="shop")),
    both(k("UID", seqset=SeqSet(ranges=((3, 9),))), k("HEADER", field="SUBJECT", text="o")),
    k("OR", keys=(k("HEADER", field="SUBJECT", text="gift"), k("FLAG", text="\\Flagged"))),
    k("NOT", keys=(k("HEADER", field="FROM", text="customer1"),)),
    both(k("RECENT"), k("BODY", text="body 19")),
]


@pytest.mark.parametrize("key", KEYS)
async def test_every_path_agrees_with_the_evaluator(key: SearchKey) -> None:
    view = _folder(120)
    cache = MessageCache()
    session = _Session(view, cache, set())
    got = await command._matching(session, key)  # type: ignore[arg-type]
    assert got == _expected(view, key)
    # Again, from the warm caches and columns.
    assert await command._matching(session, key) == got  # type: ignore[arg-type]


async def test_columns_follow_arrivals_and_expunges_and_are_shared() -> None:
    view = _folder(100)
    cache = MessageCache()
    first = _Session(view, cache, set())
    key = k("HEADER", field="SUBJECT", text="gift")
    await command._matching(first, key)  # type: ignore[arg-type]
    assert len(cache.columns) == 1
    loads = first.loads

    # New messages arrive: the column grows by them alone.
    added = [_meta(n) for n in range(101, 131)]
    delta = FolderDelta(
        added=added, updated=[], expunged=[5, 10, 15], uidnext=131, highest_modseq=131,
        last_change_id=2,
    )  # fmt: skip
    view.apply(delta, UpdateOptions(allow_expunge=True))
    assert await command._matching(first, key) == _expected(view, key)  # type: ignore[arg-type]
    assert first.loads - loads == 30

    # A second session (same folder, same server) uses the same column.
    other = _Session(_folder(130), cache, {5, 10, 15})
    before = other.loads
    assert await command._matching(other, key) == _expected(other.view, key)  # type: ignore[arg-type]
    assert other.loads == before


async def test_columns_are_never_shared_between_accounts() -> None:
    # SQLite may give a deleted folder's id to another account's folder, and two
    # accounts' folders may have the same UIDVALIDITY.
    cache = MessageCache()
    key = k("HEADER", field="SUBJECT", text="gift")
    first = _Session(_folder(70), cache, set())
    await command._matching(first, key)  # type: ignore[arg-type]
    other = _Session(_folder(70), cache, set())
    other.account = 4
    await command._matching(other, key)  # type: ignore[arg-type]
    assert len(cache.columns) == 2


async def test_a_message_gone_while_the_column_is_built_matches_nothing() -> None:
    view = _folder(80)
    session = _Session(view, MessageCache(), {40})
    key = k("HEADER", field="FROM", text="customer")
    got = await command._matching(session, key)  # type: ignore[arg-type]
    assert 40 not in got
    assert len(got) == 79


def test_column_hits_never_span_two_messages() -> None:
    column = Column()
    column.extend([1, 2], ["ab", "cd"])
    column.extend([5], [""])
    column.extend([6], ["b\x01c"])
    assert column.find("ab") == {1}
    assert column.find("bc") == set()
    assert column.find("c") == {2, 6}
    assert column.text[column.starts[3] :] == "b\x01c"


async def test_the_column_cache_is_bounded() -> None:
    cache = ColumnCache(max_columns=2)

    async def load(meta: MessageMeta) -> ParsedMessage | None:
        return ParsedMessage.parse(_message(meta.uid))

    view = _folder(10)
    for name in ("SUBJECT", "FROM", "TO"):
        await cache.column(
            (3, 1, 7), name, address=False, view_uids=view.uids, meta=view.meta, load=load
        )
    assert len(cache) == 2


@settings(max_examples=40, deadline=None)
@given(
    needle=st.text(alphabet="abcdeiorstu #1\u00e9@.", min_size=1, max_size=6),
    field=st.sampled_from(["SUBJECT", "FROM", "CC", "X-TAG"]),
)
def test_any_needle_agrees_with_the_evaluator(needle: str, field: str) -> None:
    view = _folder(90)
    session = _Session(view, MessageCache(), set())
    key = k("HEADER", field=field, text=needle)
    got = asyncio.run(command._matching(session, key))  # type: ignore[arg-type]
    assert got == _expected(view, key)
