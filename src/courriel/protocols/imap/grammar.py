"""The IMAP command grammar: one framed command → :class:`Command` or :class:`BadCommand`.

This module owns the table from verb to argument reader (RFC 9051 §6, RFC 3501 §6 for
the IMAP4rev1-only LSUB and CHECK, and the extensions issue 4 lists) and the readers of
the commands that are not FETCH, STORE or SEARCH (those live in ``fetchparse`` and
``searchparse``).

Invariants:
    * :func:`parse_command` never raises: every syntax error becomes a
      :class:`BadCommand` with the tag (when one was read), the verb (when one was read,
      ``"UID FETCH"`` for a UID command) and a specific text.
    * Every reader consumes the command to its end or fails; extra octets are an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from courriel.errors import SyntaxProblem
from courriel.protocols.imap.fetchparse import parse_fetch, parse_store
from courriel.protocols.imap.lexer import Cursor
from courriel.protocols.imap.searchparse import BADCHARSET_TEXT, parse_search, requests_save
from courriel.protocols.imap.types import (
    Append,
    Arguments,
    Authenticate,
    BadCommand,
    Command,
    CopyMove,
    Enable,
    Expunge,
    Id,
    List,
    Login,
    MailboxArg,
    Rename,
    Select,
    SeqSet,
    Simple,
    Status,
)

__all__ = ["command_head", "parse_command", "precheck"]

# RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">
_TAG = re.compile(rb"[^\x00-\x20\x7f-\xff(){%*\"\\+]+")
_VERB = re.compile(rb"[A-Za-z0-9-]+")
_HEAD = re.compile(rb"([^\x00-\x20\x7f-\xff(){%*\"\\+]+) ([A-Za-z0-9-]+)")
# Parsed arguments are immutable, so a repeated one-line command (the same FETCH from
# many clients) reuses them. Credentials never enter the cache: only these verbs do.
_CACHEABLE = frozenset(
    {
        "FETCH", "UID FETCH", "STORE", "UID STORE", "SEARCH", "UID SEARCH", "SELECT",
        "EXAMINE", "STATUS", "LIST", "LSUB", "NOOP", "CHECK", "IDLE", "EXPUNGE",
        "UID EXPUNGE", "COPY", "UID COPY", "MOVE", "UID MOVE", "CAPABILITY",
    }
)  # fmt: skip
_CACHE_SIZE = 512
_cache: dict[tuple[str, bytes, bool], Arguments] = {}
# RFC 4959 §7 / RFC 9051 §9: base64 initial response, or "=" for an empty one.
_BASE64 = re.compile(rb"=|(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CODES = {BADCHARSET_TEXT: "BADCHARSET"}
_UID_VERBS = frozenset({"FETCH", "SEARCH", "STORE", "COPY", "MOVE", "EXPUNGE"})
_LPAREN, _RPAREN, _DQUOTE, _LBRACE, _TILDE = 40, 41, 34, 123, 126

# RFC 9051 §6.3.11 status-att, plus RFC 3501's RECENT and RFC 7162's HIGHESTMODSEQ.
_STATUS_ITEMS = frozenset(
    {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ"}
)
# RFC 5258 §3 selection options (and RFC 6154 §5.1 SPECIAL-USE).
_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
# RFC 5258 §3 return options, RFC 6154 §5.1 SPECIAL-USE, RFC 5819 STATUS.
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
# RFC 6154 §2 use-attr, canonical spelling.
_USE_ATTRS = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}

Reader = Callable[[Cursor, bool], Arguments]


def _simple(cur: Cursor, uid: bool) -> Simple:
    return Simple()


def _authenticate(cur: Cursor, uid: bool) -> Authenticate:
    # RFC 9051 §6.2.2 with RFC 4959 SASL-IR.
    cur.sp()
    mechanism = cur.upper_atom("Invalid SASL mechanism")
    initial: str | None = None
    if cur.accept_sp():
        initial = cur.raw(_BASE64, "Invalid SASL initial response")
        if not initial:
            raise SyntaxProblem("Invalid SASL initial response")
    return Authenticate(mechanism=mechanism, initial=initial)


def _login(cur: Cursor, uid: bool) -> Login:
    cur.sp()
    user = cur.astring()
    cur.sp()
    return Login(user=user, password=cur.astring())


def _enable(cur: Cursor, uid: bool) -> Enable:
    # RFC 5161 §3.1: ENABLE 1*(SP capability)
    cur.sp()
    caps = [cur.upper_atom("Invalid capability")]
    while cur.accept_sp():
        caps.append(cur.upper_atom("Invalid capability"))
    return Enable(capabilities=tuple(caps))


def _known_set(cur: Cursor) -> SeqSet:
    return cur.seqset(star=False)


def _seq_match(cur: Cursor) -> tuple[SeqSet, SeqSet]:
    """RFC 7162 §3.2.5 ``seq-match-data``: ``(known-sequence-set SP known-uid-set)``."""
    cur.expect(_LPAREN, "Expected (")
    seqs = _known_set(cur)
    cur.sp()
    uids = _known_set(cur)
    cur.expect(_RPAREN, "Expected )")
    return seqs, uids


def _qresync(cur: Cursor) -> tuple[int, int, SeqSet | None, tuple[SeqSet, SeqSet] | None]:
    """RFC 7162 §3.2.5: ``(uidvalidity SP modseq [SP known-uids] [SP seq-match-data])``."""
    cur.expect(_LPAREN, "Expected (")
    uidvalidity = cur.number(nonzero=True)
    cur.sp()
    modseq = cur.modseq()
    known: SeqSet | None = None
    match: tuple[SeqSet, SeqSet] | None = None
    if cur.accept_sp():
        if cur.peek() != _LPAREN:
            known = _known_set(cur)
        if cur.peek() == _LPAREN or (known is not None and cur.accept_sp()):
            match = _seq_match(cur)
    cur.expect(_RPAREN, "Expected )")
    return uidvalidity, modseq, known, match


def _select_args(cur: Cursor, readonly: bool) -> Select:
    cur.sp()
    mailbox = cur.mailbox()
    condstore = False
    qresync: tuple[int, int, SeqSet | None, tuple[SeqSet, SeqSet] | None] | None = None
    if cur.accept_sp():

        def param() -> None:
            nonlocal condstore, qresync
            word = cur.upper_atom("Invalid SELECT parameter")
            if word == "CONDSTORE" and not condstore:
                condstore = True
            elif word == "QRESYNC" and qresync is None:
                cur.sp()
                qresync = _qresync(cur)
            else:
                raise SyntaxProblem(f"Invalid SELECT parameter {word[:40]}")

        cur.parenthesised(param)
    return Select(mailbox=mailbox, readonly=readonly, condstore=condstore, qresync=qresync)


def _select(cur: Cursor, uid: bool) -> Select:
    return _select_args(cur, False)


def _examine(cur: Cursor, uid: bool) -> Select:
    return _select_args(cur, True)


def _use_attr(cur: Cursor) -> str:
    cur.expect(92, "Invalid special-use attribute")
    attr = "\\" + cur.atom("Invalid special-use attribute")
    return _USE_ATTRS.get(attr.upper(), attr)


def _create(cur: Cursor, uid: bool) -> MailboxArg:
    cur.sp()
    mailbox = cur.mailbox()
    uses: tuple[str, ...] = ()
    if cur.accept_sp():
        # RFC 4466 §2.2 create-params with RFC 6154 §3 USE (attr ...).
        def param() -> tuple[str, ...]:
            if cur.upper_atom("Invalid CREATE parameter") != "USE":
                raise SyntaxProblem("Invalid CREATE parameter")
            cur.sp()
            return cur.parenthesised(lambda: _use_attr(cur))

        for attrs in cur.parenthesised(param):
            uses += attrs
    return MailboxArg(mailbox=mailbox, special_use=uses)


def _mailbox(cur: Cursor, uid: bool) -> MailboxArg:
    cur.sp()
    return MailboxArg(mailbox=cur.mailbox())


def _rename(cur: Cursor, uid: bool) -> Rename:
    cur.sp()
    old = cur.mailbox()
    cur.sp()
    return Rename(old=old, new=cur.mailbox())


def _option(cur: Cursor, allowed: frozenset[str], what: str) -> str:
    word = cur.upper_atom(what)
    if word not in allowed:
        raise SyntaxProblem(f"{what} {word[:40]}")
    return word


def _list_returns(cur: Cursor) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """RFC 5258 §3 ``RETURN (...)`` with RFC 5819 ``STATUS (...)``."""
    status: list[str] = []

    def option() -> str:
        word = _option(cur, _LIST_RETURN, "Unknown LIST return option")
        if word == "STATUS":
            cur.sp()
            status.extend(cur.parenthesised(lambda: _status_item(cur)))
        return word

    if cur.upper_atom("Expected RETURN") != "RETURN":
        raise SyntaxProblem("Expected RETURN")
    cur.sp()
    return cur.parenthesised(option, empty=True), tuple(status)


def _list(cur: Cursor, uid: bool) -> List:
    cur.sp()
    selection: tuple[str, ...] = ()
    if cur.peek() == _LPAREN:
        selection = cur.parenthesised(
            lambda: _option(cur, _LIST_SELECT, "Unknown LIST selection option"), empty=True
        )
        # RFC 5258 §3: RECURSIVEMATCH needs another option than REMOTE.
        if "RECURSIVEMATCH" in selection and not set(selection) - {"RECURSIVEMATCH", "REMOTE"}:
            raise SyntaxProblem("RECURSIVEMATCH needs another selection option")
        cur.sp()
    reference = cur.mailbox()
    cur.sp()
    if cur.peek() == _LPAREN:
        patterns = cur.parenthesised(cur.list_mailbox)
    else:
        patterns = (cur.list_mailbox(),)
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    if cur.accept_sp():
        returns, status = _list_returns(cur)
    return List(
        reference=reference,
        patterns=patterns,
        selection=selection,
        returns=returns,
        status_items=status,
    )


def _lsub(cur: Cursor, uid: bool) -> List:
    cur.sp()
    reference = cur.mailbox()
    cur.sp()
    return List(reference=reference, patterns=(cur.list_mailbox(),), lsub=True)


def _status_item(cur: Cursor) -> str:
    return _option(cur, _STATUS_ITEMS, "Unknown STATUS item")


def _status(cur: Cursor, uid: bool) -> Status:
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    return Status(mailbox=mailbox, items=cur.parenthesised(lambda: _status_item(cur)))


def _append(cur: Cursor, uid: bool) -> Append:
    # RFC 9051 §6.3.12: mailbox [SP flag-list] [SP date-time] SP literal (RFC 3516 literal8).
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    flags: tuple[str, ...] = ()
    if cur.peek() == _LPAREN:
        flags = cur.flag_list()
        cur.sp()
    when = None
    if cur.peek() == _DQUOTE:
        when = cur.date_time()
        cur.sp()
    if cur.peek() not in (_LBRACE, _TILDE):
        raise SyntaxProblem("APPEND needs the message as a literal")
    message, binary = cur.literal(binary_ok=True)
    return Append(mailbox=mailbox, flags=flags, internal_date=when, message=message, binary=binary)


def _expunge(cur: Cursor, uid: bool) -> Expunge:
    if not uid:
        return Expunge()
    # RFC 4315 §2.1: UID EXPUNGE sequence-set
    cur.sp()
    return Expunge(uids=cur.seqset(saved=True))  # RFC 5182 §3: `$` too


def _copy_move(cur: Cursor, uid: bool) -> CopyMove:
    cur.sp()
    seqset = cur.seqset(saved=True)  # RFC 5182 §3: `$` too
    cur.sp()
    return CopyMove(seqset=seqset, mailbox=cur.mailbox())


def _id(cur: Cursor, uid: bool) -> Id:
    # RFC 2971 §4: "ID" SP ( "(" *(string SP nstring) ")" / nil )
    cur.sp()
    if cur.peek() != _LPAREN:
        if cur.upper_atom("Expected ( or NIL") != "NIL":
            raise SyntaxProblem("Expected ( or NIL")
        return Id(params=None)

    def pair() -> tuple[str, str | None]:
        name = cur.string()
        cur.sp()
        return name, cur.nstring()

    return Id(params=cur.parenthesised(pair, empty=True))


_READERS: dict[str, Reader] = {
    **dict.fromkeys(
        ("CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "IDLE", "CHECK", "CLOSE", "UNSELECT"),
        _simple,
    ),
    "NAMESPACE": _simple,
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": _select,
    "EXAMINE": _examine,
    "CREATE": _create,
    "DELETE": _mailbox,
    "SUBSCRIBE": _mailbox,
    "UNSUBSCRIBE": _mailbox,
    "RENAME": _rename,
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "EXPUNGE": _expunge,
    "SEARCH": parse_search,
    "FETCH": parse_fetch,
    "STORE": parse_store,
    "COPY": _copy_move,
    "MOVE": _copy_move,
    "ID": _id,
}


def _head(cur: Cursor) -> tuple[str | None, str | None, bool]:
    """Read ``tag SP verb [SP subverb]``: the tag, the verb to show, and whether UID."""
    m = cur.consume(_HEAD)
    if m is None:
        return _bad_head(cur)
    tag, verb = m[1].decode("ascii"), m[2].decode("ascii").upper()
    if verb != "UID":
        return tag, verb, False
    if not cur.accept_sp() or not cur.lookahead(_VERB):
        return tag, "UID", True
    return tag, "UID " + cur.word(_VERB, "Invalid command"), True


def _bad_head(cur: Cursor) -> tuple[str | None, str | None, bool]:
    """The head of a line without ``tag SP verb``: which of the two is missing."""
    m = cur.consume(_TAG)
    if m is None:
        return None, None, False
    # "tag" alone or "tag SP" + junk lacks a command; "tag" + junk is a bad tag.
    if cur.at_end() or cur.accept_sp():
        return m[0].decode("ascii"), None, False
    return None, None, False


def command_head(line: bytes) -> tuple[str | None, str | None]:
    """The tag and verb at the start of a command line, where they can be read.

    Args:
        line: the first line of a command (possibly cut short).

    Returns:
        ``(tag, verb)``; either is None when it could not be read.
    """
    tag, verb, _uid = _head(Cursor([line], [], utf8=False))
    return tag, verb


def _reader(verb: str | None, uid: bool) -> Reader | None:
    if verb is None:
        return None
    if uid:
        name = verb[4:]
        return _READERS[name] if name in _UID_VERBS else None
    return _READERS.get(verb)


def precheck(line: bytes) -> BadCommand | None:
    """Refuse a command before its first literal is accepted, when its head is bad.

    Args:
        line: the command's first line, which announces a literal.

    Returns:
        The BadCommand to answer instead of a continuation, or None to go on.
    """
    tag, verb = command_head(line)
    if tag is None:
        return BadCommand(tag=None, text="Invalid tag")
    if _reader(verb, (verb or "").startswith("UID")) is None:
        return BadCommand(tag=tag, text="Unknown command", verb=verb)
    return None


def parse_command(parts: list[bytes], literals: list[bytes], *, utf8: bool) -> Command | BadCommand:
    """Parse one framed command.

    Args:
        parts: the command's line parts (CRLF removed), each but the last ending with a
            literal marker.
        literals: the literal octets that follow each part but the last.
        utf8: RFC 6855 UTF8=ACCEPT is enabled.

    Returns:
        The Command, or a BadCommand saying what was wrong.
    """
    cur = Cursor(parts, literals, utf8=utf8)
    tag, verb, uid = _head(cur)
    if tag is None:
        return BadCommand(tag=None, text="Invalid tag")
    if verb is None:
        return BadCommand(tag=tag, text="Missing command")
    reader = _reader(verb, uid)
    if reader is None:
        return BadCommand(tag=tag, text="Unknown command", verb=verb)
    name = verb[4:] if uid else verb
    key = None
    if len(parts) == 1 and verb in _CACHEABLE:
        key = (verb, cur.rest_of_part(), utf8)
        cached = _cache.get(key)
        if cached is not None:
            return Command(tag=tag, name=name, args=cached, uid=uid)
    try:
        args = reader(cur, uid)
        cur.expect_end()
    except SyntaxProblem as exc:
        return _failed(exc, tag=tag, verb=verb, parts=parts, literals=literals, utf8=utf8)
    if key is not None:
        if len(_cache) >= _CACHE_SIZE:
            del _cache[next(iter(_cache))]  # the oldest entry
        _cache[key] = args
    return Command(tag=tag, name=name, args=args, uid=uid)


def _failed(
    exc: SyntaxProblem,
    *,
    tag: str,
    verb: str,
    parts: list[bytes],
    literals: list[bytes],
    utf8: bool,
) -> BadCommand:
    """The BadCommand of a command whose arguments could not be read."""
    code = _CODES.get(exc.public)
    resets = False
    if code == "BADCHARSET":
        # RFC 5182 §2.1: a SEARCH ... SAVE answered NO empties the saved result.
        cur = Cursor(parts, literals, utf8=utf8)
        _head(cur)
        resets = requests_save(cur)
    return BadCommand(tag=tag, text=exc.public, code=code, verb=verb, resets_saved=resets)
