"""Selecting and leaving a folder: SELECT, EXAMINE, CLOSE, UNSELECT, CHECK, EXPUNGE.

SELECT's responses follow RFC 9051 §6.3.2 in Dovecot 2.3's order and wording (FLAGS,
PERMANENTFLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ). A failed
SELECT leaves no folder selected (RFC 9051 §6.3.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.errors import NotFound
from courriel.protocols.imap.actions import Action, bad, no, ok, untagged, untagged_lines
from courriel.protocols.imap.commands.qresync import qresync_problem, resync_lines
from courriel.protocols.imap.encode import flag_list, mailbox
from courriel.protocols.imap.selected import SelectedFolder
from courriel.protocols.imap.types import Command, Expunge, Select

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = [
    "SYSTEM_FLAGS",
    "cmd_check",
    "cmd_close",
    "cmd_expunge",
    "cmd_select",
    "cmd_unselect",
    "expunged_reply",
    "flags_responses",
    "read_only",
]

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def read_only(tag: str) -> Action:
    """The refusal of a change in a folder opened with EXAMINE."""
    return no(tag, "Mailbox is read-only.")


def flags_responses(view: SelectedFolder) -> list[bytes]:
    """``FLAGS`` and ``OK [PERMANENTFLAGS]`` lines (without ``* ``) for the view."""
    flags = [*SYSTEM_FLAGS, *sorted(view.keywords, key=str.lower)]
    if view.readonly:
        return [b"FLAGS " + flag_list(flags), b"OK [PERMANENTFLAGS ()] Read-only mailbox."]
    return [
        b"FLAGS " + flag_list(flags),
        b"OK [PERMANENTFLAGS " + flag_list([*flags, "\\*"]) + b"] Flags permitted.",
    ]


async def cmd_select(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.2 SELECT, §6.3.3 EXAMINE (RFC 7162 §3.1.8
    CONDSTORE parameter, §3.2.5 QRESYNC parameter)."""
    from courriel.protocols.imap.session import ImapState

    args = cmd.args
    assert isinstance(args, Select)
    if args.qresync is not None:
        problem = qresync_problem(s, args.qresync)
        if problem:
            return [bad(cmd.tag, f"Error in IMAP command {cmd.name}: {problem}")]
    out: list[Action] = []
    if s.selected is not None:
        # RFC 7162 §3.2.11 / RFC 9051 §6.3.2: the previous folder is closed first.
        out.append(untagged("OK [CLOSED] Previous mailbox closed."))
    s.selected = None
    s.state = ImapState.AUTHENTICATED
    if args.condstore:
        s.enabled.condstore = True
    readonly = args.readonly or cmd.name == "EXAMINE"
    try:
        snap = await s.store.open_folder(s.require_principal(), args.mailbox, readonly=readonly)
    except NotFound:
        return [*out, no(cmd.tag, "Mailbox doesn't exist", "NONEXISTENT")]
    view = SelectedFolder.from_snapshot(snap, readonly=readonly)
    s.selected = view
    s.state = ImapState.SELECTED
    lines = _opening(s, view)
    if args.qresync is not None:
        lines += await resync_lines(s, view, args.qresync)
    out.append(untagged_lines(lines))
    code = "READ-ONLY" if readonly else "READ-WRITE"
    verb = "Examine" if cmd.name == "EXAMINE" else "Select"
    return [*out, ok(cmd.tag, f"{verb} completed", code)]


def _opening(s: ImapSession, view: SelectedFolder) -> list[bytes]:
    """The untagged responses of a successful SELECT/EXAMINE, in Dovecot's order."""
    lines = flags_responses(view)
    lines.append(b"%d EXISTS" % view.exists)
    if not s.enabled.rev2:
        lines.append(b"%d RECENT" % len(view.recent))
        unseen = view.first_unseen()
        if unseen is not None:
            lines.append(b"OK [UNSEEN %d] First unseen." % unseen)
    else:
        # RFC 9051 §6.3.2: IMAP4rev2 servers send a LIST response for the mailbox.
        lines.append(b'LIST () "/" ' + mailbox(view.name, utf8=s.utf8))
    lines.append(b"OK [UIDVALIDITY %d] UIDs valid" % view.uidvalidity)
    lines.append(b"OK [UIDNEXT %d] Predicted next UID" % view.uidnext)
    if s.enabled.condstore:
        lines.append(b"OK [HIGHESTMODSEQ %d] Highest" % view.highest_modseq)
    return lines


async def cmd_close(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 9051 §6.4.1: silently expunge (unless read-only), then deselect."""
    from courriel.protocols.imap.session import ImapState

    view = s.require_selected()
    s.selected = None
    s.state = ImapState.AUTHENTICATED
    if not view.readonly:
        await s.store.expunge(s.require_principal(), view.folder_id)
    return [ok(cmd.tag, "Close completed")]


async def cmd_unselect(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 3691 §2: deselect without expunging."""
    from courriel.protocols.imap.session import ImapState

    s.selected = None
    s.state = ImapState.AUTHENTICATED
    return [ok(cmd.tag, "Unselect completed")]


async def cmd_check(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 3501 §6.4.1: a checkpoint; every change is already durable."""
    return [ok(cmd.tag, "Check completed")]


async def cmd_expunge(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 9051 §6.4.3 EXPUNGE; RFC 4315 §2.1 UID EXPUNGE (only these UIDs)."""
    view = s.require_selected()
    args = cmd.args
    assert isinstance(args, Expunge)
    if view.readonly:
        return [read_only(cmd.tag)]
    uids: list[int] | None = None
    if cmd.uid:
        if args.uids is None:
            return [bad(cmd.tag, "UID EXPUNGE needs a UID set.")]
        largest = view.largest_uid
        wanted = view.concrete(args.uids, uid=True)  # RFC 5182 §3: `$` too
        uids = [u for u in view.uids if wanted.contains(u, largest)]
        if not uids:
            return [ok(cmd.tag, "Expunge completed")]
    gone = await s.store.expunge(s.require_principal(), view.folder_id, uids)
    return await expunged_reply(s, cmd, gone, [], "Expunge completed")


async def expunged_reply(
    s: ImapSession, cmd: Command, gone: list[int], lines: list[bytes], text: str
) -> list[Action]:
    """The responses of a command that expunged ``gone`` (EXPUNGE, UID EXPUNGE, MOVE).

    ``lines`` (without ``* ``) go first. The expunges follow as ``EXPUNGE n`` lines, or
    as one ``VANISHED uid-set`` once QRESYNC is enabled (RFC 7162 §3.2.7, §3.2.9,
    §3.2.10). With QRESYNC on, the tagged OK carries the folder's new HIGHESTMODSEQ
    (RFC 7162 §3.2.7; Dovecot does so after UID EXPUNGE and MOVE too, and not with
    CONDSTORE alone): the pending updates are read first, so the value never runs ahead
    of what the client was told.
    """
    view = s.require_selected()
    lines = lines + view.remove(gone, vanished=s.enabled.qresync)
    out: list[Action] = [untagged_lines(lines)]
    code = None
    if gone and s.enabled.qresync:
        out += await s.poll(s.update_options(cmd))
        if s.closed:
            return out
        code = f"HIGHESTMODSEQ {view.highest_modseq}"
    return [*out, ok(cmd.tag, text, code)]
