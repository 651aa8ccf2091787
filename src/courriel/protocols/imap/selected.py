"""The selected folder as one IMAP session sees it (RFC 9051 §2.3.1, §7.4.1).

This module owns the session's view of its selected folder: the sequence-number ↔ UID
map, each message's flags and modseq, which messages are \\Recent for this session,
and the expunges the session has learnt of but not yet told the client.

Invariants:
    * ``uids`` ascends; the sequence number of ``uids[i]`` is ``i + 1``.
    * A message expunged by someone else stays in ``uids`` (marked in ``pending``) until
      an ``EXPUNGE`` response may be sent for it (RFC 9051 §7.5.1: not while answering
      FETCH, STORE or SEARCH), so the client's sequence numbers stay valid until then.
    * Every untagged response built here reflects the view after it was applied, in the
      order the client must apply them: EXPUNGE, then EXISTS (and RECENT), then FETCH.
    * Once QRESYNC is enabled, expunges are announced as one ``VANISHED uid-set`` line
      (RFC 7162 §3.2.10) under the same timing rules as EXPUNGE.
    * ``saved`` (RFC 5182's ``$``) belongs to this view, so a new SELECT or EXAMINE,
      CLOSE and UNSELECT forget it; an expunged message leaves it when the expunge is
      announced, the moment its sequence number stops being valid (RFC 5182 §2.1).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from courriel.mailstore.imapport import FolderDelta, FolderSnapshot, MessageMeta
from courriel.protocols.imap.encode import flag_list, number_set
from courriel.protocols.imap.types import STAR, SeqSet

__all__ = ["SelectedFolder", "UpdateOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateOptions:
    """How untagged updates are to be written for the command in progress."""

    allow_expunge: bool  # False while answering FETCH, STORE, SEARCH (non-UID)
    uid: bool = False  # add UID to FETCH responses (a UID command is in progress)
    condstore: bool = False  # add MODSEQ to FETCH responses (RFC 7162 §3.2)
    rev1: bool = True  # send RECENT (IMAP4rev1 only; RFC 9051 Appendix E)
    vanished: bool = False  # announce expunges as VANISHED (QRESYNC, RFC 7162 §3.2.10)


@dataclass(slots=True)
class SelectedFolder:
    """The view of one selected folder; build it with :meth:`from_snapshot`."""

    folder_id: int
    name: str
    readonly: bool
    uidvalidity: int
    uidnext: int
    highest_modseq: int
    last_change_id: int
    keywords: set[str]
    uids: list[int] = field(default_factory=list)
    meta: dict[int, MessageMeta] = field(default_factory=dict)
    recent: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)  # expunged, not yet announced
    told_exists: int = 0  # the EXISTS count the client knows
    told_recent: int = 0
    saved: list[int] = field(default_factory=list)  # RFC 5182: `$`, UIDs ascending

    @classmethod
    def from_snapshot(cls, snap: FolderSnapshot, *, readonly: bool) -> SelectedFolder:
        """The view of a freshly opened folder."""
        view = cls(
            folder_id=snap.folder_id,
            name=snap.name,
            readonly=readonly,
            uidvalidity=snap.uidvalidity,
            uidnext=snap.uidnext,
            highest_modseq=snap.highest_modseq,
            last_change_id=snap.last_change_id,
            keywords=set(snap.keywords),
        )
        # Comprehensions, not a loop of appends: SELECT of 10,000 messages spends its
        # time here once the store's mirror has made the snapshot cheap.
        view.uids = [m.uid for m in snap.messages]
        view.meta = dict(zip(view.uids, snap.messages, strict=True))
        # UIDs ascend: the \\Recent ones are a tail of the list.
        view.recent = set(view.uids[bisect.bisect_left(view.uids, snap.recent_from) :])
        view.told_exists = len(view.uids)
        view.told_recent = len(view.recent)
        return view

    # -- lookups ----------------------------------------------------------------------

    @property
    def exists(self) -> int:
        """The number of messages in the client's view (pending expunges included)."""
        return len(self.uids)

    @property
    def largest_uid(self) -> int:
        """The largest UID in the view, 0 when empty (``*`` in a UID set)."""
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of a UID in the view, or None."""
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def resolve(self, seqset: SeqSet, *, uid: bool) -> list[int] | None:
        """The UIDs a set names, ascending; None when a sequence number is out of range.

        RFC 9051 §6.4.8: UIDs that do not exist are ignored; sequence numbers above
        the message count are an error (Dovecot answers BAD).
        """
        if seqset.saved:
            # RFC 5182 §2.1: `$` names the same messages in UID and sequence forms.
            return [u for u in self.saved if u in self.meta]
        if uid:
            return self._resolve_uids(seqset)
        count = self.exists
        for low, high in seqset.ranges:
            if max(low, high) > count:
                return None
        return [self.uids[n - 1] for n in seqset.resolve(count)]

    def concrete(self, seqset: SeqSet, *, uid: bool) -> SeqSet:
        """``seqset`` itself, or for ``$`` the saved result as UIDs or sequence numbers."""
        if not seqset.saved:
            return seqset
        uids = [u for u in self.saved if u in self.meta]
        numbers = uids if uid else [self.seq_of(u) or 0 for u in uids]
        ranges: list[tuple[int, int]] = []
        for n in numbers:  # ascending: runs become ranges, so tests stay short
            if ranges and ranges[-1][1] == n - 1:
                ranges[-1] = (ranges[-1][0], n)
            else:
                ranges.append((n, n))
        return SeqSet(tuple(ranges))

    def _resolve_uids(self, seqset: SeqSet) -> list[int]:
        """The UIDs in the view that a UID set names, ascending (bisect per range)."""
        uids, largest = self.uids, self.largest_uid
        if not uids:
            return []
        found: set[int] = set()
        for low, high in seqset.ranges:
            a = largest if low == STAR else low
            b = largest if high == STAR else high
            a, b = min(a, b), max(a, b)
            found.update(uids[bisect.bisect_left(uids, a) : bisect.bisect_right(uids, b)])
        return sorted(found)

    def first_unseen(self) -> int | None:
        """The sequence number of the first message without \\Seen (RFC 3501 UNSEEN)."""
        for i, uid in enumerate(self.uids):
            if not _has(self.meta[uid].flags, "\\Seen"):
                return i + 1
        return None

    def flags_of(self, uid: int, *, rev1: bool = True) -> list[str]:
        """A message's flags as the client sees them, \\Recent included (IMAP4rev1)."""
        flags = sorted(self.meta[uid].flags, key=_flag_order)
        if rev1 and uid in self.recent:
            # After the system flags, before the keywords, as Dovecot writes them.
            at = sum(1 for f in flags if f.startswith("\\"))
            flags.insert(at, "\\Recent")
        return flags

    # -- changes ----------------------------------------------------------------------

    def set_meta(self, updated: list[MessageMeta]) -> None:
        """Record new flags and modseqs (of our own STORE) without telling anyone."""
        for m in updated:
            if m.uid in self.meta:
                self.meta[m.uid] = m
                self.keywords.update(f for f in m.flags if not f.startswith("\\"))
                self.highest_modseq = max(self.highest_modseq, m.modseq)

    def remove(self, uids: list[int], *, vanished: bool = False) -> list[bytes]:
        """Drop expunged messages now and return their ``EXPUNGE n`` lines.

        With ``vanished`` (QRESYNC enabled) the one line is ``VANISHED uid-set``.
        A changed \\Recent count is told by the next :meth:`apply`, after EXISTS.
        """
        self._mark(uids)
        return self.flush_expunges(vanished=vanished)

    def _recent_line(self, rev1: bool) -> list[bytes]:
        if len(self.recent) == self.told_recent:
            return []
        self.told_recent = len(self.recent)
        return [b"%d RECENT" % self.told_recent] if rev1 else []

    def _mark(self, uids: list[int]) -> list[bytes]:
        self.pending.update(u for u in uids if u in self.meta)
        return []

    def flush_expunges(self, *, vanished: bool = False) -> list[bytes]:
        """Announce the pending expunges (RFC 9051 §7.5.1), ascending, renumbered.

        With ``vanished``, one ``VANISHED uid-set`` line instead (RFC 7162 §3.2.10).
        """
        if not self.pending:
            return []
        lines: list[bytes] = []
        gone = sorted(self.pending)
        if vanished:
            lines.append(b"VANISHED " + number_set(gone).encode("ascii"))
        for removed, uid in enumerate(gone):
            seq = self.seq_of(uid)
            assert seq is not None  # pending UIDs are always in the view
            if not vanished:
                lines.append(b"%d EXPUNGE" % (seq - removed))
        keep = [u for u in self.uids if u not in self.pending]
        for uid in gone:
            del self.meta[uid]
            self.recent.discard(uid)
        if self.saved:
            # RFC 5182 §2.1: an expunged message leaves the saved result.
            self.saved = [u for u in self.saved if u in self.meta]
        self.uids = keep
        self.pending.clear()
        self.told_exists = len(self.uids)
        return lines

    def apply(self, delta: FolderDelta, opts: UpdateOptions) -> list[bytes]:
        """Apply a change-feed delta; return the untagged lines (without ``* ``)."""
        self._mark(delta.expunged)
        lines = self.flush_expunges(vanished=opts.vanished) if opts.allow_expunge else []
        lines += self._add(delta)
        # Like Dovecot: RECENT once, after EXPUNGE and EXISTS, when the count changed.
        lines += self._recent_line(opts.rev1)
        lines += self._flag_updates(delta.updated, opts)
        self.uidnext = max(self.uidnext, delta.uidnext)
        self.highest_modseq = max(self.highest_modseq, delta.highest_modseq)
        self.last_change_id = max(self.last_change_id, delta.last_change_id)
        return lines

    def _add(self, delta: FolderDelta) -> list[bytes]:
        for m in delta.added:
            if m.uid > self.largest_uid and m.uid not in self.pending:
                self.uids.append(m.uid)
                self.meta[m.uid] = m
                self.keywords.update(f for f in m.flags if not f.startswith("\\"))
                if delta.recent_from is not None and m.uid >= delta.recent_from:
                    self.recent.add(m.uid)
        lines: list[bytes] = []
        if self.exists != self.told_exists:
            # RFC 9051 §7.4.1: EXISTS never decreases except through EXPUNGE.
            lines.append(b"%d EXISTS" % self.exists)
            self.told_exists = self.exists
        return lines

    def _flag_updates(self, updated: list[MessageMeta], opts: UpdateOptions) -> list[bytes]:
        lines: list[bytes] = []
        for m in updated:
            old = self.meta.get(m.uid)
            if old is None or m.uid in self.pending:
                continue
            same_flags = _norm(old.flags) == _norm(m.flags)
            if same_flags and (not opts.condstore or old.modseq >= m.modseq):
                continue
            if old.modseq > m.modseq:
                continue  # an older state than the one we know (our own STORE)
            self.meta[m.uid] = m
            self.keywords.update(f for f in m.flags if not f.startswith("\\"))
            lines.append(self.fetch_flags_line(m.uid, opts))
        return lines

    def fetch_flags_line(self, uid: int, opts: UpdateOptions) -> bytes:
        """``n FETCH ([UID u] FLAGS (...) [MODSEQ (m)])`` for one message."""
        seq = self.seq_of(uid)
        items = [b"UID %d" % uid] if opts.uid else []
        items.append(b"FLAGS " + flag_list(self.flags_of(uid, rev1=opts.rev1)))
        if opts.condstore:
            items.append(b"MODSEQ (%d)" % self.meta[uid].modseq)
        return b"%d FETCH (" % (seq or 0) + b" ".join(items) + b")"


_SYSTEM_ORDER = {
    "\\answered": 0,
    "\\flagged": 1,
    "\\deleted": 2,
    "\\seen": 3,
    "\\draft": 4,
}


def _flag_order(flag: str) -> tuple[int, str]:
    # Dovecot lists system flags first, in this order, then keywords.
    return (_SYSTEM_ORDER.get(flag.lower(), 5), flag.lower())


def _norm(flags: frozenset[str]) -> frozenset[str]:
    return frozenset(f.lower() for f in flags)


def _has(flags: frozenset[str], flag: str) -> bool:
    low = flag.lower()
    return any(f.lower() == low for f in flags)
