"""The IMAP verb table: each command's handler and the states it is allowed in.

This module owns the table only; handlers live in one module per command group and
are named ``cmd_<verb>``. Each handler's docstring starts with its states and RFC
section. A handler returns the command's responses, ending with exactly one
:class:`~courriel.protocols.imap.actions.Tagged` completion (or a ``Close``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from courriel.protocols.imap.commands import (
    anystate,
    append,
    auth,
    copy,
    fetch,
    idle,
    listing,
    mailboxes,
    search,
    select,
    store,
)

if TYPE_CHECKING:
    from courriel.protocols.imap.actions import Action
    from courriel.protocols.imap.session import ImapSession, ImapState
    from courriel.protocols.imap.types import Command

__all__ = ["TABLE", "Handler"]

Handler = Callable[["ImapSession", "Command"], Awaitable[list["Action"]]]


def _table() -> dict[str, tuple[Handler, frozenset[ImapState]]]:
    from courriel.protocols.imap.session import ImapState

    n, a, s = ImapState.NOT_AUTHENTICATED, ImapState.AUTHENTICATED, ImapState.SELECTED
    anyst = frozenset({n, a, s})
    pre = frozenset({n})
    auth_ = frozenset({a, s})
    sel = frozenset({s})
    return {
        "CAPABILITY": (anystate.cmd_capability, anyst),
        "NOOP": (anystate.cmd_noop, anyst),
        "LOGOUT": (anystate.cmd_logout, anyst),
        "ID": (anystate.cmd_id, anyst),
        "ENABLE": (anystate.cmd_enable, auth_),
        "STARTTLS": (auth.cmd_starttls, pre),
        "LOGIN": (auth.cmd_login, pre),
        "AUTHENTICATE": (auth.cmd_authenticate, pre),
        "CREATE": (mailboxes.cmd_create, auth_),
        "DELETE": (mailboxes.cmd_delete, auth_),
        "RENAME": (mailboxes.cmd_rename, auth_),
        "SUBSCRIBE": (mailboxes.cmd_subscribe, auth_),
        "UNSUBSCRIBE": (mailboxes.cmd_unsubscribe, auth_),
        "LIST": (listing.cmd_list, auth_),
        "LSUB": (listing.cmd_list, auth_),
        "NAMESPACE": (listing.cmd_namespace, auth_),
        "STATUS": (listing.cmd_status, auth_),
        "APPEND": (append.cmd_append, auth_),
        "SELECT": (select.cmd_select, auth_),
        "EXAMINE": (select.cmd_select, auth_),
        "CLOSE": (select.cmd_close, sel),
        "UNSELECT": (select.cmd_unselect, sel),
        "CHECK": (select.cmd_check, sel),
        "EXPUNGE": (select.cmd_expunge, sel),
        "FETCH": (fetch.cmd_fetch, sel),
        "STORE": (store.cmd_store, sel),
        "SEARCH": (search.cmd_search, sel),
        "COPY": (copy.cmd_copy, sel),
        "MOVE": (copy.cmd_copy, sel),
        "IDLE": (idle.cmd_idle, auth_),
    }


TABLE: dict[str, tuple[Handler, frozenset[ImapState]]] = _table()
