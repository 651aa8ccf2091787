"""COPY, MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8; RFC 6851 MOVE; RFC 4315
COPYUID).

MOVE answers ``* OK [COPYUID ...]`` untagged, then the EXPUNGEs (one VANISHED once
QRESYNC is enabled), then the tagged OK (RFC 6851 §3.3), in that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from courriel.errors import NotFound
from courriel.protocols.imap.actions import Action, no, ok
from courriel.protocols.imap.commands.fetch import invalid_set
from courriel.protocols.imap.commands.select import expunged_reply, read_only
from courriel.protocols.imap.encode import number_set
from courriel.protocols.imap.types import Command, CopyMove

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_copy"]


async def cmd_copy(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 9051 §6.4.7 COPY, §6.4.8 MOVE (RFC 6851), §6.4.9 UID forms."""
    args = cmd.args
    assert isinstance(args, CopyMove)
    view = s.require_selected()
    move = cmd.name == "MOVE"
    if move and view.readonly:
        return [read_only(cmd.tag)]
    uids = view.resolve(args.seqset, uid=cmd.uid)
    if uids is None:
        return [invalid_set(cmd)]
    verb = "Move" if move else "Copy"
    if not uids:
        return [ok(cmd.tag, "No messages found")]
    try:
        result = await s.store.copy(
            s.require_principal(), view.folder_id, uids, args.mailbox, move=move
        )
    except NotFound:
        # RFC 9051 §6.4.7: TRYCREATE says the target could be created.
        return [no(cmd.tag, "Mailbox doesn't exist", "TRYCREATE")]
    code = None
    if result.source_uids:
        code = (
            f"COPYUID {result.uidvalidity} {number_set(result.source_uids)} "
            f"{number_set(result.dest_uids)}"
        )
        # number_set sorts; COPYUID pairs the sets in order, and both ascend here.
    if not move:
        return [ok(cmd.tag, f"{verb} completed", code)]
    lines: list[bytes] = []
    if code is not None:
        lines.append(f"OK [{code}] Moved UIDs.".encode())
    # RFC 6851 §3.3: COPYUID before the expunges; with QRESYNC they are one VANISHED
    # line (RFC 7162 §3.2.10).
    return await expunged_reply(s, cmd, result.source_uids, lines, f"{verb} completed")
