"""The IMAP session state machine (sans-I/O): bytes in, responses and effects out.

This module owns the IMAP states (RFC 9051 §3: NOT_AUTHENTICATED, AUTHENTICATED,
SELECTED, LOGOUT), the verb table's enforcement, the dispatch of parser events, and
the flushing of untagged updates of the selected folder before each tagged response
(RFC 9051 §5.2, §7.4.1). Command handlers live in :mod:`.commands`, one module per
group. It never touches a socket or sleeps: the server performs the actions in order.

Invariants:
    * Untagged updates (EXPUNGE, EXISTS, RECENT, FETCH FLAGS) are written before the
      tagged completion of a command in the SELECTED state, never after it, and EXPUNGE
      never while answering FETCH, STORE or SEARCH (RFC 9051 §7.5.1); UID forms may.
    * Login is refused before TLS (RFC 9051 §6.2.3 LOGINDISABLED); passwords are never
      logged.
    * After STARTTLS, input buffered before the handshake is discarded (RFC 9051 §6.2.1).
    * Replies never carry hostnames, paths or internal causes; those go to the log.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from courriel.mailstore.imapport import ImapStorePort, MessageMeta
from courriel.mailstore.types import Authenticator, Principal
from courriel.protocols.imap import capabilities
from courriel.protocols.imap.actions import (
    INTERNAL_ERROR,
    Action,
    Close,
    Delay,
    Send,
    StartTls,
    Stream,
    Tagged,
    WaitForChange,
    bad,
    no,
    untagged,
    untagged_lines,
)
from courriel.protocols.imap.cache import MessageCache
from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.parser import ImapParser
from courriel.protocols.imap.selected import SelectedFolder, UpdateOptions
from courriel.protocols.imap.types import BadCommand, Command, Continue, RawLine
from courriel.protocols.sasl import AuthThrottle

__all__ = [
    "Action",
    "Close",
    "Delay",
    "ImapSession",
    "ImapSettings",
    "ImapState",
    "Send",
    "StartTls",
    "Stream",
    "Tagged",
    "WaitForChange",
]

log = logging.getLogger(__name__)

UNKNOWN_COMMAND = "Error in IMAP command received by server."


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapSettings:
    """Settings of an IMAP listener."""

    hostname: str = "localhost"  # for logs only: never sent to the client
    tls_active: bool = False  # implicit TLS (IMAPS, RFC 8314 port 993)
    tls_available: bool = False  # STARTTLS may be offered (a certificate is configured)
    # RFC 9051 §5.4: an inactivity autologout timer must be of at least 30 minutes.
    idle_timeout: float = 1800.0
    max_connections: int = 500  # concurrent sessions per listener; more get * BYE
    max_auth_failures: int = 3  # failed logins on one connection before it is closed
    max_line: int = 65536  # longest command line, literals excluded
    append_limit: int = 50 * 1024 * 1024  # largest APPEND literal (RFC 7889)
    idle_keepalive: float = 120.0  # seconds between "* OK Still here" in IDLE


class ImapState(enum.Enum):
    """RFC 9051 §3 session states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


# Handlers of lines read in raw mode (an AUTHENTICATE response, IDLE's DONE).
RawHandler = Callable[[str], Awaitable[list[Action]]]

# Commands after which no untagged update is flushed (they change the selection, or
# flush them themselves).
_NO_POLL = frozenset({"SELECT", "EXAMINE", "CLOSE", "UNSELECT", "LOGOUT", "IDLE", "STARTTLS"})
# RFC 9051 §7.5.1: no EXPUNGE while answering these (their UID forms are exempt).
_NO_EXPUNGE = frozenset({"FETCH", "STORE", "SEARCH"})


@dataclass(slots=True)
class Enabled:
    """Extensions the client switched on (RFC 5161 ENABLE, RFC 7162 §3.1)."""

    condstore: bool = False
    qresync: bool = False  # RFC 7162 §3.2: implies condstore
    rev2: bool = False
    names: set[str] = field(default_factory=set)


