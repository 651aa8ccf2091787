"""SEARCH arguments (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ,
RFC 5182 SEARCHRES).

This module owns the search-program grammar: return options, the charset and the tree
of search keys, read from a :class:`courriel.protocols.imap.lexer.Cursor`.

Invariants:
    * The result's key is always an ``AND`` of the top-level criteria.
    * Nesting (parentheses, NOT, OR) is bounded by :data:`MAX_DEPTH`, so a hostile
      command cannot exhaust the stack.
    * Only :class:`courriel.errors.SyntaxProblem` is raised; an unsupported charset raises
      it with :data:`BADCHARSET_TEXT` so the caller can add the BADCHARSET code.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from courriel.errors import SyntaxProblem
from courriel.protocols.imap.lexer import MAX_MODSEQ, Cursor
from courriel.protocols.imap.types import Search, SearchKey

__all__ = ["BADCHARSET_TEXT", "CHARSETS", "MAX_DEPTH", "parse_search", "requests_save"]

# RFC 9051 §6.4.4: UTF-8 MUST be supported; US-ASCII is the default (RFC 3501).
CHARSETS = ("UTF-8", "US-ASCII")
BADCHARSET_TEXT = "Unsupported charset, use one of (UTF-8 US-ASCII)"
MAX_DEPTH = 64
# RFC 4731 §3.1 and RFC 5182 §2.4 (SAVE; RFC 9051 §6.4.4 has all five).
_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
_KEY_WORD = re.compile(rb"[A-Za-z]+")
_LPAREN, _RPAREN, _DQUOTE, _DOLLAR = 40, 41, 34, 36

# RFC 9051 §6.4.4 flag keys: key → (flag, negate).
_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", False),
    "UNANSWERED": ("\\Answered", True),
    "UNDELETED": ("\\Deleted", True),
    "UNDRAFT": ("\\Draft", True),
    "UNFLAGGED": ("\\Flagged", True),
    "UNSEEN": ("\\Seen", True),
}
# Keys without arguments that keep their own op (RFC 3501 §6.4.4 NEW, OLD, RECENT).
_BARE = frozenset({"ALL", "NEW", "OLD", "RECENT"})
_ADDRESS_HEADERS = frozenset({"BCC", "CC", "FROM", "SUBJECT", "TO"})
_DATES = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})


class _KeyReader:
    """Reads search keys recursively with a depth bound."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.depth = 0
        self.table: dict[str, Callable[[str], SearchKey]] = {
            "HEADER": self._header,
            "BODY": self._text,
            "TEXT": self._text,
            "KEYWORD": self._keyword,
            "UNKEYWORD": self._keyword,
            "LARGER": self._size,
            "SMALLER": self._size,
            "UID": self._uid,
            "NOT": self._not,
            "OR": self._or,
            "MODSEQ": self._modseq,
        }

    def key(self) -> SearchKey:
        """One ``search-key``."""
        cur = self.cur
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SyntaxProblem("Search program nested too deeply")
        try:
            c = cur.peek()
            if c == _LPAREN:
                return SearchKey(op="AND", keys=cur.parenthesised(self.key))
            if c == 0x2A or 0x30 <= c <= 0x39 or c == _DOLLAR:
                # RFC 5182 §3: `$` (the saved result) is a sequence set too.
                return SearchKey(op="SEQ", seqset=cur.seqset(saved=True))
            return self._word(cur.word(_KEY_WORD, "Invalid search key"))
        finally:
            self.depth -= 1

    def _word(self, word: str) -> SearchKey:
        if word in _FLAG_KEYS:
            flag, negate = _FLAG_KEYS[word]
            return SearchKey(op="FLAG", text=flag, negate=negate)
        if word in _BARE:
            return SearchKey(op=word)
        handler = self.table.get(word)
        if handler is not None:
            return handler(word)
        if word in _ADDRESS_HEADERS:
            self.cur.sp()
            return SearchKey(op="HEADER", field=word, text=self.cur.astring())
        if word in _DATES:
            self.cur.sp()
            return SearchKey(op=word, day=self.cur.date())
        raise SyntaxProblem(f"Unknown search key {word[:40]}")

    def _header(self, word: str) -> SearchKey:
        self.cur.sp()
        field = self.cur.astring().upper()
        self.cur.sp()
        return SearchKey(op=word, field=field, text=self.cur.astring())

    def _text(self, word: str) -> SearchKey:
        self.cur.sp()
        return SearchKey(op=word, text=self.cur.astring())

    def _keyword(self, word: str) -> SearchKey:
        self.cur.sp()
        return SearchKey(
            op="FLAG", text=self.cur.atom("Invalid keyword"), negate=word == "UNKEYWORD"
        )

    def _size(self, word: str) -> SearchKey:
        self.cur.sp()
        return SearchKey(op=word, number=self.cur.number(maximum=MAX_MODSEQ))

    def _uid(self, word: str) -> SearchKey:
        self.cur.sp()
        return SearchKey(op=word, seqset=self.cur.seqset(saved=True))

    def _not(self, word: str) -> SearchKey:
        self.cur.sp()
        return SearchKey(op=word, keys=(self.key(),))

    def _or(self, word: str) -> SearchKey:
        self.cur.sp()
        first = self.key()
        self.cur.sp()
        return SearchKey(op=word, keys=(first, self.key()))

    def _modseq(self, word: str) -> SearchKey:
        # RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer;
        # the entry name is read and ignored (courriel keeps one modseq per message).
        cur = self.cur
        cur.sp()
        if cur.peek() == _DQUOTE:
            cur.string()
            cur.sp()
            if cur.upper_atom("Invalid MODSEQ entry type") not in ("PRIV", "SHARED", "ALL"):
                raise SyntaxProblem("Invalid MODSEQ entry type")
            cur.sp()
        return SearchKey(op=word, number=cur.modseq(zero=True))


