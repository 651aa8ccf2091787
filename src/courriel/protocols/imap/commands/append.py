"""APPEND (RFC 9051 §6.3.12; APPENDUID RFC 4315 §3; APPENDLIMIT RFC 7889).

The parser has read the whole literal (within ``append_limit``); this module checks the
message minimally: it must not be empty. Bare LF line ends are accepted, as Dovecot
accepts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.errors import InvalidInput, NotFound
from courriel.protocols.imap.actions import Action, bad, no, ok
from courriel.protocols.imap.types import Append, Command

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_append"]


async def cmd_append(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 9051 §6.3.12: store a message in a folder."""
    args = cmd.args
    assert isinstance(args, Append)
    if not args.message:
        return [no(cmd.tag, "Can't save a zero byte message.")]
    if len(args.message) > s.settings.append_limit:
        # RFC 7889 §4 / RFC 4469: the message is larger than APPENDLIMIT.
        return [no(cmd.tag, "Mail size is too large.", "TOOBIG")]
    if any(f.lower() == "\\recent" for f in args.flags):
        # RFC 3501 §2.3.2: \Recent cannot be set by the client (Dovecot: BAD).
        return [bad(cmd.tag, "Error in IMAP command APPEND: Invalid system flag \\Recent")]
    flags = list(args.flags)
    try:
        result = await s.store.append(
            s.require_principal(),
            args.mailbox,
            args.message,
            flags=flags,
            internal_date=args.internal_date,
        )
    except NotFound:
        # RFC 9051 §6.3.12: TRYCREATE when the folder does not exist.
        return [no(cmd.tag, "Mailbox doesn't exist", "TRYCREATE")]
    except InvalidInput:
        return [no(cmd.tag, "Invalid message.")]
    return [ok(cmd.tag, "Append completed", f"APPENDUID {result.uidvalidity} {result.uid}")]
