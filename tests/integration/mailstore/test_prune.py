"""Pruning the change feed: markers keep QRESYNC, sessions and the mirror correct."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from courriel.mailstore.messages import INBOX, expunge
from courriel.mailstore.prune import PRUNED, prune_changes
from courriel.mailstore.selected import expunged_since, read_delta, read_since
from courriel.mailstore.service import MailStore
from courriel.storage.models import changes, folders, messages, utcnow
from courriel.testing.mailstore import deliver_to


async def _deliver(store: MailStore, account_id: int, body: bytes) -> None:
    await deliver_to(store, [account_id], body)


async def test_prune_keeps_a_marker_and_forces_full_resync(mailstore: MailStore) -> None:
    db = mailstore.db
    await mailstore.add_domain("example.test")
    account = (await mailstore.add_account("a@example.test", "pw-123456")).id
    for n in range(4):
        await _deliver(mailstore, account, b"Subject: %d\r\n\r\nbody\r\n" % n)
    async with db.write() as conn:
        inbox = await conn.scalar(
            select(folders.c.id).where(folders.c.account_id == account, folders.c.name == INBOX)
        )
        assert inbox is not None
        ids = list(await conn.scalars(select(messages.c.id).where(messages.c.folder_id == inbox)))
        await expunge(conn, account_id=account, folder_id=inbox, message_ids=ids[:2])
        last = int(await conn.scalar(select(func.max(changes.c.id))) or 0)
    # Before pruning, QRESYNC from modseq 0 is exact: UIDs 1 and 2.
    async with db.read() as conn:
        assert await expunged_since(conn, account, inbox, 0) == [1, 2]
    assert await prune_changes(db, older_than=timedelta(days=30)) == 0  # nothing old yet

    deleted = await prune_changes(
        db, older_than=timedelta(days=30), now=utcnow() + timedelta(days=31)
    )
    async with db.read() as conn:
        rows = (await conn.execute(select(changes).where(changes.c.folder_id == inbox))).all()
        assert deleted == 5  # 4 appends + 2 expunges, one kept as the marker
        [marker] = rows
        assert (marker.kind, marker.id) == (PRUNED, last)
        # QRESYNC from before the horizon: every UID below UIDNEXT not in the folder.
        assert await expunged_since(conn, account, inbox, 0) == [1, 2]
        # From the horizon on, the answer is exact (nothing expunged since).
        assert await expunged_since(conn, account, inbox, int(marker.modseq)) == []
        # A session or mirror whose position is older than the marker must re-read.
        delta, _ = await read_delta(conn, account, inbox, 0)
        assert delta.gone
        assert (await read_since(conn, account, INBOX, 0)).folders_changed
        # One at the marker reads an exact (empty) delta.
        delta, _ = await read_delta(conn, account, inbox, last)
        assert not delta.gone and not delta.expunged and not delta.added
        assert int(await conn.scalar(select(func.max(changes.c.id))) or 0) == last
    # A second run finds nothing more to delete.
    assert (
        await prune_changes(db, older_than=timedelta(days=30), now=utcnow() + timedelta(days=31))
        == 0
    )
