"""FETCH and STORE arguments (RFC 9051 §6.4.5, §6.4.6; RFC 3516 BINARY; RFC 7162).

This module owns the grammar of fetch attributes, sections, partials and the store
flag actions; it reads from a :class:`courriel.protocols.imap.lexer.Cursor`.

Invariants:
    * Fetch macros (ALL, FAST, FULL) are expanded here and are refused inside a list.
    * Only :class:`courriel.errors.SyntaxProblem` is raised.
"""

from __future__ import annotations

import re

from courriel.errors import SyntaxProblem
from courriel.protocols.imap.lexer import MAX_MODSEQ, Cursor
from courriel.protocols.imap.types import Fetch, FetchItem, Section, Store

__all__ = ["parse_fetch", "parse_store"]

_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_WORD = re.compile(rb"[A-Za-z.]+")
_STORE_ITEM = re.compile(rb"[+-]?[A-Za-z.]+")
# A header-list of plain atoms, the usual case, read in one match (RFC 9051 §9 header-list).
_FIELD_ATOM = rb"[^\x00-\x20\x7f-\xff(){%*\"\\]+"
_ATOM_FIELDS = re.compile(rb"\((" + _FIELD_ATOM + rb"(?: " + _FIELD_ATOM + rb")*)\)")

# RFC 9051 §6.4.5 fetch macros.
_FAST = ("FLAGS", "INTERNALDATE", "RFC822.SIZE")
_MACROS = {
    "ALL": (*_FAST, "ENVELOPE"),
    "FAST": _FAST,
    "FULL": (*_FAST, "ENVELOPE", "BODY"),
}
# Attributes without a section (RFC 9051 §9 fetch-att; RFC 3501's RFC822.*; RFC 7162 MODSEQ).
_PLAIN = frozenset(
    {
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY", "BODYSTRUCTURE", "UID",
        "MODSEQ", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
    }
)  # fmt: skip
# FetchItem is frozen: the section-less ones are built once and shared.
_PLAIN_ITEMS = {name: FetchItem(name=name) for name in _PLAIN}
_MSGTEXT = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"})
_LBRACKET, _RBRACKET, _LT, _GT, _DOT, _LPAREN = 91, 93, 60, 62, 46, 40


def _part_numbers(cur: Cursor) -> tuple[tuple[int, ...], bool]:
    """``section-part`` and whether a ``.`` follows it (then a section-text comes)."""
    part: list[int] = []
    while 0x30 <= cur.peek() <= 0x39:
        part.append(cur.number(nonzero=True))
        if not cur.accept(_DOT):
            return tuple(part), False
    return tuple(part), bool(part)


def _section(cur: Cursor) -> Section:
    """RFC 9051 §9 ``section``: ``"[" [section-spec] "]"``."""
    cur.expect(_LBRACKET, "Expected [")
    if cur.accept(_RBRACKET):
        return Section()
    part, dotted = _part_numbers(cur)
    if part and not dotted:
        cur.expect(_RBRACKET, "Invalid section")
        return Section(part=part)
    text = cur.word(_SECTION_WORD, "Invalid section")
    if text not in _MSGTEXT and not (text == "MIME" and part):
        raise SyntaxProblem("Invalid section")
    fields: tuple[str, ...] = ()
    if text.startswith("HEADER.FIELDS"):
        cur.sp()
        simple = cur.consume(_ATOM_FIELDS)
        if simple is not None:
            fields = tuple(simple[1].decode("ascii").upper().split(" "))
        else:
            fields = cur.parenthesised(lambda: cur.astring().upper())
    cur.expect(_RBRACKET, "Invalid section")
    return Section(part=part, text=text, fields=fields)


def _binary_section(cur: Cursor) -> Section:
    """RFC 3516 §4.1 ``section-binary``: ``"[" [section-part] "]"``."""
    cur.expect(_LBRACKET, "Expected [")
    part, dotted = _part_numbers(cur)
    if dotted:
        raise SyntaxProblem("Invalid section")
    cur.expect(_RBRACKET, "Invalid section")
    return Section(part=part)


def _partial(cur: Cursor) -> tuple[int, int] | None:
    """RFC 9051 §9 ``partial``: ``"<" number64 "." nz-number64 ">"``."""
    if not cur.accept(_LT):
        return None
    origin = cur.number(maximum=MAX_MODSEQ)
    cur.expect(_DOT, "Invalid partial")
    length = cur.number(maximum=MAX_MODSEQ, nonzero=True)
    cur.expect(_GT, "Invalid partial")
    return origin, length


