"""Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3).

Store errors map to RFC 5530 response codes: ``NotFound`` → ``[NONEXISTENT]``,
``AlreadyExists`` → ``[ALREADYEXISTS]``, ``InvalidInput`` → ``[CANNOT]``. Reply texts
are fixed: they never echo what the store said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.mailstore.imapport import SEPARATOR
from courriel.protocols.imap.actions import Action, no, ok
from courriel.protocols.imap.types import Command, MailboxArg, Rename

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_create", "cmd_delete", "cmd_rename", "cmd_subscribe", "cmd_unsubscribe"]

# RFC 6154 §2: the special-use attributes a folder may be created with.
SPECIAL_USES = {
    u.lower(): u
    for u in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}
NONEXISTENT = ("Mailbox doesn't exist", "NONEXISTENT")


def _mailbox(cmd: Command) -> MailboxArg:
    assert isinstance(cmd.args, MailboxArg)
    return cmd.args


async def cmd_create(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.4 (CREATE-SPECIAL-USE: RFC 6154 §3)."""
    args = _mailbox(cmd)
    # RFC 9051 §6.3.4: a trailing separator only says the name will have children.
    name = args.mailbox.rstrip(SEPARATOR)
    if not name:
        return [no(cmd.tag, "Invalid mailbox name.", "CANNOT")]
    if name == "INBOX":
        return [no(cmd.tag, "Mailbox already exists", "ALREADYEXISTS")]
    if len(args.special_use) > 1:
        return [no(cmd.tag, "Only one special-use attribute per mailbox.", "USEATTR")]
    use = None
    if args.special_use:
        use = SPECIAL_USES.get(args.special_use[0].lower())
        if use is None:
            return [no(cmd.tag, "Unsupported special-use attribute.", "USEATTR")]
    try:
        await s.store.create_folder(s.require_principal(), name, special_use=use)
    except AlreadyExists:
        return [no(cmd.tag, "Mailbox already exists", "ALREADYEXISTS")]
    except InvalidInput:
        return [no(cmd.tag, "Invalid mailbox name.", "CANNOT")]
    return [ok(cmd.tag, "Create completed")]


async def cmd_delete(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.5: INBOX and parents cannot go."""
    name = _mailbox(cmd).mailbox
    if name == "INBOX":
        return [no(cmd.tag, "INBOX can't be deleted", "CANNOT")]
    try:
        await s.store.delete_folder(s.require_principal(), name)
    except NotFound:
        return [no(cmd.tag, *NONEXISTENT)]
    except InvalidInput:
        return [no(cmd.tag, "Mailbox has children, delete them first.", "CANNOT")]
    return [ok(cmd.tag, "Delete completed")]


async def cmd_rename(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.6 (renaming INBOX moves its messages)."""
    assert isinstance(cmd.args, Rename)
    new = cmd.args.new.rstrip(SEPARATOR)
    try:
        await s.store.rename_folder(s.require_principal(), cmd.args.old, new)
    except NotFound:
        return [no(cmd.tag, *NONEXISTENT)]
    except AlreadyExists:
        return [no(cmd.tag, "Target mailbox already exists.", "ALREADYEXISTS")]
    except InvalidInput:
        return [no(cmd.tag, "Invalid mailbox name.", "CANNOT")]
    return [ok(cmd.tag, "Rename completed")]


async def cmd_subscribe(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.7: add a name to the subscriptions."""
    try:
        await s.store.set_subscribed(s.require_principal(), _mailbox(cmd).mailbox, True)
    except NotFound:
        return [no(cmd.tag, *NONEXISTENT)]
    except InvalidInput:
        return [no(cmd.tag, "Invalid mailbox name.", "CANNOT")]
    return [ok(cmd.tag, "Subscribe completed")]


async def cmd_unsubscribe(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.8: the folder need not exist."""
    try:
        await s.store.set_subscribed(s.require_principal(), _mailbox(cmd).mailbox, False)
    except (NotFound, InvalidInput):
        return [no(cmd.tag, *NONEXISTENT)]
    return [ok(cmd.tag, "Unsubscribe completed")]
