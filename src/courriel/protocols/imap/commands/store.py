"""STORE and UID STORE (RFC 9051 §6.4.6; UNCHANGEDSINCE: RFC 7162 §3.1.3).

The view is updated from the store's result at once, so the change feed's later echo
of this session's own change is not announced twice (see :mod:`..selected`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.protocols.imap.actions import Action, bad, ok, untagged_lines
from courriel.protocols.imap.commands.fetch import invalid_set
from courriel.protocols.imap.commands.select import flags_responses, read_only
from courriel.protocols.imap.encode import number_set
from courriel.protocols.imap.types import Command, Store

if TYPE_CHECKING:
    from courriel.mailstore.imapport import StoreResult
    from courriel.protocols.imap.selected import SelectedFolder, UpdateOptions
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_store"]


async def cmd_store(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 9051 §6.4.6 STORE, §6.4.9 UID STORE; RFC 7162 §3.1.3."""
    args = cmd.args
    assert isinstance(args, Store)
    view = s.require_selected()
    if view.readonly:
        return [read_only(cmd.tag)]
    uids = view.resolve(args.seqset, uid=cmd.uid)
    if uids is None:
        return [invalid_set(cmd)]
    if args.unchanged_since is not None:
        s.enabled.condstore = True  # RFC 7162 §3.1: a CONDSTORE enabling command
    if any(f.lower() == "\\recent" for f in args.flags):
        # RFC 3501 §2.3.2: \Recent cannot be altered by the client (Dovecot: BAD).
        return [bad(cmd.tag, "Error in IMAP command STORE: Invalid system flag \\Recent")]
    flags = list(args.flags)
    keywords_before = set(view.keywords)
    result = await s.store.store_flags(
        s.require_principal(),
        view.folder_id,
        uids,
        args.mode,
        flags,
        unchanged_since=args.unchanged_since,
    )
    view.set_meta(result.updated)
    lines = flags_responses(view) if view.keywords != keywords_before else []
    lines += _fetch_lines(view, uids, result, silent=args.silent, opts=s.update_options(cmd))
    updates = untagged_lines(lines)
    if result.modified:
        numbers = result.modified if cmd.uid else [view.seq_of(u) or 0 for u in result.modified]
        code = f"MODIFIED {number_set(numbers)}"
        return [updates, ok(cmd.tag, "Conditional store failed", code)]
    return [updates, ok(cmd.tag, "Store completed")]


def _fetch_lines(
    view: SelectedFolder, uids: list[int], result: StoreResult, *, silent: bool, opts: UpdateOptions
) -> list[bytes]:
    """The FETCH responses of a STORE (RFC 9051 §6.4.6; RFC 7162 §3.1.3).

    Messages refused by UNCHANGEDSINCE get none (they are in ``[MODIFIED]``), as in
    Dovecot; a new keyword's ``FLAGS`` come first (RFC 9051 §7.3.5).
    """
    updated = {m.uid for m in result.updated}
    refused = set(result.modified)
    lines: list[bytes] = []
    for uid in uids:
        if uid not in view.meta or uid in view.pending or uid in refused:
            continue
        if not silent:
            lines.append(view.fetch_flags_line(uid, opts))
        elif uid in updated and opts.condstore:
            # RFC 7162 §3.1.3: .SILENT still reports the new MODSEQ of changed messages.
            seq = view.seq_of(uid) or 0
            lines.append(b"%d FETCH (UID %d MODSEQ (%d))" % (seq, uid, view.meta[uid].modseq))
    return lines
