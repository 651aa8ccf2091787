"""The POP3 session state machine (sans-I/O): commands in, replies and effects out.

This module owns the POP3 states (RFC 1939 §3: AUTHORIZATION, TRANSACTION, UPDATE),
the verb table, the replies, and the maildrop lock's life cycle (the effects
:class:`StartTls`, :class:`Close` and :class:`Delay` come from
:mod:`courriel.protocols.effects` and are re-exported here). It never touches a
socket or sleeps: the server performs the :data:`Action` values it returns, in order.

Invariants:
    * Messages are deleted from the maildrop only in the UPDATE state, entered by QUIT
      in TRANSACTION (RFC 1939 §6). A session that ends any other way
      (:meth:`Pop3Session.connection_lost`) deletes nothing and releases the lock.
    * Login is refused before TLS (RFC 2595 §2.4, RFC 3206 ``[AUTH]``), and CAPA does not
      advertise USER or SASL then.
    * After STLS, input buffered before the TLS handshake is discarded (RFC 2595 §4).
    * Replies never carry hostnames, paths or internal causes (conventions §6).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from courriel.errors import CourrielError, SyntaxProblem
from courriel.mailstore.types import (
    Authenticator,
    Maildrop,
    MaildropInUse,
    MaildropMessage,
    MaildropPort,
)
from courriel.protocols.effects import Close, Delay, StartTls
from courriel.protocols.pop3 import parser as p
from courriel.protocols.pop3.multiline import DEFAULT_CHUNK, top_end
from courriel.protocols.sasl import AuthThrottle, decode_plain

__all__ = [
    "GREETING",
    "Action",
    "Close",
    "Delay",
    "Pop3Session",
    "Pop3Settings",
    "Pop3State",
    "Send",
    "SendMessage",
    "StartTls",
]

log = logging.getLogger(__name__)

GREETING = "+OK courriel POP3 ready"
# RFC 3206 §4 [AUTH], worded as Dovecot answers it.
PLAINTEXT_REFUSED = (
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3Settings:
    """Settings of a POP3 listener."""

    hostname: str = "localhost"  # for logs only: never sent to the client
    tls_active: bool = False  # implicit TLS (POP3S, RFC 8314 port 995): TLS from the first byte
    tls_available: bool = False  # STLS may be offered (a certificate is configured)
    # RFC 1939 §3: an inactivity autologout timer, if any, must be of at least 10 minutes.
    idle_timeout: float = 600.0
    max_connections: int = 200  # concurrent sessions per listener; more get -ERR [SYS/TEMP]
    max_auth_failures: int = 3  # failed logins on one connection before it is closed
    chunk_size: int = DEFAULT_CHUNK  # octets of a message written per RETR/TOP chunk


class Pop3State(enum.Enum):
    """RFC 1939 §3 session states."""

    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Write these octets (one or more complete lines)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessage:
    """Write ``data[:end]`` dot-stuffed and terminated (RFC 1939 §3), in chunks.

    The server streams it with :func:`courriel.protocols.pop3.multiline.dot_stuffed_chunks`;
    ``data`` is the maildrop's one copy of the message.
    """

    data: bytes
    end: int


Action = Send | SendMessage | StartTls | Close | Delay
_A = Pop3State.AUTHORIZATION
_T = Pop3State.TRANSACTION
Handler = Callable[["Pop3Session", Any], Awaitable[list[Action]]]


def _line(text: str) -> Send:
    return Send(data=text.encode("utf-8") + b"\r\n")


def _multi(first: str, lines: list[str]) -> Send:
    # RFC 1939 §3: none of these lines starts with ".", so no stuffing is needed.
    return Send(data="".join(f"{x}\r\n" for x in [first, *lines, "."]).encode("utf-8"))


class Pop3Session:
    """One POP3 conversation.

    Feed received bytes to :meth:`receive`; perform the returned actions in order.
    Call :meth:`connection_lost` exactly when the connection ends, whatever the reason.
    """

    def __init__(
        self,
        *,
        settings: Pop3Settings,
        authenticator: Authenticator,
        maildrops: MaildropPort,
        throttle: AuthThrottle,
        peer: str,
    ) -> None:
        self.settings = settings
        self.state = Pop3State.AUTHORIZATION
        self.tls_active = settings.tls_active
        self.closed = False
        self._authenticator = authenticator
        self._maildrops = maildrops
        self._throttle = throttle
        self._peer = peer
        self._reader = p.LineReader()
        self._user: str | None = None  # name given by USER, waiting for PASS
        self._auth_pending = False  # inside AUTH PLAIN, waiting for the client's response
        self._failures = 0
        self._maildrop: Maildrop | None = None
        self._messages: list[MaildropMessage] = []
        self._deleted: set[int] = set()  # message numbers marked by DELE

    # -- driving ---------------------------------------------------------------------

    def greeting(self) -> list[Action]:
        """The greeting, sent when the connection opens (RFC 1939 §4)."""
        return [_line(GREETING)]

    async def receive(self, data: bytes) -> list[Action]:
        """Process received bytes; return what to do, in order.

        Incomplete lines are kept for the next call. Nothing after ``STLS`` or
        ``Close`` in ``data`` is processed.
        """
        self._reader.feed(data)
        actions: list[Action] = []
        while not self.closed:
            try:
                line = self._reader.next_line()
            except SyntaxProblem as exc:
                # The overlong line is skipped up to its LF (resynchronisation).
                self._auth_pending = False
                self._reader.limit = p.LINE_LIMIT
                actions.append(_line(f"-ERR {exc.public}"))
                continue
            if line is None:
                break
            produced = await self._dispatch_line(line)
            actions += produced
            if any(isinstance(a, StartTls) for a in produced):
                # RFC 2595 §4: the client must not send anything before TLS is up.
                self._reader.clear()
                break
        return actions

    def tls_started(self) -> None:
        """Record that the TLS handshake after STLS succeeded (RFC 2595 §4)."""
        self.tls_active = True
        self._user = None

    async def timed_out(self) -> list[Action]:
        """The idle timer expired: say so and close, without entering UPDATE.

        RFC 1939 §3 lets the server close silently; like Dovecot we say why first.
        """
        await self.connection_lost()
        return [_line("-ERR Disconnected for inactivity."), Close()]

    async def connection_lost(self) -> None:
        """The connection is gone: release the lock; delete nothing. Idempotent."""
        self.closed = True
        await self._release()

    # -- dispatch --------------------------------------------------------------------

    async def _dispatch_line(self, line: bytes) -> list[Action]:
        if self._auth_pending:
            self._auth_pending = False
            try:
                response = p.parse_auth_response(line)
            except SyntaxProblem as exc:
                return [_line(f"-ERR {exc.public}")]
            return await self._auth_continue(response)
        try:
            command = p.parse_command(line)
        except SyntaxProblem as exc:
            return [_line(f"-ERR {exc.public}")]
        handler, states = _TABLE[command.verb]
        if self.state not in states:
            return [_line(f"-ERR {command.verb} not allowed in the {self.state.value} state")]
        return await handler(self, command)

    def _bad_number(self, msg: int) -> list[Action] | None:
        """A -ERR for a message number that is out of range or marked deleted."""
        if not 1 <= msg <= len(self._messages):
            return [_line("-ERR no such message")]
        if msg in self._deleted:
            return [_line(f"-ERR message {msg} already deleted")]
        return None

    def _live(self) -> list[tuple[int, MaildropMessage]]:
        return [(n, m) for n, m in enumerate(self._messages, 1) if n not in self._deleted]

    # -- AUTHORIZATION -----------------------------------------------------------------

    async def cmd_capa(self, _cmd: p.Capa) -> list[Action]:
        """AUTHORIZATION, TRANSACTION. RFC 2449 §5: list the capabilities.

        USER and SASL appear only once TLS is active (RFC 2595 §2.4); STLS only before.
        """
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.tls_active:
            caps += ["USER", "SASL PLAIN"]
        elif self.settings.tls_available and self.state is _A:
            caps.append("STLS")
        return [_multi("+OK Capability list follows", caps)]

    async def cmd_stls(self, _cmd: p.Stls) -> list[Action]:
        """AUTHORIZATION. RFC 2595 §4: start TLS negotiation."""
        if self.tls_active:
            return [_line("-ERR Command not permitted when TLS active")]
        if not self.settings.tls_available:
            return [_line("-ERR TLS not available")]
        return [_line("+OK Begin TLS negotiation now."), StartTls()]

    async def cmd_user(self, cmd: p.User) -> list[Action]:
        """AUTHORIZATION. RFC 1939 §7: name the maildrop; refused before TLS (RFC 3206)."""
        if not self.tls_active:
            return [_line(PLAINTEXT_REFUSED)]
        # Whether the user exists is not said (RFC 1939 §7 allows +OK for any name).
        self._user = cmd.name
        return [_line("+OK")]

    async def cmd_pass(self, cmd: p.Pass) -> list[Action]:
        """AUTHORIZATION. RFC 1939 §7: the password for the name given by USER."""
        if not self.tls_active:
            return [_line(PLAINTEXT_REFUSED)]
        if self._user is None:
            return [_line("-ERR No username given.")]
        user, self._user = self._user, None
        return await self._login(user, cmd.password)

    async def cmd_auth(self, cmd: p.Auth) -> list[Action]:
        """AUTHORIZATION. RFC 5034 §4: SASL authentication; PLAIN only (RFC 4616)."""
        if not self.tls_active:
            return [_line(PLAINTEXT_REFUSED)]
        if cmd.mechanism is None:
            return [_multi("+OK", ["PLAIN"])]
        if cmd.mechanism != "PLAIN":
            return [_line("-ERR Unsupported authentication mechanism.")]
        if cmd.initial is None:
            # RFC 5034 §4: an empty challenge is "+ " followed by CRLF.
            self._auth_pending = True
            self._reader.limit = p.AUTH_LINE_LIMIT
            return [Send(data=b"+ \r\n")]
        try:
            response = p.parse_auth_response(cmd.initial.encode("utf-8"))
        except SyntaxProblem as exc:
            return [_line(f"-ERR {exc.public}")]
        return await self._auth_continue(response)

    async def _auth_continue(self, response: p.AuthResponse) -> list[Action]:
        self._reader.limit = p.LINE_LIMIT
        if response.cancelled:
            # RFC 5034 §4: a "*" cancels; the server must answer -ERR.
            return [_line("-ERR Authentication aborted by client.")]
        try:
            creds = decode_plain(response.data)
        except SyntaxProblem as exc:
            return [_line(f"-ERR {exc.public}")]
        if creds.authzid and creds.authzid != creds.username:
            # No proxy authorisation: acting as another user is refused (RFC 4616 §2).
            return await self._failed()
        return await self._login(creds.username, creds.password)

    async def _login(self, username: str, password: str) -> list[Action]:
        principal = await self._authenticator.authenticate(username, password)
        if principal is None:
            return await self._failed()
        self._throttle.succeeded(self._peer)
        try:
            maildrop = await self._maildrops.open_maildrop(principal)
        except MaildropInUse:
            # RFC 2449 §8.1.2: another session holds the maildrop.
            return [_line("-ERR [IN-USE] Mailbox is locked by another POP3 session.")]
        except CourrielError:
            log.exception("pop3: cannot open maildrop of account %s", principal.account_id)
            return [_line("-ERR [SYS/TEMP] Cannot open the mailbox, try again later.")]
        self._maildrop = maildrop
        self._messages = list(maildrop.messages)
        self._deleted = set()
        self.state = _T
        total = sum(m.size for m in self._messages)
        return [_line(f"+OK Logged in, {len(self._messages)} messages ({total} octets).")]

    async def _failed(self) -> list[Action]:
        self._failures += 1
        delay = self._throttle.failed(self._peer)
        actions: list[Action] = [Delay(seconds=delay)]
        actions.append(_line("-ERR [AUTH] Authentication failed."))
        if self._failures >= self.settings.max_auth_failures:
            self.closed = True
            actions.append(Close())
        return actions

    # -- TRANSACTION -------------------------------------------------------------------

    async def cmd_stat(self, _cmd: p.Stat) -> list[Action]:
        """TRANSACTION. RFC 1939 §5: count and size of the messages not marked deleted."""
        live = self._live()
        return [_line(f"+OK {len(live)} {sum(m.size for _, m in live)}")]

    async def cmd_list(self, cmd: p.List) -> list[Action]:
        """TRANSACTION. RFC 1939 §5: scan listing of one message or all of them."""
        if cmd.msg is not None:
            return self._bad_number(cmd.msg) or [
                _line(f"+OK {cmd.msg} {self._messages[cmd.msg - 1].size}")
            ]
        live = self._live()
        first = f"+OK {len(live)} messages ({sum(m.size for _, m in live)} octets)"
        return [_multi(first, [f"{n} {m.size}" for n, m in live])]

    async def cmd_uidl(self, cmd: p.Uidl) -> list[Action]:
        """TRANSACTION. RFC 1939 §7: unique-id listing, stable across sessions."""
        if cmd.msg is not None:
            return self._bad_number(cmd.msg) or [
                _line(f"+OK {cmd.msg} {self._messages[cmd.msg - 1].uidl}")
            ]
        return [_multi("+OK", [f"{n} {m.uidl}" for n, m in self._live()])]

    async def cmd_retr(self, cmd: p.Retr) -> list[Action]:
        """TRANSACTION. RFC 1939 §5: the whole message, dot-stuffed."""
        return await self._send_message(cmd.msg, None)

    async def cmd_top(self, cmd: p.Top) -> list[Action]:
        """TRANSACTION. RFC 1939 §7: the header and the first n lines of the body."""
        return await self._send_message(cmd.msg, cmd.lines)

    async def _send_message(self, msg: int, lines: int | None) -> list[Action]:
        bad = self._bad_number(msg)
        if bad is not None:
            return bad
        assert self._maildrop is not None  # TRANSACTION always has a maildrop
        message = self._messages[msg - 1]
        try:
            data = await self._maildrop.read(message.message_id)
        except CourrielError:
            log.exception("pop3: cannot read message %s", message.message_id)
            return [_line("-ERR [SYS/TEMP] Cannot read the message, try again later.")]
        if lines is None:
            return [_line(f"+OK {message.size} octets"), SendMessage(data=data, end=len(data))]
        return [_line("+OK"), SendMessage(data=data, end=top_end(data, lines))]

    async def cmd_dele(self, cmd: p.Dele) -> list[Action]:
        """TRANSACTION. RFC 1939 §5: mark a message deleted (removed only in UPDATE)."""
        bad = self._bad_number(cmd.msg)
        if bad is not None:
            return bad
        self._deleted.add(cmd.msg)
        return [_line(f"+OK message {cmd.msg} deleted")]

    async def cmd_rset(self, _cmd: p.Rset) -> list[Action]:
        """TRANSACTION. RFC 1939 §5: unmark every message marked deleted."""
        self._deleted.clear()
        total = sum(m.size for m in self._messages)
        return [_line(f"+OK maildrop has {len(self._messages)} messages ({total} octets)")]

    async def cmd_noop(self, _cmd: p.Noop) -> list[Action]:
        """TRANSACTION. RFC 1939 §5: do nothing."""
        return [_line("+OK")]

    async def cmd_quit(self, _cmd: p.Quit) -> list[Action]:
        """AUTHORIZATION, TRANSACTION. RFC 1939 §4, §6: end; in TRANSACTION enter UPDATE."""
        self.closed = True
        if self.state is _A:
            await self._release()
            return [_line("+OK Logging out."), Close()]
        self.state = Pop3State.UPDATE
        return [await self._update(), Close()]

    async def _update(self) -> Send:
        """RFC 1939 §6: remove the messages marked deleted, then release the lock."""
        assert self._maildrop is not None
        ids = [self._messages[n - 1].message_id for n in sorted(self._deleted)]
        try:
            if ids:
                await self._maildrop.delete(ids)
        except CourrielError:
            log.exception("pop3: deleting %d messages failed", len(ids))
            return _line("-ERR [SYS/TEMP] Some deleted messages were not removed.")
        finally:
            await self._release()
        left = len(self._messages) - len(ids)
        return _line(f"+OK Logging out, {left} messages left.")

    async def _release(self) -> None:
        maildrop, self._maildrop = self._maildrop, None
        if maildrop is not None:
            try:
                await maildrop.release()
            except CourrielError:
                log.exception("pop3: releasing the maildrop lock failed")


_TABLE: dict[str, tuple[Handler, frozenset[Pop3State]]] = {
    "CAPA": (Pop3Session.cmd_capa, frozenset({_A, _T})),
    "STLS": (Pop3Session.cmd_stls, frozenset({_A})),
    "USER": (Pop3Session.cmd_user, frozenset({_A})),
    "PASS": (Pop3Session.cmd_pass, frozenset({_A})),
    "AUTH": (Pop3Session.cmd_auth, frozenset({_A})),
    "STAT": (Pop3Session.cmd_stat, frozenset({_T})),
    "LIST": (Pop3Session.cmd_list, frozenset({_T})),
    "UIDL": (Pop3Session.cmd_uidl, frozenset({_T})),
    "RETR": (Pop3Session.cmd_retr, frozenset({_T})),
    "TOP": (Pop3Session.cmd_top, frozenset({_T})),
    "DELE": (Pop3Session.cmd_dele, frozenset({_T})),
    "RSET": (Pop3Session.cmd_rset, frozenset({_T})),
    "NOOP": (Pop3Session.cmd_noop, frozenset({_T})),
    "QUIT": (Pop3Session.cmd_quit, frozenset({_A, _T})),
}
