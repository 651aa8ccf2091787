"""LIST, LSUB, NAMESPACE and STATUS (RFC 9051 §6.3.9–§6.3.11, RFC 5258, RFC 5819).

This module owns mailbox-pattern matching (``*`` matches anything, ``%`` anything but
the separator; INBOX matches case-insensitively) and the attributes of LIST responses:
``\\HasChildren``/``\\HasNoChildren`` (RFC 3348), special-use (RFC 6154),
``\\Subscribed`` and ``\\NonExistent`` (RFC 5258).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from courriel.errors import NotFound
from courriel.mailstore.imapport import SEPARATOR, FolderInfo, FolderStatus
from courriel.protocols.imap.actions import Action, Send, bad, no, ok, untagged
from courriel.protocols.imap.encode import mailbox
from courriel.protocols.imap.types import Command, List, Status

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_list", "cmd_namespace", "cmd_status", "pattern_regex"]

_SEP = SEPARATOR.encode()


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """The regular expression of a LIST reference and pattern (RFC 9051 §6.3.9)."""
    if reference and pattern.startswith(SEPARATOR) and reference.endswith(SEPARATOR):
        pattern = pattern[1:]
    full = reference + pattern
    # INBOX is case-insensitive (RFC 9051 §5.1): canonicalise it in the pattern.
    head = full[:5]
    if head.upper() == "INBOX" and (len(full) == 5 or full[5] in f"{SEPARATOR}*%"):
        full = "INBOX" + full[5:]
    parts = []
    for ch in full:
        if ch == "*":
            parts.append(".*")
        elif ch == "%":
            parts.append(f"[^{re.escape(SEPARATOR)}]*")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _status_items(st: FolderStatus, items: tuple[str, ...], rev1: bool) -> bytes:
    values = {
        "MESSAGES": st.messages,
        "UIDNEXT": st.uidnext,
        "UIDVALIDITY": st.uidvalidity,
        "UNSEEN": st.unseen,
        "DELETED": st.deleted,
        "SIZE": st.size,
        "HIGHESTMODSEQ": st.highest_modseq,
        "RECENT": st.recent if rev1 else None,
    }
    out = [f"{item} {values[item]}" for item in items if values.get(item) is not None]
    return " ".join(out).encode()


def _status_line(s: ImapSession, st: FolderStatus, items: tuple[str, ...]) -> bytes:
    name = mailbox(st.name, utf8=s.utf8)
    return b"* STATUS " + name + b" (" + _status_items(st, items, not s.enabled.rev2) + b")\r\n"


async def cmd_status(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.11 (SIZE: RFC 8438; DELETED: RFC 9051)."""
    assert isinstance(cmd.args, Status)
    if "HIGHESTMODSEQ" in cmd.args.items:
        s.enabled.condstore = True  # RFC 7162 §3.1: a CONDSTORE enabling command
    try:
        st = await s.store.folder_status(s.require_principal(), cmd.args.mailbox)
    except NotFound:
        return [no(cmd.tag, "Mailbox doesn't exist", "NONEXISTENT")]
    return [Send(data=_status_line(s, st, cmd.args.items)), ok(cmd.tag, "Status completed")]


async def cmd_namespace(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 2342 §5: one personal namespace, no others."""
    return [untagged('NAMESPACE (("" "/")) NIL NIL'), ok(cmd.tag, "Namespace completed")]


def _ancestors(name: str) -> list[str]:
    parts = name.split(SEPARATOR)
    return [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def _parents(names: set[str]) -> set[str]:
    """Every name that has at least one child among ``names`` (one pass, not n²)."""
    return {a for n in names for a in _ancestors(n)}


def _attributes(
    info: FolderInfo | None, name: str, parents: set[str], subscribed: bool, args: List
) -> list[str]:
    attrs: list[str] = []
    if info is None:
        attrs.append("\\NonExistent")
    else:
        attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
    if subscribed and ("SUBSCRIBED" in args.returns or "SUBSCRIBED" in args.selection):
        attrs.append("\\Subscribed")
    if info is not None and info.special_use and not args.lsub:
        attrs.append(info.special_use)
    return attrs


async def cmd_list(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.9 LIST (RFC 5258 LIST-EXTENDED, RFC 5819
    LIST-STATUS, RFC 6154 SPECIAL-USE) and RFC 3501 §6.3.9 LSUB."""
    args = cmd.args
    assert isinstance(args, List)
    if "RECURSIVEMATCH" in args.selection and "SUBSCRIBED" not in args.selection:
        # RFC 5258 §3: RECURSIVEMATCH alone is a syntax error.
        return [bad(cmd.tag, "RECURSIVEMATCH must be used with another selection option.")]
    verb = b"LSUB" if args.lsub else b"LIST"
    if args.patterns == ("",):
        # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        return [
            untagged(verb + b' (\\Noselect) "/" ""'),
            ok(cmd.tag, f"{verb.decode().title()} completed"),
        ]
    principal = s.require_principal()
    folders = {f.name: f for f in await s.store.list_folders(principal)}
    subscribed = set(await s.store.subscriptions(principal))
    regexes = [pattern_regex(args.reference, p) for p in args.patterns if p]
    lines = await _list_lines(s, args, folders, subscribed=subscribed, regexes=regexes)
    done = ok(cmd.tag, "Lsub completed" if args.lsub else "List completed")
    return [Send(data=b"".join(lines)), done]


def _candidates(args: List, folders: dict[str, FolderInfo], subscribed: set[str]) -> list[str]:
    names = set(subscribed) if args.lsub or "SUBSCRIBED" in args.selection else set(folders)
    if "RECURSIVEMATCH" in args.selection:
        # RFC 5258 §3.5: parents of subscribed names match too (with CHILDINFO).
        names |= {a for n in subscribed for a in _ancestors(n)}
    if "SPECIAL-USE" in args.selection:
        names = {n for n in names if n in folders and folders[n].special_use}
    # Dovecot lists INBOX first, then the rest by name.
    return sorted(names, key=lambda n: (n != "INBOX", n))


async def _list_lines(
    s: ImapSession,
    args: List,
    folders: dict[str, FolderInfo],
    *,
    subscribed: set[str],
    regexes: list[re.Pattern[str]],
) -> list[bytes]:
    verb = b"LSUB" if args.lsub else b"LIST"
    parents = _parents(set(folders))
    subscribed_parents = _parents(subscribed)
    lines: list[bytes] = []
    for name in _candidates(args, folders, subscribed):
        if not any(r.fullmatch(name) for r in regexes):
            continue
        info = folders.get(name)
        if args.lsub:
            attrs = [] if info is not None else ["\\Noselect"]
        else:
            attrs = _attributes(info, name, parents, name in subscribed, args)
        wire = mailbox(name, utf8=s.utf8)
        line = b"* " + verb + b" (" + " ".join(attrs).encode() + b') "' + _SEP + b'" ' + wire
        if "RECURSIVEMATCH" in args.selection and name in subscribed_parents:
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'
        lines.append(line + b"\r\n")
        if "STATUS" in args.returns and info is not None:
            try:
                st = await s.store.folder_status(s.require_principal(), name)
            except NotFound:
                continue  # deleted meanwhile: RFC 5819 §2 lets us omit it
            lines.append(_status_line(s, st, args.status_items))
    return lines
