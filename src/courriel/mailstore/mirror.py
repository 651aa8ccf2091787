"""An in-process, bounded mirror of the message metadata of recently selected folders.

SELECT of a 10,000-message folder used to read and build 10,000 ``MessageMeta`` each
time. The mirror keeps, per folder, the immutable list of its messages as of one
change-feed position; :class:`courriel.mailstore.imapstore.SqlImapStore` brings an
entry up to date with the folder's ``changes`` rows after that position (one small
statement, :func:`courriel.mailstore.selected.read_since`) and hands sessions a copy of
the list, whose ``MessageMeta`` objects are shared (they are frozen).

Invariants:
    * An entry reflects exactly the folder's messages at ``position`` (the account's
      change id the statement that produced it saw): entries are only ever built from
      a full read or from an older entry plus every change row of the folder after its
      position, read in one statement.
    * An entry is used only while the folder row found by name has the same id and
      UIDVALIDITY and no folder change (CREATE, DELETE, RENAME: ``changes`` rows of
      kind ``"folders"``) happened in the account after its position; otherwise the
      folder is read in full again. Moves of messages between folders without change
      rows happen only in RENAME, so this covers every writer, in any process.
    * Entries never go back in time: :meth:`FolderMirror.put` keeps the newer one.
    * The total number of mirrored messages stays within ``max_messages``, least
      recently used folders out first; a folder larger than the budget is not kept.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from courriel.mailstore.flags import SYSTEM_FLAGS
from courriel.mailstore.imapport import FolderDelta, MessageMeta

__all__ = ["DEFAULT_MAX_MESSAGES", "FolderMirror", "MirrorEntry", "advance", "keywords_of"]

DEFAULT_MAX_MESSAGES = 200_000  # about 60-80 MB of metadata, shared with the sessions
_SYSTEM = frozenset(flag.casefold() for flag in SYSTEM_FLAGS)
# Deltas up to this size are patched in place (bisect); larger ones rebuild the list.
_PATCH_LIMIT = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorEntry:
    """One folder's messages as of an account change-feed position."""

    account_id: int
    folder_id: int
    name: str  # the folder's name when the entry was made (the mirror's key)
    uidvalidity: int
    position: int  # the account's newest change id the entry reflects
    uids: tuple[int, ...]  # ascending; uids[i] == messages[i].uid
    messages: tuple[MessageMeta, ...]
    keywords: frozenset[str]  # keywords in use, one spelling each (RFC 9051 §2.3.2)


def keywords_of(metas: Iterable[MessageMeta]) -> frozenset[str]:
    """The keywords in use among ``metas``, one spelling per case-folded keyword."""
    keywords: dict[str, str] = {}
    # Most messages share a few flag sets: look at each distinct one once.
    for flags in {m.flags for m in metas}:
        for flag in flags:
            folded = flag.casefold()
            if folded not in _SYSTEM:
                keywords.setdefault(folded, flag)
    return frozenset(keywords.values())


def _has_keyword(metas: Iterable[MessageMeta]) -> bool:
    return any(flag.casefold() not in _SYSTEM for m in metas for flag in m.flags)


def _patch(
    uids: list[int], metas: list[MessageMeta], delta: FolderDelta
) -> list[MessageMeta] | None:
    """Apply expunges and flag updates in place; return the metas they replaced.

    Returns None when the delta names a UID the entry lacks (then rebuild in full).
    """
    replaced: list[MessageMeta] = []
    for new in delta.updated:
        i = bisect.bisect_left(uids, new.uid)
        if i == len(uids) or uids[i] != new.uid:
            return None
        replaced.append(metas[i])
        metas[i] = new
    for uid in sorted(delta.expunged, reverse=True):
        i = bisect.bisect_left(uids, uid)
        if i == len(uids) or uids[i] != uid:
            return None
        replaced.append(metas[i])
        del uids[i], metas[i]
    return replaced


def advance(entry: MirrorEntry, delta: FolderDelta) -> MirrorEntry | None:
    """The entry after ``delta`` (read after ``entry.position``), or None if they disagree.

    A delta that names a UID the entry does not hold, or adds a UID not above the
    largest one, cannot follow from the entry: the caller then reads the folder in full.
    """
    if delta.gone:
        return None
    uids, metas = list(entry.uids), list(entry.messages)
    replaced: Sequence[MessageMeta] | None
    if len(delta.updated) + len(delta.expunged) <= _PATCH_LIMIT:
        replaced = _patch(uids, metas, delta)
        if replaced is None:
            return None
    else:
        gone = set(delta.expunged)
        new = {m.uid: m for m in delta.updated}
        replaced = [m for m in metas if m.uid in gone or m.uid in new]
        metas = [new.get(m.uid, m) for m in metas if m.uid not in gone]
        uids = [m.uid for m in metas]
        if len(replaced) != len(gone) + len(new):
            return None
    if delta.added:
        if uids and delta.added[0].uid <= uids[-1]:
            return None
        metas.extend(delta.added)
        uids.extend(m.uid for m in delta.added)
    if _has_keyword(replaced):
        # A keyword may have lost its last message: count again (rare).
        keywords = keywords_of(metas)
    else:
        keywords = entry.keywords | keywords_of([*delta.updated, *delta.added])
    return MirrorEntry(
        account_id=entry.account_id,
        folder_id=entry.folder_id,
        name=entry.name,
        uidvalidity=entry.uidvalidity,
        position=delta.last_change_id,
        uids=tuple(uids),
        messages=tuple(metas),
        keywords=keywords,
    )


class FolderMirror:
    """Mirror entries by ``(account id, folder name)``, least recently used out first.

    Args:
        max_messages: the budget, in messages over all entries.
    """

    def __init__(self, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        self.max_messages = max_messages
        self._entries: OrderedDict[tuple[int, str], MirrorEntry] = OrderedDict()
        self._held = 0
        self.full_reads = 0  # folders read in full (no entry, or an unusable one)
        self.delta_reads = 0  # entries brought up to date from change rows

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held(self) -> int:
        """Messages held now, over all entries."""
        return self._held

    def get(self, account_id: int, name: str) -> MirrorEntry | None:
        """The entry of a folder name, or None."""
        key = (account_id, name)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, entry: MirrorEntry) -> None:
        """Keep ``entry`` unless a newer one of the same folder is held already."""
        key = (entry.account_id, entry.name)
        old = self._entries.get(key)
        if old is not None:
            if old.folder_id == entry.folder_id and old.position > entry.position:
                return
            self._held -= len(old.messages)
            del self._entries[key]
        if len(entry.messages) > self.max_messages:
            return
        self._entries[key] = entry
        self._held += len(entry.messages)
        while self._held > self.max_messages:
            _, dropped = self._entries.popitem(last=False)
            self._held -= len(dropped.messages)

    def discard(self, account_id: int, name: str) -> None:
        """Forget a folder's entry (it could not be brought up to date)."""
        old = self._entries.pop((account_id, name), None)
        if old is not None:
            self._held -= len(old.messages)
