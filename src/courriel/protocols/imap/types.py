"""Typed IMAP commands: what :mod:`courriel.protocols.imap.parser` produces.

This module owns the command AST shared by the parser (bytes → these dataclasses) and
the session (these dataclasses → responses). It holds no logic beyond small helpers.

Conventions:
    * Mailbox names are already decoded to Unicode (modified UTF-7 per RFC 3501 §5.1.3,
      or UTF-8 after ``ENABLE UTF8=ACCEPT``) and ``INBOX`` in any case is ``"INBOX"``.
    * Atoms the grammar makes case-insensitive (command names, fetch items, search keys,
      system flags) are upper-cased by the parser, except flags, which keep the
      canonical spelling (``\\Seen``); keywords keep the client's spelling.
    * A sequence set bound of ``*`` is :data:`STAR` (RFC 9051 §9 ``seq-number``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

__all__ = [
    "STAR",
    "Append",
    "Authenticate",
    "BadCommand",
    "Command",
    "Continue",
    "CopyMove",
    "Enable",
    "Expunge",
    "Fetch",
    "FetchItem",
    "Id",
    "List",
    "Login",
    "MailboxArg",
    "ParserEvent",
    "RawLine",
    "Rename",
    "Search",
    "SearchKey",
    "Section",
    "Select",
    "SeqSet",
    "Simple",
    "Status",
    "Store",
]

STAR = 0  # ``*`` in a sequence set: the largest number in use (never a real number)


@dataclass(frozen=True, slots=True)
class SeqSet:
    """An RFC 9051 §9 ``sequence-set``: ranges of numbers, ``*`` as :data:`STAR`.

    ``ranges`` keep the client's order and bounds (``4:2`` stays ``(4, 2)``); use
    :meth:`resolve` to get concrete numbers. ``saved`` is RFC 5182's ``$`` (SEARCHRES):
    the result saved by the last ``SEARCH RETURN (SAVE)``, with ``ranges`` empty; only
    the selected folder knows what it names
    (:meth:`courriel.protocols.imap.selected.SelectedFolder.concrete`).
    """

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False  # RFC 5182 §2.1: ``$``, the saved search result

    def resolve(self, largest: int) -> list[int]:
        """The distinct numbers of the set, ascending, with ``*`` as ``largest``.

        RFC 9051 §6.4.4: numbers above ``largest`` are kept (a UID set may name UIDs
        that no longer exist; the caller filters). With ``largest`` 0 (an empty
        mailbox), ``*`` stands for nothing and ranges using it are empty.
        """
        out: set[int] = set()
        for low, high in self.ranges:
            if largest == 0 and STAR in (low, high):
                continue
            a = largest if low == STAR else low
            b = largest if high == STAR else high
            if a > b:
                a, b = b, a
            out.update(range(a, b + 1))
        return sorted(out)

    def contains(self, number: int, largest: int) -> bool:
        """True when ``number`` is in the set (without expanding it)."""
        for low, high in self.ranges:
            if largest == 0 and STAR in (low, high):
                continue
            a = largest if low == STAR else low
            b = largest if high == STAR else high
            if min(a, b) <= number <= max(a, b):
                return True
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """The part of ``BODY[section]`` / ``BINARY[section]`` (RFC 9051 §6.4.5).

    ``part`` is the dotted part number (empty for the whole message); ``text`` is one of
    ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT``, ``MIME`` or None;
    ``fields`` are the upper-cased header names of ``HEADER.FIELDS[.NOT]``.
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchItem:
    """One fetch attribute (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).

    ``name`` is one of ``FLAGS``, ``INTERNALDATE``, ``RFC822.SIZE``, ``ENVELOPE``,
    ``BODY`` (the non-extensible structure), ``BODYSTRUCTURE``, ``UID``, ``MODSEQ``,
    ``RFC822``, ``RFC822.HEADER``, ``RFC822.TEXT``, ``BODY[]`` (any ``BODY[section]``),
    ``BINARY[]`` (any ``BINARY[section]``), ``BINARY.SIZE``.
    Macros (ALL, FAST, FULL) are expanded by the parser.
    """

    name: str
    section: Section | None = None  # for BODY[] / BINARY[] / BINARY.SIZE
    partial: tuple[int, int] | None = None  # <origin.octets>
    peek: bool = False  # BODY.PEEK / BINARY.PEEK: do not set \Seen


# -- search (RFC 9051 §6.4.4) ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchKey:
    """One search criterion; ``op`` says which, the other fields carry its arguments.

    ``op`` values and their fields:

    * ``ALL``; ``AND`` (``keys``); ``OR`` (``keys``, two); ``NOT`` (``keys``, one)
    * ``FLAG`` (``text`` is the flag or keyword, ``negate`` for UN…): ANSWERED, DELETED,
      DRAFT, FLAGGED, SEEN, KEYWORD and their UN… forms
    * ``NEW``, ``OLD``, ``RECENT`` (IMAP4rev1 only)
    * ``HEADER`` (``field`` upper-cased, ``text``): also BCC, CC, FROM, SUBJECT, TO
    * ``BODY``, ``TEXT`` (``text``)
    * ``BEFORE``, ``ON``, ``SINCE`` (``day``, internal date); ``SENTBEFORE``, ``SENTON``,
      ``SENTSINCE`` (``day``, the Date: header)
    * ``LARGER``, ``SMALLER`` (``number``)
    * ``SEQ`` (``seqset``), ``UID`` (``seqset``)
    * ``MODSEQ`` (``number``; RFC 7162 §3.1.5, the optional entry name is ignored)
    * ``OLDER``, ``YOUNGER`` (``number`` seconds, RFC 5032) are not parsed.
    """

    op: str
    keys: tuple[SearchKey, ...] = ()
    text: str = ""
    field: str = ""
    negate: bool = False
    day: date | None = None
    number: int = 0
    seqset: SeqSet | None = None