def _return_options(cur: Cursor) -> tuple[str, ...]:
    """RFC 4731 §3 ``RETURN (...)``; an empty list means ALL.

    ``RETURN (SAVE)`` stays ``("SAVE",)``: RFC 5182 §2.4, SAVE alone returns nothing.
    """
    cur.sp()

    def option() -> str:
        word = cur.upper_atom("Invalid search return option")
        if word not in _RETURN_OPTIONS:
            raise SyntaxProblem(f"Unsupported search return option {word[:40]}")
        return word

    options = cur.parenthesised(option, empty=True)
    return tuple(dict.fromkeys(options)) or ("ALL",)


def parse_search(cur: Cursor, uid: bool) -> Search:
    """``SEARCH [SP "RETURN" SP (...)] SP ["CHARSET" SP charset SP] search-key *(SP key)``.

    Args:
        cur: positioned after the verb.
        uid: the command is UID SEARCH (unused: the grammar is the same).

    Returns:
        The parsed arguments.

    Raises:
        SyntaxProblem: with :data:`BADCHARSET_TEXT` for a charset other than UTF-8 and
            US-ASCII; with a specific text for any other error.
    """
    del uid
    cur.sp()
    returns: tuple[str, ...] | None = None
    if cur.lookahead(_KEY_WORD) == "RETURN":
        cur.atom()
        returns = _return_options(cur)
        cur.sp()
    charset: str | None = None
    if cur.lookahead(_KEY_WORD) == "CHARSET":
        cur.atom()
        cur.sp()
        charset = cur.astring().upper()
        if charset not in CHARSETS:
            raise SyntaxProblem(BADCHARSET_TEXT)
        cur.sp()
    reader = _KeyReader(cur)
    keys = [reader.key()]
    while cur.accept_sp():
        keys.append(reader.key())
    return Search(key=SearchKey(op="AND", keys=tuple(keys)), charset=charset, returns=returns)


def requests_save(cur: Cursor) -> bool:
    """Whether a SEARCH asks for ``RETURN (... SAVE ...)``, read as far as that goes.

    Used when the command as a whole failed (NO [BADCHARSET]): RFC 5182 §2.1 then
    empties the saved result. Never raises.

    Args:
        cur: positioned after the verb.
    """
    try:
        cur.sp()
        if cur.lookahead(_KEY_WORD) != "RETURN":
            return False
        cur.atom()
        return "SAVE" in _return_options(cur)
    except SyntaxProblem:
        return False
