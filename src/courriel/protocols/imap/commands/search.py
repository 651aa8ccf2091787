"""SEARCH and UID SEARCH (RFC 9051 §6.4.4, ESEARCH RFC 4731, CONDSTORE RFC 7162 §3.1.5).

Evaluation is :func:`courriel.protocols.imap.search.compile_key`; this module picks the
candidates, loads message content only when a key needs it, and writes the result as
``* SEARCH`` (IMAP4rev1 without RETURN) or ``* ESEARCH`` (RETURN given, or IMAP4rev2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.errors import NotFound
from courriel.protocols.imap import search as evaluate
from courriel.protocols.imap.actions import Action, Send, ok
from courriel.protocols.imap.encode import number_set
from courriel.protocols.imap.types import Command, Search, SearchKey

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_search"]


def _uses_modseq(key: SearchKey) -> bool:
    return key.op == "MODSEQ" or any(_uses_modseq(k) for k in key.keys)


def _split(key: SearchKey) -> tuple[list[SearchKey], list[SearchKey]]:
    """The criteria of a top-level AND that need no content, and those that do."""
    keys = list(key.keys) if key.op == "AND" else [key]
    content = [k for k in keys if evaluate.needs_message(k)]
    return [k for k in keys if not evaluate.needs_message(k)], content


def _and(keys: list[SearchKey]) -> SearchKey:
    return keys[0] if len(keys) == 1 else SearchKey(op="AND", keys=tuple(keys))


async def _matching(s: ImapSession, key: SearchKey) -> list[int]:
    """UIDs of the messages that match, ascending.

    Criteria that need no content (flags, dates, sizes, sets) are tested first, and a
    message's content is looked up only when they hold; cached parsed messages are
    taken without awaiting anything.
    """
    view = s.require_selected()
    bounds = {"largest_seq": view.exists, "largest_uid": view.largest_uid}
    cheap, costly = _split(key)
    meta_test = evaluate.compile_key(_and(cheap), **bounds)
    content_test = evaluate.compile_key(_and(costly), **bounds) if costly else None
    probe = evaluate.Probe()
    recent, metas, cache = view.recent, view.meta, s.cache
    found: list[int] = []
    for seq, uid in enumerate(view.uids, 1):
        meta = metas[uid]
        probe.seq, probe.uid, probe.flags, probe.recent = seq, uid, meta.flags, uid in recent
        probe.size, probe.internal_date, probe.modseq = (
            meta.size,
            meta.internal_date,
            meta.modseq,
        )
        if not meta_test(probe):
            continue
        if content_test is not None:
            message = cache.peek(meta.message_id, meta.blob_key)
            if message is None:
                try:
                    message = await s.message(meta)
                except NotFound:
                    continue  # expunged meanwhile
            probe.message = message
            if not content_test(probe):
                continue
        found.append(uid)
    return found


def _esearch(
    tag: str, uid: bool, returns: tuple[str, ...], numbers: list[int], modseq: int | None
) -> bytes:
    """RFC 4731 §3.1 ``* ESEARCH (TAG "x") [UID] MIN.. MAX.. COUNT.. ALL..``."""
    wanted = set(returns) or {"ALL"}
    out = [b'ESEARCH (TAG "' + tag.encode() + b'")']
    if uid:
        out.append(b"UID")
    if numbers:
        if "MIN" in wanted:
            out.append(b"MIN %d" % min(numbers))
        if "MAX" in wanted:
            out.append(b"MAX %d" % max(numbers))
    if "COUNT" in wanted:
        out.append(b"COUNT %d" % len(numbers))
    if numbers and "ALL" in wanted:
        out.append(b"ALL " + number_set(numbers).encode())
    if modseq is not None and numbers:
        out.append(b"MODSEQ %d" % modseq)
    return b"* " + b" ".join(out) + b"\r\n"


async def cmd_search(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 9051 §6.4.4 SEARCH, §6.4.9 UID SEARCH; RFC 4731 ESEARCH."""
    args = cmd.args
    assert isinstance(args, Search)
    view = s.require_selected()
    modseq_key = _uses_modseq(args.key)
    if modseq_key:
        s.enabled.condstore = True  # RFC 7162 §3.1: a CONDSTORE enabling command
    uids = await _matching(s, args.key)
    numbers = uids if cmd.uid else [view.seq_of(u) or 0 for u in uids]
    # RFC 7162 §3.1.5: the highest mod-sequence of the matches, when MODSEQ was a key.
    modseq = max((view.meta[u].modseq for u in uids), default=None) if modseq_key else None
    if args.returns is not None or s.enabled.rev2:
        line = _esearch(cmd.tag, cmd.uid, args.returns or (), numbers, modseq)
    else:
        text = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
        if modseq is not None:
            text += b" (MODSEQ %d)" % modseq
        line = text + b"\r\n"
    return [Send(data=line), ok(cmd.tag, "Search completed")]
