"""IDLE (RFC 2177; RFC 9051 §6.3.13): untagged updates as they happen, until DONE.

The session answers ``+ idling`` and sets :attr:`ImapSession.idle_wait`; the server then
waits for a change of the account concurrently with reading. The next line must be
``DONE`` (any case); anything else ends IDLE with BAD, as Dovecot does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.protocols.imap.actions import Action, Send, bad, ok
from courriel.protocols.imap.types import Command

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_idle"]


async def cmd_idle(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 2177 §3: wait for DONE, sending updates meanwhile."""
    tag = cmd.tag

    async def done(line: str) -> list[Action]:
        s.idle_tag = None
        s.idle_wait = None
        if line.strip().upper() != "DONE":
            return [bad(tag, "Expected DONE.")]
        actions = await s.poll(s.update_options(None)) if s.selected else []
        return [*actions, ok(tag, "Idle completed")]

    s.idle_tag = tag
    s.raw_handler = done
    s.parser.want_raw_line()
    actions: list[Action] = [Send(data=b"+ idling\r\n")]
    # RFC 2177 §3: what is pending may be sent at once.
    actions += await s.poll(s.update_options(None))
    s.rearm_idle()
    if s.idle_wait is not None:
        actions.append(s.idle_wait)
    return actions
