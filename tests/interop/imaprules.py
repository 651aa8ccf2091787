"""The normaliser of the Dovecot differential test: named rules, each one RFC-allowed freedom.

Every response of a transcript goes through :data:`RULES` in order (a rule may drop it);
then the responses of one command go through :data:`GROUP_RULES`. What is left must be the
same for Dovecot and for courriel. A rule exists for each thing the RFCs leave to the
server; a difference no rule covers is either a courriel bug or a rule still to write
(with its reason and RFC reference, and a line in the lead's docs/rfcs.md list).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .imapdiff import Item, Literal, Transcript, parse, render

__all__ = ["GROUP_RULES", "RULES", "normalise"]


@dataclass(slots=True)
class Context:
    """State kept across one transcript."""

    verb: str = ""  # the command being answered (UID commands: "UID FETCH" etc.)
    command: str = ""  # its arguments, upper case (what follows the verb)
    validity: dict[bytes, str] = field(default_factory=dict)  # UIDVALIDITY value -> V1, V2...
    implied: set[bytes] = field(default_factory=set)  # names listed \Noselect \HasChildren
    renamed: set[bytes] = field(default_factory=set)  # new names given by RENAME commands

    def uidvalidity(self, value: bytes) -> bytes:
        """The symbolic name of a UIDVALIDITY value (V1 for the first seen, ...)."""
        return self.validity.setdefault(value, f"V{len(self.validity) + 1}").encode()


Rule = Callable[[list[Item], Context], list[Item] | None]  # None drops the response
_STATUS = {b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"}


def _verb(items: list[Item]) -> bytes:
    word = items[1] if len(items) > 1 and isinstance(items[1], bytes) else b""
    if word.isdigit() and len(items) > 2 and isinstance(items[2], bytes):
        return items[2].upper()
    return word.upper()


def drop_capability(items: list[Item], ctx: Context) -> list[Item] | None:
    """capability: CAPABILITY responses and [CAPABILITY ...] codes are not compared."""
    if items[:1] == [b"*"] and _verb(items) == b"CAPABILITY":
        return None
    return [i for i in items if not (isinstance(i, bytes) and i.upper().startswith(b"[CAPAB"))]


def drop_id(items: list[Item], ctx: Context) -> list[Item] | None:
    """id: RFC 2971 ID responses name the server; not compared."""
    return None if items[:1] == [b"*"] and _verb(items) == b"ID" else items


def mask_text(items: list[Item], ctx: Context) -> list[Item] | None:
    """status-text: the human text of OK/NO/BAD/BYE is free (RFC 9051 §7.1); codes are kept."""
    if items[:1] == [b"+"]:
        return [b"+"]
    if len(items) < 2 or not isinstance(items[1], bytes) or items[1].upper() not in _STATUS:
        return items
    kept = items[:2]
    if len(items) > 2 and isinstance(items[2], bytes) and items[2].startswith(b"["):
        kept.append(items[2])
    return kept


_VALIDITY_CODE = re.compile(rb"^\[(UIDVALIDITY|APPENDUID|COPYUID) (\d+)", re.IGNORECASE)


def name_uidvalidity(items: list[Item], ctx: Context) -> list[Item] | None:
    """uidvalidity: values are the server's choice (RFC 9051 §2.3.1.1): named V1, V2, ..."""
    out: list[Item] = []
    for index, item in enumerate(items):
        named = item
        if isinstance(item, bytes) and (match := _VALIDITY_CODE.match(item)):
            value = match.group(2)
            named = item[: match.start(2)] + ctx.uidvalidity(value) + item[match.end(2) :]
        elif isinstance(item, list) and _verb(items) == b"STATUS" and index == len(items) - 1:
            named = list(item)
            for pos in range(0, len(named) - 1, 2):
                value = named[pos + 1]
                if named[pos] == b"UIDVALIDITY" and isinstance(value, bytes):
                    named[pos + 1] = ctx.uidvalidity(value)
        out.append(named)
    return out


_MODSEQ_CODE = re.compile(rb"^\[HIGHESTMODSEQ \d+\]$", re.IGNORECASE)


def mask_modseq(items: list[Item], ctx: Context) -> list[Item] | None:
    """modseq: mod-sequence values are the server's choice (RFC 7162 §3.1.1: they only grow;
    Dovecot gives messages appended together one value, courriel one each): the values of
    MODSEQ in FETCH, of [HIGHESTMODSEQ n] and of STATUS HIGHESTMODSEQ are compared as M."""
    out: list[Item] = []
    for index, item in enumerate(items):
        masked = item
        if isinstance(item, bytes) and _MODSEQ_CODE.match(item):
            masked = b"[HIGHESTMODSEQ M]"
        elif isinstance(item, list) and index == len(items) - 1 and len(items) > 2:
            masked = _mask_pairs(item, b"MODSEQ" if _verb(items) == b"FETCH" else b"HIGHESTMODSEQ")
        out.append(masked)
    return out


