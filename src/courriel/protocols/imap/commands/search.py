"""SEARCH and UID SEARCH (RFC 9051 §6.4.4, ESEARCH RFC 4731, CONDSTORE RFC 7162 §3.1.5,
SEARCHRES RFC 5182).

Evaluation is :func:`courriel.protocols.imap.search.compile_key`; this module picks the
candidates, loads message content only when a key needs it, and writes the result as
``* SEARCH`` (IMAP4rev1 without RETURN) or ``* ESEARCH`` (RETURN given, or IMAP4rev2).

SEARCHRES invariants: ``$`` in the keys is bound to the saved result before the search
runs, so ``SEARCH RETURN (SAVE) UID $`` reads the old result; a SAVE search empties the
saved result first, so one that fails leaves it empty (RFC 5182 §2.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from courriel.errors import NotFound
from courriel.mailstore.imapport import MessageMeta
from courriel.protocols.imap import search as evaluate
from courriel.protocols.imap.actions import Action, Send, ok
from courriel.protocols.imap.encode import number_set
from courriel.protocols.imap.searchcolumns import MAX_COLUMN_MESSAGES, usable_needle
from courriel.protocols.imap.types import Command, Search, SearchKey

if TYPE_CHECKING:
    from courriel.protocols.imap.mime import ParsedMessage
    from courriel.protocols.imap.selected import SelectedFolder
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_search"]


def _uses_modseq(key: SearchKey) -> bool:
    return key.op == "MODSEQ" or any(_uses_modseq(k) for k in key.keys)


def _split(key: SearchKey) -> tuple[list[SearchKey], list[SearchKey]]:
    """The criteria of a top-level AND that need no content, and those that do."""
    keys = list(key.keys) if key.op == "AND" else [key]
    content = [k for k in keys if evaluate.needs_message(k)]
    return [k for k in keys if not evaluate.needs_message(k)], content


def _bind_saved(key: SearchKey, view: SelectedFolder) -> SearchKey:
    """``key`` with every ``$`` replaced by the saved result (RFC 5182 §2.2)."""
    if key.seqset is not None and key.seqset.saved:
        return replace(key, seqset=view.concrete(key.seqset, uid=key.op == "UID"))
    if not key.keys:
        return key
    return replace(key, keys=tuple(_bind_saved(k, view) for k in key.keys))


def _to_save(returns: tuple[str, ...], uids: list[int]) -> list[int]:
    """What ``RETURN (SAVE ...)`` keeps (RFC 5182 §2.4, RFC 9051 §6.4.4.1).

    With MIN and/or MAX but neither ALL nor COUNT, only those messages; else all.
    """
    options = set(returns)
    if not uids or not options & {"MIN", "MAX"} or options & {"ALL", "COUNT"}:
        return list(uids)
    kept = {uids[0]} if "MIN" in options else set()
    if "MAX" in options:
        kept.add(uids[-1])
    return sorted(kept)


def _and(keys: list[SearchKey]) -> SearchKey:
    return keys[0] if len(keys) == 1 else SearchKey(op="AND", keys=tuple(keys))


# Header tests over more candidates than this use the shared search columns.
_COLUMN_FROM = 64

_MetaTest = Callable[[int, int, MessageMeta], bool]


def _meta_filter(view: SelectedFolder, keys: list[SearchKey]) -> _MetaTest | None:
    """A test of ``(seq, uid, meta)`` for criteria that need no content, or None."""
    if not keys:
        return None
    test = evaluate.compile_key(_and(keys), largest_seq=view.exists, largest_uid=view.largest_uid)
    probe = evaluate.Probe()
    fact = evaluate.only_fact(_and(keys))
    if fact:
        # Most messages share a few flag sets (or arrival days): decide once per value.
        verdicts: dict[object, bool] = {}
        by_date = fact == "date"

        def memo(seq: int, uid: int, meta: MessageMeta) -> bool:
            value = meta.internal_date if by_date else meta.flags
            verdict = verdicts.get(value)
            if verdict is None:
                probe.flags, probe.internal_date = meta.flags, meta.internal_date
                verdict = verdicts[value] = test(probe)
            return verdict

        return memo
    recent = view.recent

    def by_probe(seq: int, uid: int, meta: MessageMeta) -> bool:
        _fill(probe, seq, uid, meta, uid in recent)
        return test(probe)

    return by_probe


def _fill(probe: evaluate.Probe, seq: int, uid: int, meta: MessageMeta, recent: bool) -> None:
    probe.seq, probe.uid, probe.flags, probe.recent = seq, uid, meta.flags, recent
    probe.size, probe.internal_date, probe.modseq = meta.size, meta.internal_date, meta.modseq


def _columnar(keys: list[SearchKey]) -> bool:
    """True when every key is a header test a search column can answer."""
    return bool(keys) and all(k.op == "HEADER" and usable_needle(k.text.casefold()) for k in keys)


async def _column_hits(s: ImapSession, view: SelectedFolder, keys: list[SearchKey]) -> set[int]:
    """UIDs whose fields match every header key, found in the shared search columns."""

    async def load(meta: MessageMeta) -> ParsedMessage | None:
        cached = s.cache.peek(meta.message_id, meta.blob_key)
        if cached is not None:
            return cached
        try:
            return await s.message(meta)
        except NotFound:
            return None  # expunged meanwhile: it matches nothing

    hits: set[int] | None = None
    for k in keys:
        column = await s.cache.columns.column(
            (s.require_principal().account_id, view.folder_id, view.uidvalidity),
            k.field,
            address=k.field in evaluate.ADDRESS_FIELDS,
            view_uids=view.uids,
            meta=view.meta,
            load=load,
        )
        found = column.find(k.text.casefold())
        hits = found if hits is None else hits & found
    return hits or set()


async def _matching(s: ImapSession, key: SearchKey) -> list[int]:
    """UIDs of the messages that match, ascending.

    Criteria that need no content (flags, dates, sizes, sets) are tested first. When
    many messages pass and the rest are header tests, the shared search columns answer
    them; otherwise each remaining message's content is tested, cached parsed messages
    taken without awaiting anything.
    """
    view = s.require_selected()
    cheap, costly = _split(key)
    meta_test = _meta_filter(view, cheap)
    metas = view.meta
    if meta_test is None:
        candidates = view.uids
    else:
        candidates = [
            uid for seq, uid in enumerate(view.uids, 1) if meta_test(seq, uid, metas[uid])
        ]
    if not costly:
        return candidates
    many = len(candidates) > _COLUMN_FROM and len(view.uids) <= MAX_COLUMN_MESSAGES
    if many and _columnar(costly):
        hits = await _column_hits(s, view, costly)
        return [uid for uid in candidates if uid in hits]
    return await _test_content(s, view, candidates, costly)


async def _test_content(
    s: ImapSession, view: SelectedFolder, candidates: list[int], keys: list[SearchKey]
) -> list[int]:
    """The candidates whose content satisfies ``keys``, message by message."""
    test = evaluate.compile_key(_and(keys), largest_seq=view.exists, largest_uid=view.largest_uid)
    probe = evaluate.Probe()
    recent, metas, cache = view.recent, view.meta, s.cache
    found: list[int] = []
    for uid in candidates:
        meta = metas[uid]
        message = cache.peek(meta.message_id, meta.blob_key)
        if message is None:
            try:
                message = await s.message(meta)
            except NotFound:
                continue  # expunged meanwhile
        _fill(probe, view.seq_of(uid) or 0, uid, meta, uid in recent)
        probe.message = message
        if test(probe):
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
    """SELECTED. RFC 9051 §6.4.4 SEARCH, §6.4.9 UID SEARCH; RFC 4731 ESEARCH; RFC 5182."""
    args = cmd.args
    assert isinstance(args, Search)
    view = s.require_selected()
    modseq_key = _uses_modseq(args.key)
    if modseq_key:
        s.enabled.condstore = True  # RFC 7162 §3.1: a CONDSTORE enabling command
    key = _bind_saved(args.key, view)
    returns = args.returns
    saving = returns is not None and "SAVE" in returns
    if saving:
        view.saved = []  # RFC 5182 §2.1: a SAVE search that fails leaves `$` empty
    uids = await _matching(s, key)
    if saving and returns is not None:
        view.saved = _to_save(returns, uids)
        returns = tuple(r for r in returns if r != "SAVE")
        if not returns:
            # RFC 5182 §2.4: SAVE alone returns no ESEARCH response.
            return [ok(cmd.tag, "Search completed")]
    numbers = uids if cmd.uid else [view.seq_of(u) or 0 for u in uids]
    # RFC 7162 §3.1.5: the highest mod-sequence of the matches, when MODSEQ was a key.
    modseq = max((view.meta[u].modseq for u in uids), default=None) if modseq_key else None
    if returns is not None or s.enabled.rev2:
        line = _esearch(cmd.tag, cmd.uid, returns or (), numbers, modseq)
    else:
        text = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
        if modseq is not None:
            text += b" (MODSEQ %d)" % modseq
        line = text + b"\r\n"
    return [Send(data=line), ok(cmd.tag, "Search completed")]
