"""QRESYNC resynchronisation responses (RFC 7162 §3.2): VANISHED (EARLIER) and changed flags.

This module owns what SELECT/EXAMINE with the QRESYNC parameter (§3.2.5) and UID FETCH
with the VANISHED modifier (§3.2.6) add to their normal responses. The store keeps every
expunge with its modseq, so the UIDs reported as vanished are exact; the client's
sequence-match data (§3.2.5.2) is therefore not needed and is ignored.

Invariants:
    * A UID still in the session's view is never reported as vanished EARLIER: its expunge
      happened after the view was built and is announced later by ``VANISHED`` (without
      EARLIER, RFC 7162 §3.2.10), which lowers the client's message count once.
    * ``VANISHED (EARLIER)`` comes before the FETCH responses (RFC 7162 §3.2.5, §3.2.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.protocols.imap.encode import number_set
from courriel.protocols.imap.selected import SelectedFolder, UpdateOptions
from courriel.protocols.imap.types import STAR, SeqSet

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["QresyncArgs", "qresync_problem", "resync_lines", "vanished_earlier"]

# The parsed QRESYNC parameter: (uidvalidity, modseq, known UIDs, (seq-match, uid-match)).
QresyncArgs = tuple[int, int, SeqSet | None, tuple[SeqSet, SeqSet] | None]


def _count(seqset: SeqSet) -> int:
    """How many numbers a set names (ranges merged; ranges with ``*`` are not counted)."""
    spans = sorted((min(a, b), max(a, b)) for a, b in seqset.ranges if STAR not in (a, b))
    total, end = 0, 0
    for low, high in spans:
        start = max(low, end + 1)
        if high >= start:
            total += high - start + 1
            end = high
    return total


def qresync_problem(s: ImapSession, args: QresyncArgs) -> str:
    """Why a SELECT/EXAMINE QRESYNC parameter is refused with BAD, or ``""``.

    RFC 7162 §3.2.5: the parameter needs ENABLE QRESYNC first, and the sequence-match
    and UID-match sets pair numbers one to one (Dovecot answers BAD when they differ).
    """
    if not s.enabled.qresync:
        return "QRESYNC not enabled"
    match = args[3]
    if match is not None and _count(match[0]) != _count(match[1]):
        return "Invalid QRESYNC sets"
    return ""


def _largest(view: SelectedFolder) -> int:
    # ``*`` in a set of UIDs that may be gone stands for the largest UID the folder ever
    # gave out (every expunged UID is below UIDNEXT), not only the largest one left.
    return max(view.largest_uid, view.uidnext - 1)


async def vanished_earlier(
    s: ImapSession, view: SelectedFolder, modseq: int, uids: SeqSet | None
) -> list[bytes]:
    """The ``VANISHED (EARLIER) uid-set`` line (without ``* ``), or nothing.

    Args:
        s: the session (its store and principal).
        view: the selected folder.
        modseq: report expunges with a modseq above this.
        uids: only UIDs in this set (all when None).
    """
    gone = await s.store.expunged_since(s.require_principal(), view.folder_id, modseq)
    largest = _largest(view)
    told = [u for u in gone if u not in view.meta and (uids is None or uids.contains(u, largest))]
    if not told:
        return []
    return [b"VANISHED (EARLIER) " + number_set(told).encode("ascii")]


async def resync_lines(s: ImapSession, view: SelectedFolder, args: QresyncArgs) -> list[bytes]:
    """What SELECT/EXAMINE (QRESYNC ...) adds after the normal responses (§3.2.5).

    When the client's UIDVALIDITY differs, nothing: its cache is void and it must
    start over from the normal responses. Otherwise the UIDs expunged after the
    client's modseq, then ``n FETCH (UID u FLAGS (...) MODSEQ (m))`` for every message
    changed after it (both limited to the known UIDs when the client gave them).
    """
    uidvalidity, modseq, known, _match = args
    if uidvalidity != view.uidvalidity:
        return []
    lines = await vanished_earlier(s, view, modseq, known)
    opts = UpdateOptions(allow_expunge=False, uid=True, condstore=True, rev1=not s.enabled.rev2)
    largest = _largest(view)
    for uid in view.uids:
        if view.meta[uid].modseq > modseq and (known is None or known.contains(uid, largest)):
            lines.append(view.fetch_flags_line(uid, opts))
    return lines