class ImapSession:
    """One IMAP conversation.

    Feed received bytes to :meth:`receive`; perform the returned actions in order.
    While :attr:`idle_wait` is set the server also waits for changes of the account and
    calls :meth:`idle_changed` or :meth:`idle_keepalive`. Call :meth:`connection_lost`
    exactly once when the connection ends, whatever the reason.
    """

    def __init__(
        self,
        *,
        settings: ImapSettings,
        authenticator: Authenticator,
        store: ImapStorePort,
        throttle: AuthThrottle,
        peer: str,
        cache: MessageCache | None = None,
    ) -> None:
        self.settings = settings
        self.state = ImapState.NOT_AUTHENTICATED
        self.tls_active = settings.tls_active
        self.closed = False
        self.authenticator = authenticator
        self.store = store
        self.throttle = throttle
        self.peer = peer
        self.cache = cache if cache is not None else MessageCache()
        self.parser = ImapParser(max_line=settings.max_line, max_literal=settings.append_limit)
        self.principal: Principal | None = None
        self.selected: SelectedFolder | None = None
        self.enabled = Enabled()
        self.auth_failures = 0
        self.raw_handler: RawHandler | None = None  # set while a raw line is awaited
        self.idle_tag: str | None = None  # the tag of the IDLE in progress
        self.idle_wait: WaitForChange | None = None
        self.more = False  # buffered commands wait until a Stream has been written

    # -- driving ---------------------------------------------------------------------

    def greeting(self) -> list[Action]:
        """The greeting (RFC 9051 §7.1.1), with the capabilities (as Dovecot does)."""
        return [untagged(f"OK [CAPABILITY {self.capability_text()}] courriel IMAP ready.")]

    async def receive(self, data: bytes) -> list[Action]:
        """Process received bytes; return what to do, in order.

        Incomplete commands are kept for the next call. Nothing after STARTTLS's
        response or a ``Close`` in ``data`` is processed. After a :class:`Stream`,
        processing stops with :attr:`more` set: perform the actions, then call
        ``receive(b"")`` for the commands already buffered.
        """
        self.parser.feed(data)
        self.more = False
        actions: list[Action] = []
        while not self.closed:
            event = self.parser.next_event()
            if event is None:
                break
            produced = await self._event(event)
            actions += produced
            if any(isinstance(a, StartTls) for a in produced):
                # RFC 9051 §6.2.1: nothing sent before the handshake may be used.
                self.parser.clear()
                break
            if any(isinstance(a, Stream) for a in produced):
                # Later commands must see the state after the stream was written.
                self.more = True
                break
        return actions

    def tls_started(self) -> None:
        """Record that the TLS handshake after STARTTLS succeeded."""
        self.tls_active = True

    async def timed_out(self) -> list[Action]:
        """The inactivity timer expired (RFC 9051 §5.4): say so and close."""
        await self.connection_lost()
        return [untagged("BYE Disconnected for inactivity."), Close()]

    async def connection_lost(self) -> None:
        """The connection is gone; forget the selection. Idempotent."""
        self.closed = True
        self.selected = None
        self.idle_wait = None
        self.state = ImapState.LOGOUT

    async def idle_changed(self) -> list[Action]:
        """IDLE: the account changed; return the untagged updates (RFC 2177 §3)."""
        if self.idle_tag is None:
            return []
        actions = await self.poll(self.update_options(None))
        self.rearm_idle()
        return actions + ([self.idle_wait] if self.idle_wait is not None else [])

    def idle_keepalive(self) -> list[Action]:
        """IDLE: a quiet interval passed; Dovecot's keepalive line keeps NATs open."""
        if self.idle_tag is None:
            return []
        self.rearm_idle()
        wait: list[Action] = [self.idle_wait] if self.idle_wait is not None else []
        return [untagged("OK Still here"), *wait]

    def rearm_idle(self) -> None:
        """Set :attr:`idle_wait` for the next wait of the IDLE in progress (or clear it)."""
        if self.idle_tag is None or self.closed or self.principal is None:
            self.idle_wait = None
            return
        view = self.selected
        self.idle_wait = WaitForChange(
            account_id=self.principal.account_id if view is not None else None,
            after_change_id=view.last_change_id if view is not None else 0,
            keepalive=self.settings.idle_keepalive,
        )

    # -- capabilities and options ----------------------------------------------------

    def capability_text(self) -> str:
        """The current capability list, space-separated."""
        if self.state is ImapState.NOT_AUTHENTICATED:
            caps = capabilities.before_login(
                tls_active=self.tls_active, tls_available=self.settings.tls_available
            )
        else:
            caps = capabilities.after_login(append_limit=self.settings.append_limit)
        return " ".join(caps)

    @property
    def utf8(self) -> bool:
        """Whether mailbox names go as UTF-8 (RFC 6855; not enabled by courriel)."""
        return self.parser.utf8

    def update_options(self, cmd: Command | None, *, allow_expunge: bool = True) -> UpdateOptions:
        """How FETCH responses are written for the command in progress."""
        uid = cmd is not None and cmd.uid
        return UpdateOptions(
            allow_expunge=allow_expunge,
            # RFC 7162 §3.2: with CONDSTORE on, every FETCH carries UID and MODSEQ.
            uid=uid or self.enabled.condstore,
            condstore=self.enabled.condstore,
            rev1=not self.enabled.rev2,
            # RFC 7162 §3.2.10: VANISHED replaces EXPUNGE once QRESYNC is enabled.
            vanished=self.enabled.qresync,
        )

    # -- shared services of the handlers ---------------------------------------------

    def require_principal(self) -> Principal:
        """The logged-in principal (handlers run only in states that have one)."""
        assert self.principal is not None
        return self.principal

    def require_selected(self) -> SelectedFolder:
        """The selected folder (handlers run only in SELECTED)."""
        assert self.selected is not None
        return self.selected

    async def message(self, meta: MessageMeta) -> ParsedMessage:
        """The parsed message, through the shared cache. Raises NotFound."""
        principal = self.require_principal()

        async def load() -> bytes:
            return await self.store.read_message(principal, meta.message_id)

        return await self.cache.get(meta.message_id, meta.blob_key, load)

    async def poll(self, opts: UpdateOptions) -> list[Action]:
        """Read the folder's changes and return the untagged updates (RFC 9051 §7.4.1)."""
        view = self.selected
        if view is None or self.principal is None:
            return []
        delta = await self.store.changes_since(
            self.principal, view.folder_id, view.last_change_id, claim_recent=not view.readonly
        )
        if delta.gone:
            # Dovecot's answer when the selected mailbox disappears under a session.
            self.closed = True
            self.selected = None
            return [untagged("BYE Selected mailbox was deleted, have to disconnect."), Close()]
        lines = view.apply(delta, opts)
        if not lines:
            return []
        return [untagged_lines(lines)]

    # -- dispatch --------------------------------------------------------------------

    async def _event(self, event: Command | Continue | BadCommand | RawLine) -> list[Action]:
        if isinstance(event, Continue):
            # RFC 9051 §7.5: the continuation request of a synchronising literal.
            return [Send(data=b"+ OK\r\n")]
        if isinstance(event, RawLine):
            handler, self.raw_handler = self.raw_handler, None
            if handler is None:
                return [untagged(f"BAD {UNKNOWN_COMMAND}")]
            return await handler(event.text)
        if isinstance(event, BadCommand):
            return self._bad_command(event)
        return await self._command(event)

    def _bad_command(self, event: BadCommand) -> list[Action]:
        if event.resets_saved and self.selected is not None:
            self.selected.saved = []  # RFC 5182 §2.1: a SEARCH ... SAVE answered NO
        if event.tag is None:
            return [untagged(f"BAD {event.text}")]
        text = event.text
        if event.verb and event.code is None:
            # Dovecot's wording; before login it names no command.
            if self.state is ImapState.NOT_AUTHENTICATED and text == "Unknown command":
                text = UNKNOWN_COMMAND
            else:
                text = f"Error in IMAP command {event.verb}: {text}"
        if event.code == "BADCHARSET":
            # RFC 9051 §6.4.4: NO [BADCHARSET] lists the charsets we support.
            return [no(event.tag, event.text, "BADCHARSET (UTF-8 US-ASCII)")]
        if event.code == "TOOBIG" and event.verb == "APPEND":
            return [no(event.tag, event.text, "TOOBIG")]
        return [bad(event.tag, text, event.code)]

    async def _command(self, cmd: Command) -> list[Action]:
        from courriel.protocols.imap.commands import TABLE

        entry = TABLE.get(cmd.name)
        if entry is None:
            if self.state is ImapState.NOT_AUTHENTICATED:
                return [bad(cmd.tag, UNKNOWN_COMMAND)]
            return [bad(cmd.tag, f"Error in IMAP command {cmd.name}: Unknown command")]
        handler, states = entry
        if self.state not in states:
            return [bad(cmd.tag, self._wrong_state(cmd.name, states))]
        try:
            actions = await handler(self, cmd)
            if self.state is ImapState.SELECTED and cmd.name not in _NO_POLL:
                allow = cmd.uid or cmd.name not in _NO_EXPUNGE
                actions = await self._with_updates(
                    actions, self.update_options(cmd, allow_expunge=allow)
                )
        except Exception:
            log.exception("imap: %s failed for %s", cmd.name, self.peer)
            return [no(cmd.tag, INTERNAL_ERROR, "SERVERBUG")]
        return actions

    async def _with_updates(self, actions: list[Action], opts: UpdateOptions) -> list[Action]:
        """Insert the pending untagged updates before the tagged completion."""
        # Before the tagged line, or before a Stream that ends with it.
        at = next((i for i, a in enumerate(actions) if isinstance(a, Tagged | Stream)), None)
        if at is None:
            return actions
        updates = await self.poll(opts)
        if self.closed:
            return actions[:at] + updates
        return actions[:at] + updates + actions[at:]

    def _wrong_state(self, name: str, states: frozenset[ImapState]) -> str:
        if self.state is ImapState.NOT_AUTHENTICATED:
            return f"{name} is not allowed before login."
        if ImapState.SELECTED in states:
            return "No mailbox selected"  # Dovecot's wording
        if name in {"LOGIN", "AUTHENTICATE"}:
            return "Already logged in."
        return f"{name} is not allowed in the {self.state.value} state."
