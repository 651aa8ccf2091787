"""The selected-folder view: sequence numbers, pending expunges, update ordering."""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.mailstore.imapport import FolderDelta, FolderSnapshot, MessageMeta
from courriel.protocols.imap.selected import SelectedFolder, UpdateOptions
from courriel.protocols.imap.types import STAR, SeqSet

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def meta(uid: int, *flags: str, modseq: int = 1) -> MessageMeta:
    return MessageMeta(
        message_id=uid,
        uid=uid,
        flags=frozenset(flags),
        modseq=modseq,
        size=10,
        internal_date=WHEN,
        blob_key=f"k{uid}",
    )


def view(*uids: int, recent_from: int = 100, readonly: bool = False) -> SelectedFolder:
    snap = FolderSnapshot(
        folder_id=1,
        name="INBOX",
        uidvalidity=7,
        uidnext=max(uids, default=0) + 1,
        highest_modseq=1,
        messages=[meta(u) for u in uids],
        recent_from=recent_from,
        keywords=frozenset(),
        last_change_id=5,
    )
    return SelectedFolder.from_snapshot(snap, readonly=readonly)


def delta(**kw: object) -> FolderDelta:
    base: dict[str, object] = {
        "added": [],
        "updated": [],
        "expunged": [],
        "uidnext": 1,
        "highest_modseq": 1,
        "last_change_id": 6,
    }
    base.update(kw)
    return FolderDelta(**base)  # type: ignore[arg-type]


ALLOW = UpdateOptions(allow_expunge=True)
HOLD = UpdateOptions(allow_expunge=False)


def test_snapshot_numbers_and_recent() -> None:
    v = view(3, 5, 9, recent_from=5)
    assert v.exists == 3
    assert v.seq_of(5) == 2
    assert v.seq_of(4) is None
    assert v.recent == {5, 9}
    assert v.flags_of(9) == ["\\Recent"]
    assert v.flags_of(9, rev1=False) == []


def test_resolve_sequence_and_uid_sets() -> None:
    v = view(3, 5, 9)
    assert v.resolve(SeqSet(((2, STAR),)), uid=False) == [5, 9]
    assert v.resolve(SeqSet(((4, 4),)), uid=False) is None  # beyond EXISTS
    assert v.resolve(SeqSet(((4, 4294967295),)), uid=True) == [5, 9]  # never expanded
    assert v.resolve(SeqSet(((STAR, STAR),)), uid=True) == [9]
    # Dovecot: "1:*" in an empty mailbox is an invalid message set.
    assert view().resolve(SeqSet(((1, STAR),)), uid=False) is None


def test_rfc9051_s7_5_1_expunge_held_while_not_allowed() -> None:
    v = view(1, 2, 3)
    lines = v.apply(delta(expunged=[2], last_change_id=7), HOLD)
    assert lines == []
    assert v.exists == 3 and v.seq_of(3) == 3  # numbers still valid for the client
    assert v.last_change_id == 7
    assert v.apply(delta(last_change_id=7), ALLOW) == [b"2 EXPUNGE"]
    assert v.uids == [1, 3]


def test_expunges_are_renumbered_ascending() -> None:
    v = view(1, 2, 3, 4, 5)
    # RFC 9051 §7.5.1 example: each EXPUNGE renumbers the ones after it.
    assert v.remove([2, 3, 5]) == [b"2 EXPUNGE", b"2 EXPUNGE", b"3 EXPUNGE"]
    assert v.uids == [1, 4]


def test_order_expunge_exists_recent_fetch() -> None:
    v = view(1, 2)
    d = delta(
        added=[meta(3)],
        updated=[meta(1, "\\Seen", modseq=4)],
        expunged=[2],
        recent_from=3,
        uidnext=4,
        highest_modseq=4,
    )
    assert v.apply(d, ALLOW) == [
        b"2 EXPUNGE",
        b"2 EXISTS",
        b"1 RECENT",
        b"1 FETCH (FLAGS (\\Seen))",
    ]
    assert v.uidnext == 4 and v.highest_modseq == 4


def test_exists_counts_held_expunges_and_rev2_has_no_recent() -> None:
    v = view(1, 2)
    rev2 = UpdateOptions(allow_expunge=False, rev1=False)
    assert v.apply(delta(added=[meta(3)], expunged=[1], recent_from=3), rev2) == [b"3 EXISTS"]


def test_own_store_is_not_echoed_but_others_are() -> None:
    v = view(1, 2)
    v.set_meta([meta(1, "\\Flagged", modseq=3)])
    echo = delta(updated=[meta(1, "\\Flagged", modseq=3)])
    assert v.apply(echo, ALLOW) == []
    other = delta(updated=[meta(2, "$Label", modseq=4)])
    cond = UpdateOptions(allow_expunge=True, uid=True, condstore=True)
    assert v.apply(other, cond) == [b"2 FETCH (UID 2 FLAGS ($Label) MODSEQ (4))"]
    assert "$Label" in v.keywords


def test_stale_update_is_ignored() -> None:
    v = view(1)
    v.set_meta([meta(1, "\\Seen", modseq=5)])
    assert v.apply(delta(updated=[meta(1, modseq=4)]), ALLOW) == []
    assert v.flags_of(1) == ["\\Seen"]


def test_first_unseen() -> None:
    v = view(1, 2)
    v.set_meta([meta(1, "\\Seen", modseq=2)])
    assert v.first_unseen() == 2