def _mask_pairs(attrs: list[Item], name: bytes) -> list[Item]:
    masked = list(attrs)
    for pos in range(0, len(masked) - 1, 2):
        key = masked[pos]
        if isinstance(key, bytes) and key.upper() == name:
            masked[pos + 1] = [b"M"] if isinstance(masked[pos + 1], list) else b"M"
    return masked


_HINTS = {b"\\marked", b"\\unmarked"}


def drop_hints(items: list[Item], ctx: Context) -> list[Item] | None:
    """hints: optional server hints are not compared: the LIST attributes \\\\Marked and
    \\\\Unmarked (RFC 9051 §7.3.1: a server MAY send them) and the [CLIENTBUG] code
    (RFC 5530 §3: informational; Dovecot adds it to a STATUS of the selected mailbox)."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, bytes) and item.upper() == b"[CLIENTBUG]":
            continue
        if isinstance(item, list) and _verb(items) in (b"LIST", b"LSUB"):
            out.append([a for a in item if not (isinstance(a, bytes) and a.lower() in _HINTS)])
        else:
            out.append(item)
    return out


# (command, response code) pairs where Dovecot 2.3 answers a bare NO and courriel adds the
# code: RFC 5530 §3 codes are optional.
_OPTIONAL_CODES = {
    ("SELECT", b"[NONEXISTENT]"),
    ("EXAMINE", b"[NONEXISTENT]"),
    ("STATUS", b"[NONEXISTENT]"),
    ("DELETE", b"[CANNOT]"),
}
_BADCHARSET = re.compile(rb"^\[BADCHARSET .*\]$", re.IGNORECASE | re.DOTALL)


def optional_codes(items: list[Item], ctx: Context) -> list[Item] | None:
    """optional-codes: NONEXISTENT on SELECT/EXAMINE/STATUS and CANNOT on DELETE INBOX are
    compared as a bare NO (RFC 5530 §3); [BADCHARSET (list)] as [BADCHARSET] (the list is
    optional, RFC 9051 §7.1)."""
    if len(items) != 3 or items[1] != b"NO" or not isinstance(items[2], bytes):
        return items
    if (ctx.verb, items[2].upper()) in _OPTIONAL_CODES:
        return items[:2]
    if _BADCHARSET.match(items[2]):
        return [*items[:2], b"[BADCHARSET]"]
    return items


def implied_parent(items: list[Item], ctx: Context) -> list[Item] | None:
    """implied-parent: CREATE a/b/c makes the superior names a and a/b (RFC 9051 §6.3.4:
    SHOULD). Dovecot makes them \\\\Noselect placeholders, courriel real folders: a name
    Dovecot once listed as "\\\\Noselect \\\\HasChildren" is compared without \\\\Noselect."""
    if _verb(items) not in (b"LIST", b"LSUB") or len(items) < 5 or not isinstance(items[2], list):
        return items
    last = items[-1]
    name = last.data if isinstance(last, Literal) else last
    if not isinstance(name, bytes):
        return items
    attributes = [a.lower() for a in items[2] if isinstance(a, bytes)]
    if b"\\noselect" in attributes and b"\\haschildren" in attributes:
        ctx.implied.add(name)
    if name not in ctx.implied:
        return items
    kept = [a for a in items[2] if not (isinstance(a, bytes) and a.lower() == b"\\noselect")]
    return [*items[:2], kept, *items[3:]]


_CHILDREN = {b"\\haschildren", b"\\hasnochildren"}
_SPECIAL = {b"\\all", b"\\archive", b"\\drafts", b"\\flagged", b"\\junk", b"\\sent", b"\\trash"}


def unasked_attributes(items: list[Item], ctx: Context) -> list[Item] | None:
    """unasked-attributes: an extended LIST that does not ask for CHILDREN or SPECIAL-USE
    may still get those attributes (RFC 5258 §4: a server MAY return child information
    unasked; RFC 6154 §1: special-use attributes are optional in any LIST): compared
    without them."""
    extended = ctx.command.startswith("(") or " RETURN " in ctx.command
    if _verb(items) != b"LIST" or not extended or not isinstance(items[2], list):
        return items
    dropped: set[bytes] = set()
    if "CHILDREN" not in ctx.command:
        dropped |= _CHILDREN
    if "SPECIAL-USE" not in ctx.command:
        dropped |= _SPECIAL
    kept = [a for a in items[2] if not (isinstance(a, bytes) and a.lower() in dropped)]
    return [*items[:2], kept, *items[3:]]


def lsub_attributes(items: list[Item], ctx: Context) -> list[Item] | None:
    """lsub-attributes: LSUB may flag a subscribed name that is no mailbox (any more) with
    \\Noselect, or not (RFC 3501 §6.3.9, §7.2.3), and may carry special-use attributes,
    or not (RFC 6154 §1): LSUB is compared without either."""
    if _verb(items) != b"LSUB" or not isinstance(items[2], list):
        return items
    dropped = _SPECIAL | {b"\\noselect"}
    kept = [a for a in items[2] if not (isinstance(a, bytes) and a.lower() in dropped)]
    return [*items[:2], kept, *items[3:]]


def rename_subscribes(items: list[Item], ctx: Context) -> list[Item] | None:
    """rename-subscribes: courriel subscribes the new names of a renamed subscribed folder
    (and keeps the old names subscribed); Dovecot only keeps the old ones. The RFCs leave
    it open (RFC 9051 §6.3.6 says nothing of subscriptions): names made by a RENAME of
    this session are compared without their subscription."""
    if _verb(items) not in (b"LSUB", b"LIST") or len(items) < 5:
        return items
    last = items[-1]
    name = last.data if isinstance(last, Literal) else last
    if not isinstance(name, bytes) or not any(
        name == new or name.startswith(new + b"/") for new in ctx.renamed
    ):
        return items
    if _verb(items) == b"LSUB":
        return None
    if isinstance(items[2], list):
        kept = [a for a in items[2] if not (isinstance(a, bytes) and a.lower() == b"\\subscribed")]
        return [*items[:2], kept, *items[3:]]
    return items


def mailbox_keywords(items: list[Item], ctx: Context) -> list[Item] | None:
    """mailbox-keywords: which keywords FLAGS and PERMANENTFLAGS name is the server's choice
    (RFC 9051 §7.3.5; Dovecot names every keyword ever used in the mailbox): compared with
    system flags and \\* only."""
    out = list(items)
    if _verb(items) == b"FLAGS" and isinstance(out[-1], list):
        out[-1] = [f for f in out[-1] if isinstance(f, bytes) and f.startswith(b"\\")]
    for index, item in enumerate(out):
        if isinstance(item, bytes) and item.upper().startswith(b"[PERMANENTFLAGS"):
            inner, _ = parse(item[len(b"[PERMANENTFLAGS") : -1])
            flags = inner[0] if inner and isinstance(inner[0], list) else []
            names = [f for f in flags if isinstance(f, bytes) and f.startswith(b"\\")]
            out[index] = b"[PERMANENTFLAGS (" + b" ".join(names) + b")]"
    return out


def missing_section(items: list[Item], ctx: Context) -> list[Item] | None:
    """missing-section: BODY[n] of a part that does not exist is NIL (courriel) or ""
    (Dovecot); the RFCs name neither (RFC 9051 §6.4.5): compared as NIL."""
    if _verb(items) != b"FETCH" or len(items) < 4 or not isinstance(items[3], list):
        return items
    attrs = list(items[3])
    for index in range(0, len(attrs) - 1, 2):
        name, value = attrs[index], attrs[index + 1]
        if isinstance(name, bytes) and name.upper().startswith(b"BODY[") and value == Literal(b""):
            attrs[index + 1] = b"NIL"
    return [*items[:3], attrs]


_DAY = re.compile(rb"^ (\d-)")


def internaldate_day(items: list[Item], ctx: Context) -> list[Item] | None:
    """date-day: an INTERNALDATE day may be " 1" or "01" (RFC 9051 §9, date-day-fixed)."""
    if _verb(items) != b"FETCH" or len(items) < 4 or not isinstance(items[3], list):
        return items
    attrs = list(items[3])
    for index in range(0, len(attrs) - 1, 2):
        value = attrs[index + 1]
        if attrs[index] == b"INTERNALDATE" and isinstance(value, Literal):
            attrs[index + 1] = Literal(_DAY.sub(rb"0\1", value.data))
    return [*items[:3], attrs]


def _sorted_flags(value: list[Item]) -> list[Item]:
    return sorted(value, key=lambda flag: flag if isinstance(flag, bytes) else b"")


def sort_flags(items: list[Item], ctx: Context) -> list[Item] | None:
    """flag-order: a flag list is a set (RFC 9051 §2.3.2): compared sorted."""
    out = list(items)
    if _verb(items) == b"FLAGS" and isinstance(out[-1], list):
        out[-1] = _sorted_flags(out[-1])
    for index, item in enumerate(out):
        if isinstance(item, bytes) and item.upper().startswith(b"[PERMANENTFLAGS"):
            inner, _ = parse(item[len(b"[PERMANENTFLAGS") : -1])
            flags = inner[0] if inner and isinstance(inner[0], list) else []
            names = [f for f in _sorted_flags(flags) if isinstance(f, bytes)]
            out[index] = b"[PERMANENTFLAGS (" + b" ".join(names) + b")]"
    return out


def sort_fetch_items(items: list[Item], ctx: Context) -> list[Item] | None:
    """fetch-item-order: data items of a FETCH response may come in any order (§7.5.2)."""
    if len(items) < 4 or _verb(items) != b"FETCH" or not isinstance(items[3], list):
        return items
    pairs: list[tuple[bytes, Item]] = []
    attrs = items[3]
    for index in range(0, len(attrs) - 1, 2):
        name, value = attrs[index], attrs[index + 1]
        if isinstance(name, bytes):
            if name.upper() == b"FLAGS" and isinstance(value, list):
                value = _sorted_flags(value)
            pairs.append((name.upper(), value))
    pairs.sort(key=lambda pair: pair[0])
    return [*items[:3], [part for pair in pairs for part in pair]]


RULES: tuple[tuple[str, Rule], ...] = (
    ("capability", drop_capability),
    ("id", drop_id),
    ("status-text", mask_text),
    ("uidvalidity", name_uidvalidity),
    ("modseq", mask_modseq),
    ("hints", drop_hints),
    ("optional-codes", optional_codes),
    ("unasked-attributes", unasked_attributes),
    ("lsub-attributes", lsub_attributes),
    ("rename-subscribes", rename_subscribes),
    ("mailbox-keywords", mailbox_keywords),
    ("missing-section", missing_section),
    ("implied-parent", implied_parent),
    ("date-day", internaldate_day),
    ("flag-order", sort_flags),
    ("fetch-item-order", sort_fetch_items),
)


# --- rules over the responses of one command ------------------------------------------------

Group = list[tuple[list[Item], str]]  # (parsed, rendered) responses of one command


def untagged_order(group: Group, ctx: Context) -> Group:
    """untagged-order: LIST/LSUB responses come in no set order (RFC 9051 §6.3.9), nor do
    the responses of SELECT/EXAMINE (§6.3.2): compared sorted (LIST by mailbox name)."""
    if ctx.verb not in ("LIST", "LSUB", "SELECT", "EXAMINE"):
        return group
    untagged = [entry for entry in group if entry[0][:1] == [b"*"]]
    rest = [entry for entry in group if entry[0][:1] != [b"*"]]

    def key(entry: tuple[list[Item], str]) -> tuple[str, str]:
        items, text = entry
        if _verb(items) in (b"LIST", b"LSUB"):
            return (render(items[-1:]), text)
        return ("", text)

    return sorted(untagged, key=key) + rest


def expunge_order(group: Group, ctx: Context) -> Group:
    """expunge-order: several messages expunged at once may be reported in any order that
    keeps sequence numbers right (RFC 9051 §7.5.1): a run of EXPUNGE responses is compared
    as the original numbers it removes, highest first (Dovecot's order)."""
    out: Group = []
    index = 0
    while index < len(group):
        run: list[int] = []
        while index < len(group) and _verb(group[index][0]) == b"EXPUNGE":
            number = group[index][0][1]
            run.append(int(number) if isinstance(number, bytes) else 0)
            index += 1
        if run:
            out.extend(_expunges(run))
        else:
            out.append(group[index])
            index += 1
    return out


def _expunges(run: list[int]) -> Iterator[tuple[list[Item], str]]:
    # Replay the run on positions 1..n (n large enough) to find the original numbers.
    positions = list(range(1, max(run) + len(run) + 1))
    removed = [positions.pop(number - 1) for number in run]
    for number in sorted(removed, reverse=True):
        items: list[Item] = [b"*", str(number).encode(), b"EXPUNGE"]
        yield items, render(items)


GROUP_RULES: tuple[tuple[str, Callable[[Group, Context], Group]], ...] = (
    ("untagged-order", untagged_order),
    ("expunge-order", expunge_order),
)


def _command_verb(command: str) -> str:
    words = command.upper().split()
    if len(words) > 2 and words[1] == "UID":
        return "UID " + words[2]
    return words[1] if len(words) > 1 else ""


def normalise(transcript: Transcript) -> list[str]:
    """The transcript as ``C:``/``S:`` lines after every rule."""
    ctx = Context()
    lines: list[str] = []
    for number, command, responses in transcript.steps:
        lines.append(f"C: {command}    # line {number}")
        ctx.verb = _command_verb(command)
        ctx.command = command.upper().split(ctx.verb, 1)[-1].strip()
        if ctx.verb == "RENAME":
            ctx.renamed.add(command.split()[-1].strip('"').encode())
        group: Group = []
        for response in responses:
            items: list[Item] | None = parse(response)[0]
            for _name, rule in RULES:
                if items is None:
                    break
                items = rule(items, ctx)
            if items is not None:
                group.append((items, render(items)))
        for _name, group_rule in GROUP_RULES:
            group = group_rule(group, ctx)
        lines.extend("S: " + text for _, text in group)
    return lines
