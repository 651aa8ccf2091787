"""FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 CONDSTORE, QRESYNC).

This module owns building FETCH responses item by item. Invariants:

* A non-peek body item (``BODY[...]``, ``BINARY[...]``, ``RFC822``, ``RFC822.TEXT``)
  sets ``\\Seen`` in a read-write folder before the response is built, and the
  response then carries ``FLAGS`` (RFC 9051 §6.4.5).
* ``UID`` comes first in a UID FETCH response, and in every response once CONDSTORE
  is on (RFC 7162 §3.2), as does ``MODSEQ``.
* A message that disappeared while being read is skipped and the command ends with
  ``NO [EXPUNGEISSUED]`` (RFC 5530 §3), as Dovecot does.
* Responses are a :class:`Stream`: each message is read, built and written before the
  next one is read, so memory holds one message's response at a time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from courriel.errors import CourrielError, InvalidInput, NotFound
from courriel.mailstore.imapport import MessageMeta
from courriel.protocols.imap.actions import (
    INTERNAL_ERROR,
    Action,
    Stream,
    bad,
    no,
    ok,
    untagged_lines,
)
from courriel.protocols.imap.commands.qresync import vanished_earlier
from courriel.protocols.imap.encode import flag_list, internal_date, literal
from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.types import Command, Fetch, FetchItem, Section

if TYPE_CHECKING:
    from courriel.protocols.imap.selected import SelectedFolder
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_fetch", "invalid_set", "section_spec"]

log = logging.getLogger(__name__)

# Items that need the message's octets or parsed structure.
_BODY_ITEMS = frozenset(
    {"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
    | {"BODY[]", "BINARY[]", "BINARY.SIZE"}
)
# Items that set \Seen unless PEEKed (RFC 9051 §6.4.5).
_SEEING = frozenset({"RFC822", "RFC822.TEXT", "BODY[]", "BINARY[]"})


class _UnknownCte(Exception):
    """BINARY met a Content-Transfer-Encoding it cannot undo (RFC 3516 §4.2)."""


def invalid_set(cmd: Command) -> Action:
    """Dovecot's BAD for a sequence number beyond the message count (RFC 9051 §6.4.8)."""
    return bad(cmd.tag, f"Error in IMAP command {cmd.name}: Invalid messageset")


def section_spec(section: Section | None) -> bytes:
    """The ``section`` text between brackets, as the response echoes it."""
    if section is None:
        return b""
    parts = [".".join(str(n) for n in section.part)] if section.part else []
    if section.text:
        text = section.text
        if section.fields:
            text += " (" + " ".join(section.fields) + ")"
        parts.append(text)
    return ".".join(parts).encode("ascii", "replace")


def _sets_seen(item: FetchItem) -> bool:
    return item.name in _SEEING and not item.peek


def _partial(data: bytes, item: FetchItem) -> tuple[bytes, bytes]:
    """The octets and the ``<origin>`` suffix of a partial fetch (RFC 9051 §6.4.5)."""
    if item.partial is None:
        return data, b""
    origin, count = item.partial
    return data[origin : origin + count], b"<%d>" % origin


def _body_item(item: FetchItem, msg: ParsedMessage) -> bytes:
    section = item.section or Section()
    name = b"BODY[" + section_spec(section) + b"]"
    data = msg.section(section)
    if data is None:
        return name + b" NIL"
    chunk, suffix = _partial(data, item)
    return name + suffix + b" " + literal(chunk)


def _binary_item(item: FetchItem, msg: ParsedMessage) -> bytes:
    part = item.section.part if item.section is not None else ()
    spec = ".".join(str(n) for n in part).encode()
    try:
        data = msg.binary(part)
    except InvalidInput as exc:
        raise _UnknownCte from exc
    if item.name == "BINARY.SIZE":
        size = b"NIL" if data is None else b"%d" % len(data)
        return b"BINARY.SIZE[" + spec + b"] " + size
    if data is None:
        return b"BINARY[" + spec + b"] NIL"
    chunk, suffix = _partial(data, item)
    # RFC 3516 §4.2: literal8 when the content has NUL octets.
    return b"BINARY[" + spec + b"]" + suffix + b" " + literal(chunk, binary=b"\x00" in chunk)


def _item(item: FetchItem, meta: MessageMeta, msg: ParsedMessage | None) -> bytes:
    name = item.name
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + internal_date(meta.internal_date)
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % meta.size
    assert msg is not None  # every other item is in _BODY_ITEMS
    if name == "ENVELOPE":
        return b"ENVELOPE " + msg.envelope()
    if name in ("BODY", "BODYSTRUCTURE"):
        return name.encode() + b" " + msg.body_structure(extended=name == "BODYSTRUCTURE")
    if name == "RFC822":
        return b"RFC822 " + literal(msg.section(Section()) or b"")
    if name in ("RFC822.HEADER", "RFC822.TEXT"):
        data = msg.section(Section(text=name.split(".")[1])) or b""
        return name.encode() + b" " + literal(data)
    if name == "BODY[]":
        return _body_item(item, msg)
    return _binary_item(item, msg)


