"""Commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID, and ENABLE.

Sans-I/O handlers of :class:`~courriel.protocols.imap.session.ImapSession`. ENABLE
switches on only what courriel implements in full (RFC 5161 §3.1: unknown names are
ignored); the rest of the session reads :attr:`ImapSession.enabled`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.protocols.imap.actions import Action, Close, ok, untagged
from courriel.protocols.imap.capabilities import ENABLEABLE
from courriel.protocols.imap.types import Command, Enable

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_capability", "cmd_enable", "cmd_id", "cmd_logout", "cmd_noop"]


async def cmd_capability(s: ImapSession, cmd: Command) -> list[Action]:
    """Any state. RFC 9051 §6.1.1: list the capabilities of the current state."""
    from courriel.protocols.imap.session import ImapState

    text = (
        "Pre-login capabilities listed, post-login capabilities have more."
        if s.state is ImapState.NOT_AUTHENTICATED
        else "Capability completed"
    )
    return [untagged(f"CAPABILITY {s.capability_text()}"), ok(cmd.tag, text)]


async def cmd_noop(s: ImapSession, cmd: Command) -> list[Action]:
    """Any state. RFC 9051 §6.1.2: nothing, but pending updates are sent (polling)."""
    return [ok(cmd.tag, "NOOP completed")]


async def cmd_logout(s: ImapSession, cmd: Command) -> list[Action]:
    """Any state. RFC 9051 §6.1.3: BYE, tagged OK, then close."""
    await s.connection_lost()
    return [untagged("BYE Logging out"), ok(cmd.tag, "Logout completed"), Close()]


async def cmd_id(s: ImapSession, cmd: Command) -> list[Action]:
    """Any state. RFC 2971 §3.1: the server's identity (name only: no version, no host)."""
    return [untagged('ID ("name" "courriel")'), ok(cmd.tag, "ID completed")]


async def cmd_enable(s: ImapSession, cmd: Command) -> list[Action]:
    """AUTHENTICATED, SELECTED. RFC 5161 §3.1: switch on extensions; list those enabled.

    RFC 9051 §6.3.1 allows ENABLE only when authenticated; like Dovecot we also accept
    it with a mailbox selected.
    """
    assert isinstance(cmd.args, Enable)
    newly: list[str] = []
    for name in cmd.args.capabilities:
        if name not in ENABLEABLE or name in s.enabled.names:
            continue
        s.enabled.names.add(name)
        newly.append("IMAP4rev2" if name == "IMAP4REV2" else name)
        if name == "CONDSTORE":
            s.enabled.condstore = True
        elif name == "QRESYNC":
            # RFC 7162 §3.2: enabling QRESYNC implies enabling CONDSTORE.
            s.enabled.qresync = s.enabled.condstore = True
        elif name == "IMAP4REV2":
            # RFC 9051 Appendix E: no RECENT, ESEARCH for SEARCH, no \Recent flag.
            s.enabled.rev2 = True
    out: list[Action] = []
    if newly:
        out.append(untagged("ENABLED " + " ".join(newly)))
    else:
        out.append(untagged("ENABLED"))
    return [*out, ok(cmd.tag, "Enabled")]