# -- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Simple:
    """A command without arguments: CAPABILITY, NOOP, LOGOUT, STARTTLS, IDLE, CHECK,
    CLOSE, UNSELECT, NAMESPACE."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """LOGIN (RFC 9051 §6.2.3)."""

    user: str
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate:
    """AUTHENTICATE (RFC 9051 §6.2.2) with an optional SASL-IR initial response (RFC 4959).

    ``initial`` is the raw base64 text (``"="`` for an empty response), not decoded.
    """

    mechanism: str  # upper-cased
    initial: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable:
    """ENABLE (RFC 5161): capability names, upper-cased."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Select:
    """SELECT or EXAMINE (``readonly``), with RFC 7162 parameters.

    ``qresync`` is ``(uidvalidity, modseq, known_uids, (seq_match, uid_match))`` with the
    optional parts None.
    """

    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: tuple[int, int, SeqSet | None, tuple[SeqSet, SeqSet] | None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxArg:
    """A command whose argument is one mailbox: CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE.

    ``special_use`` is CREATE's RFC 6154 §3 ``USE (\\Sent)`` option.
    """

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename:
    """RENAME (RFC 9051 §6.3.6)."""

    old: str
    new: str


@dataclass(frozen=True, slots=True, kw_only=True)
class List:
    """LIST (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819) or LSUB.

    ``reference`` and ``patterns`` are decoded like mailbox names but keep ``*`` and
    ``%``. ``selection`` holds upper-cased options (SUBSCRIBED, REMOTE,
    RECURSIVEMATCH, SPECIAL-USE); ``returns`` holds upper-cased return options
    (SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS); ``status_items`` the items of
    ``RETURN (STATUS (...))``.
    """

    reference: str
    patterns: tuple[str, ...]
    lsub: bool = False
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """STATUS (RFC 9051 §6.3.11): items upper-cased (MESSAGES, UIDNEXT, UIDVALIDITY,
    UNSEEN, DELETED, SIZE, RECENT, HIGHESTMODSEQ)."""

    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Append:
    """APPEND (RFC 9051 §6.3.12); ``message`` is the literal's octets.

    ``binary`` is RFC 3516's ``~{n}`` literal8 form.
    """

    mailbox: str
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    message: bytes = b""
    binary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE with ``uids`` (RFC 4315 §2.1)."""

    uids: SeqSet | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Search:
    """SEARCH / UID SEARCH, with ESEARCH return options (RFC 4731, RFC 9051 §6.4.4).

    ``returns`` is None for a plain IMAP4rev1 SEARCH (no RETURN given); otherwise the
    upper-cased options (MIN, MAX, ALL, COUNT; an empty ``RETURN ()`` means ALL).
    ``key`` is an ``AND`` of the top-level criteria.
    """

    key: SearchKey
    charset: str | None = None
    returns: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch:
    """FETCH / UID FETCH with RFC 7162 modifiers (CHANGEDSINCE, VANISHED)."""

    seqset: SeqSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    """STORE / UID STORE (RFC 9051 §6.4.6, UNCHANGEDSINCE RFC 7162 §3.1.3).

    ``mode`` is ``"+"``, ``"-"`` or ``""`` (replace); ``flags`` keep their spelling.
    """

    seqset: SeqSet
    mode: Literal["+", "-", ""]
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyMove:
    """COPY / MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8, RFC 6851)."""

    seqset: SeqSet
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Id:
    """ID (RFC 2971): the client's field/value pairs, or None for ``NIL``."""

    params: tuple[tuple[str, str | None], ...] | None


Arguments = (
    Simple
    | Login
    | Authenticate
    | Enable
    | Select
    | MailboxArg
    | Rename
    | List
    | Status
    | Append
    | Expunge
    | Search
    | Fetch
    | Store
    | CopyMove
    | Id
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One complete command.

    ``name`` is the upper-cased verb without ``UID`` (``FETCH`` for ``UID FETCH``, with
    ``uid`` True); ``EXAMINE`` keeps its name (its ``args`` is a Select with
    ``readonly``); LSUB keeps its name (a List with ``lsub``).
    """

    tag: str
    name: str
    args: Arguments = field(default_factory=Simple)
    uid: bool = False


# -- other parser events --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Continue:
    """A synchronising literal was announced and accepted: send ``+ Ready`` now
    (RFC 9051 §7.5). The command is not complete yet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BadCommand:
    """A command line that could not be parsed; the parser has skipped it whole.

    ``tag`` is None when no valid tag was read (answer with an untagged ``* BAD``).
    ``code`` is a response code such as ``TOOBIG`` (RFC 7888 §4 / RFC 4469) or
    ``BADCHARSET``, or None. ``text`` is a short public explanation. ``verb`` is the
    upper-cased command name when it was read. ``resets_saved`` says the command was a
    ``SEARCH RETURN (SAVE)`` answered NO (BADCHARSET), which empties the saved result
    (RFC 5182 §2.1).
    """

    tag: str | None
    text: str
    code: str | None = None
    verb: str | None = None
    resets_saved: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RawLine:
    """A line read in raw mode (an AUTHENTICATE response, IDLE's ``DONE``), CRLF removed."""

    text: str


ParserEvent = Command | Continue | BadCommand | RawLine