def _fetch_att(cur: Cursor) -> FetchItem:
    name = cur.word(_NAME, "Invalid fetch attribute")
    if cur.peek() != _LBRACKET:
        plain = _PLAIN_ITEMS.get(name)
        if plain is None:
            raise SyntaxProblem(f"Unknown fetch attribute {name[:40]}")
        return plain
    if name in ("BODY", "BODY.PEEK"):
        section = _section(cur)
        return FetchItem(
            name="BODY[]", section=section, partial=_partial(cur), peek=name == "BODY.PEEK"
        )
    if name in ("BINARY", "BINARY.PEEK"):
        section = _binary_section(cur)
        return FetchItem(
            name="BINARY[]", section=section, partial=_partial(cur), peek=name == "BINARY.PEEK"
        )
    if name == "BINARY.SIZE":
        return FetchItem(name="BINARY.SIZE", section=_binary_section(cur))
    raise SyntaxProblem(f"Unknown fetch attribute {name[:40]}")


def _fetch_items(cur: Cursor) -> tuple[FetchItem, ...]:
    if cur.peek() == _LPAREN:
        return cur.parenthesised(lambda: _fetch_att(cur))
    macro = _MACROS.get(cur.lookahead(_NAME))
    if macro is not None:
        cur.word(_NAME, "Invalid fetch attribute")
        return tuple(_PLAIN_ITEMS[n] for n in macro)
    return (_fetch_att(cur),)


def _fetch_modifiers(cur: Cursor, uid: bool) -> tuple[int | None, bool]:
    """RFC 7162 §3.1.4.1 CHANGEDSINCE and §3.2.6 VANISHED (UID FETCH only)."""
    changed: int | None = None
    vanished = False

    def modifier() -> None:
        nonlocal changed, vanished
        word = cur.upper_atom("Invalid fetch modifier")
        if word == "CHANGEDSINCE" and changed is None:
            cur.sp()
            changed = cur.modseq()
        elif word == "VANISHED" and not vanished:
            vanished = True
        else:
            raise SyntaxProblem("Invalid fetch modifier")

    cur.parenthesised(modifier)
    # RFC 7162 §3.2.6: VANISHED needs CHANGEDSINCE and is only valid in UID FETCH.
    if vanished and (changed is None or not uid):
        raise SyntaxProblem("VANISHED needs UID FETCH and CHANGEDSINCE")
    return changed, vanished


def parse_fetch(cur: Cursor, uid: bool) -> Fetch:
    """``FETCH SP sequence-set SP (macro / fetch-att / "(" fetch-att ... ")") [modifiers]``.

    Args:
        cur: positioned after the verb.
        uid: the command is UID FETCH.

    Returns:
        The parsed arguments.
    """
    cur.sp()
    seqset = cur.seqset(saved=True)  # RFC 5182 §3: `$` too
    cur.sp()
    items = _fetch_items(cur)
    changed, vanished = None, False
    if cur.accept_sp():
        changed, vanished = _fetch_modifiers(cur, uid)
    return Fetch(seqset=seqset, items=items, changed_since=changed, vanished=vanished)


def _unchanged_since(cur: Cursor) -> int:
    """RFC 7162 §3.1.3 store-modifiers: ``(UNCHANGEDSINCE mod-sequence-valzer)``."""

    def modifier() -> int:
        if cur.upper_atom("Invalid store modifier") != "UNCHANGEDSINCE":
            raise SyntaxProblem("Invalid store modifier")
        cur.sp()
        return cur.modseq(zero=True)

    values = cur.parenthesised(modifier)
    if len(values) != 1:
        raise SyntaxProblem("Invalid store modifier")
    return values[0]


def _store_flags(cur: Cursor) -> tuple[str, ...]:
    """``flag-list / (flag *(SP flag))`` (RFC 9051 §9 store-att-flags)."""
    if cur.peek() == _LPAREN:
        return cur.flag_list()
    flags = [cur.flag()]
    while cur.accept_sp():
        flags.append(cur.flag())
    return tuple(flags)


def parse_store(cur: Cursor, uid: bool) -> Store:
    """``STORE SP sequence-set [SP store-modifiers] SP store-att-flags`` (RFC 7162 §3.1.3).

    Args:
        cur: positioned after the verb.
        uid: the command is UID STORE (unused: the grammar is the same).

    Returns:
        The parsed arguments.
    """
    del uid
    cur.sp()
    seqset = cur.seqset(saved=True)  # RFC 5182 §3: `$` too
    cur.sp()
    unchanged: int | None = None
    if cur.peek() == _LPAREN:
        unchanged = _unchanged_since(cur)
        cur.sp()
    item = cur.word(_STORE_ITEM, "Invalid store attribute")
    if item.lstrip("+-") not in ("FLAGS", "FLAGS.SILENT"):
        raise SyntaxProblem("Invalid store attribute")
    cur.sp()
    return Store(
        seqset=seqset,
        mode="+" if item[0] == "+" else "-" if item[0] == "-" else "",
        silent=item.endswith(".SILENT"),
        flags=_store_flags(cur),
        unchanged_since=unchanged,
    )