async def _mark_seen(s: ImapSession, view: SelectedFolder, uids: list[int]) -> None:
    unseen = [u for u in uids if not any(f.lower() == "\\seen" for f in view.meta[u].flags)]
    if not unseen:
        return
    result = await s.store.store_flags(
        s.require_principal(), view.folder_id, unseen, "+", ["\\Seen"]
    )
    view.set_meta(result.updated)


def _wants(cmd: Fetch) -> tuple[bool, bool]:
    """Whether the items need the message, and whether they set \\Seen."""
    needs = any(i.name in _BODY_ITEMS for i in cmd.items)
    seeing = any(_sets_seen(i) for i in cmd.items)
    return needs, seeing


async def cmd_fetch(s: ImapSession, cmd: Command) -> list[Action]:
    """SELECTED. RFC 9051 §6.4.5 FETCH, §6.4.9 UID FETCH; RFC 7162 §3.1.4 CHANGEDSINCE."""
    args = cmd.args
    assert isinstance(args, Fetch)
    view = s.require_selected()
    if args.vanished and not s.enabled.qresync:
        # RFC 7162 §3.2.6: VANISHED is BAD unless QRESYNC was enabled.
        return [bad(cmd.tag, "Error in IMAP command UID FETCH: QRESYNC not enabled")]
    uids = view.resolve(args.seqset, uid=cmd.uid)
    if uids is None:
        return [invalid_set(cmd)]
    if args.changed_since is not None or any(i.name == "MODSEQ" for i in args.items):
        s.enabled.condstore = True  # RFC 7162 §3.1: CONDSTORE enabling commands
    if args.changed_since is not None:
        uids = [u for u in uids if view.meta[u].modseq > args.changed_since]
    needs, seeing = _wants(args)
    seeing = seeing and not view.readonly
    if seeing:
        await _mark_seen(s, view, uids)
    opts = s.update_options(cmd)
    out: list[Action] = []
    if args.vanished and args.changed_since is not None:
        # RFC 7162 §3.2.6: the UIDs of the set expunged after CHANGEDSINCE, first.
        known = view.concrete(args.seqset, uid=True)  # RFC 5182 §3: `$` too
        lines = await vanished_earlier(s, view, args.changed_since, known)
        out += [untagged_lines(lines)] if lines else []
    stream = _stream(s, view, uids, cmd, needs=needs, seeing=seeing, uid=opts.uid)
    return [*out, Stream(parts=stream)]


async def _stream(
    s: ImapSession,
    view: SelectedFolder,
    uids: list[int],
    cmd: Command,
    *,
    needs: bool,
    seeing: bool,
    uid: bool,
) -> AsyncIterator[bytes]:
    """One response per message, then the tagged line (read and written one by one)."""
    args = cmd.args
    assert isinstance(args, Fetch)
    missing = False
    status = ok(cmd.tag, "Fetch completed")
    for n in uids:
        if n not in view.meta:
            # Expunged and announced by the updates written before this stream (UID
            # FETCH may carry EXPUNGE/VANISHED, RFC 9051 §7.5.1): nothing to send.
            continue
        try:
            yield await _response(s, view, n, args, needs=needs, seeing=seeing, uid_first=uid)
        except NotFound:
            missing = True
        except _UnknownCte:
            status = no(cmd.tag, "Unknown Content-Transfer-Encoding.", "UNKNOWN-CTE")
            break
        except CourrielError:
            log.exception("imap: FETCH of UID %d failed", n)
            status = no(cmd.tag, INTERNAL_ERROR, "SERVERBUG")
            break
    if missing and status.data.startswith(cmd.tag.encode() + b" OK"):
        status = no(cmd.tag, "Some of the requested messages no longer exist.", "EXPUNGEISSUED")
    yield status.data


async def _response(
    s: ImapSession,
    view: SelectedFolder,
    uid: int,
    args: Fetch,
    *,
    needs: bool,
    seeing: bool,
    uid_first: bool,
) -> bytes:
    meta = view.meta[uid]
    msg = await s.message(meta) if needs else None
    names = {i.name for i in args.items}
    items: list[bytes] = []
    # Dovecot's order: UID first for UID FETCH, implied FLAGS next, then the items
    # as requested; MODSEQ last when CONDSTORE adds it unasked (RFC 7162 §3.2).
    if uid_first:
        items.append(b"UID %d" % uid)
    flags = b""
    if seeing or "FLAGS" in names:  # sorting the flags is per message: only when sent
        flags = b"FLAGS " + flag_list(view.flags_of(uid, rev1=not s.enabled.rev2))
    if seeing and "FLAGS" not in names:
        items.append(flags)
    for item in args.items:
        if item.name == "UID":
            if not uid_first:
                items.append(b"UID %d" % uid)
        elif item.name == "FLAGS":
            items.append(flags)
        elif item.name == "MODSEQ":
            items.append(b"MODSEQ (%d)" % meta.modseq)
        else:
            items.append(_item(item, meta, msg))
    if s.enabled.condstore and "MODSEQ" not in names:
        items.append(b"MODSEQ (%d)" % meta.modseq)
    seq = view.seq_of(uid)
    return b"* %d FETCH (" % (seq or 0) + b" ".join(items) + b")\r\n"
