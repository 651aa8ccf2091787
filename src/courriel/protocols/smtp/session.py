"""The SMTP server session: one explicit state machine, no sockets.

Input: raw octets (:meth:`SmtpSession.receive`, which drives the parser) or
parsed events (:meth:`SmtpSession.handle`). Output: a list of actions, i.e.
replies to write and effects only the server can perform (``StartTls``,
``Close``, ``Delay``). Handlers may await the ports (delivery target,
authenticator); that is the only waiting the session does.

Invariants:

* ``_COMMANDS`` maps each command type to its ``cmd_<verb>`` handler and the
  states it is allowed in; anything else is 503 5.5.1 (RFC 5321 §4.3.2).
* Every reply after the greeting and the EHLO/HELO answer carries an enhanced
  status code (RFC 2034 §3); 3xx intermediate replies do not.
* 250 to DATA / BDAT LAST is returned only after ``Delivery.commit`` returned.
* A delivery is aborted whenever its transaction ends without a commit.
* SASL responses are never logged; AUTH commands are logged redacted. The
  AUTH exchange, its throttle and the redaction live in
  :mod:`courriel.protocols.smtp.auth`; the session only applies its outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from courriel.delivery.targets import DeliveryTarget, ListenerKind, MailFrom, SessionInfo
from courriel.errors import DeliveryRefused, ProtocolError, SyntaxProblem
from courriel.mailstore.types import Authenticator, Principal
from courriel.protocols.effects import Close, StartTls
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp import commands as c
from courriel.protocols.smtp.auth import AuthOutcome, SmtpAuth, auth_refusal, command_trace
from courriel.protocols.smtp.body import BodyScanner
from courriel.protocols.smtp.extensions import ehlo_keywords, read_mail_params
from courriel.protocols.smtp.parser import (
    AuthResponse,
    BdatChunk,
    BdatEnd,
    DataChunk,
    DataEnd,
    Event,
    SmtpParser,
)
from courriel.protocols.smtp.replies import Action, Reply, reply_from_error
from courriel.protocols.smtp.states import COMMAND_STATES, State
from courriel.protocols.smtp.trace import protocol_keyword, received_header
from courriel.protocols.smtp.transaction import (
    Transaction,
    content_problem,
    data_end_problem,
    may_send_as,
    new_id,
)

__all__ = ["SmtpSession", "SmtpSettings", "State"]

log = logging.getLogger(__name__)
T = TypeVar("T")

OK = Reply.of(250, "2.0.0", "Ok")
BAD_SEQUENCE = Reply.of(503, "5.5.1", "Bad sequence of commands")
NO_RECIPIENTS = Reply.of(554, "5.5.1", "No valid recipients")
LOCAL_ERROR = Reply.of(451, "4.3.0", "Temporary local problem, try again later")
TOO_MANY_ERRORS = Reply.of(421, "4.7.0", "Too many errors, closing connection")
TIMEOUT = Reply.of(421, "4.4.2", "Timeout exceeded, closing connection")
SHUTTING_DOWN = Reply.of(421, "4.3.2", "Service shutting down, closing connection")
TOO_MANY_CONNECTIONS = Reply.of(421, "4.7.0", "Too many connections, try again later")


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSettings:
    """Settings of one SMTP listener."""

    hostname: str  # our name: greeting, EHLO answer, Received: "by"
    listener: ListenerKind = "mx"  # "mx" (port 25, no AUTH) or "submission" (AUTH required)
    max_message_size: int = 50 * 1024 * 1024  # RFC 1870 SIZE; 0 means no fixed limit
    max_recipients: int = 1000  # RFC 5321 §4.5.3.1.8 requires at least 100
    tls_available: bool = False  # a certificate is loaded: STARTTLS may be offered
    tls_active: bool = False  # connections start in TLS (implicit TLS, port 465)
    banner: str = ""  # text after our name in the 220 greeting; "" means "ESMTP courriel"
    max_errors: int = 20  # error replies before 421 and close (Postfix's hard error limit)
    command_timeout: float = 300.0  # RFC 5321 §4.5.3.2.7: at least 5 minutes
    data_timeout: float = 600.0  # RFC 5321 §4.5.3.2.6 (used by the server only)
    max_connections: int = 500  # concurrent connections (used by the server only)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SmtpSession:
    """One SMTP server session (one connection)."""

    def __init__(
        self,
        settings: SmtpSettings,
        target: DeliveryTarget,
        *,
        authenticator: Authenticator | None = None,
        throttle: AuthThrottle | None = None,
        peer_ip: str = "127.0.0.1",
        clock: Callable[[], datetime] = _utcnow,
        make_id: Callable[[], str] = new_id,
    ) -> None:
        """Create a session for a client that just connected.

        Args:
            settings: the listener's settings.
            target: where transactions go.
            authenticator: checks AUTH credentials (submission listeners).
            throttle: returns the delay after a failed AUTH.
            peer_ip: the client's address (trace header, throttle key).
            clock: the time for the trace header (injected in tests).
            make_id: generates transaction ids (injected in tests).
        """
        self.settings = settings
        self.target = target
        self.peer_ip = peer_ip
        self._clock = clock
        self._make_id = make_id
        self.parser = SmtpParser()
        self.state = State.CONNECTED
        self.tls = settings.tls_active
        self.helo = ""
        self.esmtp = False
        self.principal: Principal | None = None
        self.errors = 0
        self._txn: Transaction | None = None
        self._auth = SmtpAuth(authenticator=authenticator, throttle=throttle, peer_ip=peer_ip)
        self._bdat: c.BdatCmd | None = None
        self._bdat_error: Reply | None = None

    # Public API -------------------------------------------------------------

    @property
    def in_message(self) -> bool:
        """True while a DATA message or BDAT chunks are being received."""
        return self.state in (State.DATA, State.BDAT)

    @property
    def closed(self) -> bool:
        """True once the session asked for the connection to be closed."""
        return self.state is State.CLOSED

    def greeting(self) -> list[Action]:
        """The 220 greeting (RFC 5321 §4.2: it starts with our name)."""
        banner = self.settings.banner or "ESMTP courriel"
        return [Reply.of(220, "", f"{self.settings.hostname} {banner}")]

    def tls_established(self) -> None:
        """Tell the session the STARTTLS handshake succeeded."""
        self.tls = True

    async def receive(self, data: bytes) -> list[Action]:
        """Feed received octets; return the actions for every complete event."""
        self.parser.feed(data)
        out: list[Action] = []
        while self.state is not State.CLOSED:
            try:
                event = self.parser.next_event()
            except SyntaxProblem as exc:
                out += self._count([reply_from_error(exc)])
                continue
            if event is None:
                break
            actions = await self.handle(event)
            out += actions
            if any(isinstance(a, StartTls) for a in actions):
                break
        return out

    async def handle(self, event: Event) -> list[Action]:
        """Process one parsed event; return replies and effects."""
        if self.state is State.CLOSED:
            return []
        if isinstance(event, DataChunk | BdatChunk):
            await self._consume(event.data)
            return []
        if isinstance(event, DataEnd):
            return self._count([await self._finish(data_end_problem(event))])
        if isinstance(event, BdatEnd):
            return self._count([await self._bdat_end()])
        if isinstance(event, AuthResponse):
            return self._count(self._apply_auth(await self._auth.respond(event.text)))
        return self._count(await self._dispatch(event))

    async def aclose(self) -> None:
        """End the session: abort any open transaction (idempotent)."""
        await self._abort()
        self.state = State.CLOSED

    # Dispatch ---------------------------------------------------------------

    async def _dispatch(self, command: c.Command) -> list[Action]:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("smtp %s: %s", self.peer_ip, command_trace(command))
        name, allowed = _COMMANDS[type(command)]
        if self.state not in allowed:
            return [BAD_SEQUENCE]
        handler: Callable[[SmtpSession, c.Command], Awaitable[list[Action]]]
        handler = getattr(SmtpSession, name)
        return await handler(self, command)

    def _count(self, actions: list[Action]) -> list[Action]:
        """Count error replies; past the limit, answer 421 and close."""
        for action in actions:
            if isinstance(action, Reply) and action.is_error and action.code != 421:
                self.errors += 1
        if self.errors >= self.settings.max_errors and self.state is not State.CLOSED:
            self.state = State.CLOSED
            return [*actions, TOO_MANY_ERRORS, Close()]
        return actions

    async def _guard(self, step: Awaitable[T]) -> T | Reply:
        """Await a port call; a refusal or failure becomes the reply to send."""
        try:
            return await step
        except DeliveryRefused as exc:
            return reply_from_error(exc)
        except Exception:
            log.exception("smtp %s: delivery port failed", self.peer_ip)
            return LOCAL_ERROR

    def _info(self) -> SessionInfo:
        return SessionInfo(
            listener=self.settings.listener,
            peer_ip=self.peer_ip,
            helo=self.helo,
            tls=self.tls,
            authenticated=self.principal.address if self.principal else None,
        )

    async def _abort(self) -> None:
        txn, self._txn = self._txn, None
        if txn is not None:
            await self._guard(txn.delivery.abort())

    async def _reset(self) -> None:
        await self._abort()
        self.state = State.READY if self.helo else State.CONNECTED

    # Commands ---------------------------------------------------------------

    async def cmd_ehlo(self, cmd: c.EhloCmd) -> list[Action]:
        """Any command state. RFC 5321 §4.1.1.1: greet; resets the transaction."""
        await self._abort()
        self.helo, self.esmtp, self.state = cmd.domain, cmd.extended, State.READY
        name = self.settings.hostname
        if not cmd.extended:
            return [Reply.of(250, "", name)]
        keywords = ehlo_keywords(
            max_message_size=self.settings.max_message_size,
            starttls=self.settings.tls_available and not self.tls,
            # RFC 4954 §4 and RFC 6409: AUTH on submission only, and only over TLS.
            auth=self.settings.listener == "submission" and self.tls,
        )
        return [Reply.of(250, "", name, *keywords)]

    async def cmd_mail(self, cmd: c.MailCmd) -> list[Action]:
        """READY. RFC 5321 §4.1.1.2: start a transaction."""
        submission = self.settings.listener == "submission"
        if submission and self.principal is None:
            # RFC 4954 §6: submission requires AUTH first.
            return [Reply.of(530, "5.7.0", "Authentication required")]
        try:
            params = read_mail_params(cmd.params, self.settings.max_message_size)
        except ProtocolError as exc:
            return [reply_from_error(exc)]
        if not cmd.address.isascii() and not params.smtputf8:
            # RFC 6531 §3.5: a UTF-8 address needs the SMTPUTF8 parameter.
            return [Reply.of(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")]
        if submission and not may_send_as(self.principal, cmd.address):
            return [Reply.of(553, "5.7.1", "Sender address not allowed for this account")]
        mail_from = MailFrom(
            address=cmd.address, size=params.size, body=params.body, smtputf8=params.smtputf8
        )
        delivery = await self._guard(self.target.start(self._info(), mail_from))
        if isinstance(delivery, Reply):
            return [delivery]
        self._txn = Transaction(
            mail_from=mail_from, delivery=delivery, message_id=self._make_id(), recipients=[]
        )
        self.state = State.MAIL
        return [Reply.of(250, "2.1.0", "Ok")]

    async def cmd_rcpt(self, cmd: c.RcptCmd) -> list[Action]:
        """MAIL, RCPT. RFC 5321 §4.1.1.3: add one recipient."""
        txn = self._txn
        assert txn is not None  # the MAIL and RCPT states always have a transaction
        if len(txn.recipients) >= self.settings.max_recipients:
            # RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452.
            return [Reply.of(452, "4.5.3", "Too many recipients")]
        if cmd.params:
            return [Reply.of(555, "5.5.4", "Unsupported parameter")]
        if not cmd.address.isascii() and not txn.mail_from.smtputf8:
            return [Reply.of(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")]
        refused = await self._guard(txn.delivery.add_recipient(cmd.address))
        if isinstance(refused, Reply):
            return [refused]
        txn.recipients.append(cmd.address)
        self.state = State.RCPT
        return [Reply.of(250, "2.1.5", "Ok")]

    async def cmd_data(self, _cmd: c.DataCmd) -> list[Action]:
        """MAIL, RCPT. RFC 5321 §4.1.1.4: receive the message after 354."""
        if self.state is State.MAIL or self._txn is None:
            # RFC 2920 §3.1 / RFC 5321 §3.3: no accepted recipient.
            return [NO_RECIPIENTS]
        self._txn.body = BodyScanner(max_size=self.settings.max_message_size)
        self.state = State.DATA
        self.parser.expect_data()
        return [Reply.of(354, "", "End data with <CR><LF>.<CR><LF>")]

    async def cmd_bdat(self, cmd: c.BdatCmd) -> list[Action]:
        """Any command state. RFC 3030 §2: the octets are read whatever the reply."""
        self.parser.expect_bdat(cmd.size)
        self._bdat = cmd
        self._bdat_error = None
        if self.state is State.RCPT and self._txn is not None:
            self._txn.body = BodyScanner(max_size=self.settings.max_message_size)
            self.state = State.BDAT
        elif self.state is State.MAIL:
            self._bdat_error = NO_RECIPIENTS
        elif self.state is not State.BDAT:
            self._bdat_error = BAD_SEQUENCE
        return []

    async def cmd_rset(self, _cmd: c.RsetCmd) -> list[Action]:
        """Any command state. RFC 5321 §4.1.1.5: abort the transaction."""
        await self._reset()
        return [OK]

    async def cmd_noop(self, _cmd: c.NoopCmd) -> list[Action]:
        """Any command state. RFC 5321 §4.1.1.9."""
        return [OK]

    async def cmd_help(self, _cmd: c.HelpCmd) -> list[Action]:
        """Any command state. RFC 5321 §4.1.1.8."""
        return [Reply.of(214, "2.0.0", "See RFC 5321; commands: EHLO MAIL RCPT DATA BDAT QUIT")]

    async def cmd_vrfy(self, _cmd: c.VrfyCmd) -> list[Action]:
        """Any command state. RFC 5321 §3.5.3: 252, never confirm an address."""
        return [Reply.of(252, "2.5.0", "Cannot VRFY user, but will attempt delivery")]

    async def cmd_expn(self, _cmd: c.ExpnCmd) -> list[Action]:
        """Any command state. RFC 5321 §3.5.2: list expansion is not offered."""
        return [Reply.of(502, "5.5.1", "EXPN not available")]

    async def cmd_quit(self, _cmd: c.QuitCmd) -> list[Action]:
        """Any command state. RFC 5321 §4.1.1.10: close."""
        await self.aclose()
        return [Reply.of(221, "2.0.0", "Bye"), Close()]

    async def cmd_starttls(self, _cmd: c.StartTlsCmd) -> list[Action]:
        """READY. RFC 3207 §4: upgrade to TLS, then forget everything (§4.2)."""
        if self.tls or not self.settings.tls_available:
            return [Reply.of(502, "5.5.1", "STARTTLS not available")]
        # RFC 3207 §4.2: anything pipelined after STARTTLS is dropped
        # (the CVE-2011-0411 command injection).
        self.parser.discard_buffer()
        await self._abort()
        self.helo, self.esmtp, self.principal = "", False, None
        self.state = State.CONNECTED
        return [Reply.of(220, "2.0.0", "Ready to start TLS"), StartTls()]

    async def cmd_auth(self, cmd: c.AuthCmd) -> list[Action]:
        """READY. RFC 4954 §4: SASL PLAIN or LOGIN, TLS and submission only."""
        refused = auth_refusal(
            cmd,
            submission=self.settings.listener == "submission",
            tls=self.tls,
            authenticated=self.principal is not None,
        )
        if refused is not None:
            return [refused]
        return self._apply_auth(await self._auth.begin(cmd))

    def _apply_auth(self, outcome: AuthOutcome) -> list[Action]:
        """Follow an AUTH step: SASL lines while pending, else commands again."""
        if outcome.pending:
            self.state = State.AUTH
            self.parser.expect_line()
        else:
            self.state = State.READY
            self.parser.expect_command()
        if outcome.principal is not None:
            self.principal = outcome.principal
        return list(outcome.actions)

    # Message body -------------------------------------------------------------

    async def _consume(self, data: bytes) -> None:
        txn = self._txn
        if txn is None or txn.body is None or self._bdat_error is not None:
            return
        txn.body.feed(data)
        if txn.failure is None and not txn.body.oversized:
            written = await self._guard(txn.delivery.write(data))
            if isinstance(written, Reply):
                txn.failure = written

    async def _bdat_end(self) -> Reply:
        cmd, self._bdat = self._bdat, None
        if self._bdat_error is not None:
            error, self._bdat_error = self._bdat_error, None
            return error
        txn = self._txn
        assert cmd is not None and txn is not None and txn.body is not None
        if cmd.last:
            return await self._finish(None)
        if txn.body.oversized or txn.failure is not None:
            return await self._finish(None)
        return Reply.of(250, "2.0.0", f"{cmd.size} octets received")

    async def _finish(self, problem: Reply | None) -> Reply:
        """End the message: refuse it, or commit it and answer 250 after commit."""
        txn = self._txn
        assert txn is not None
        submission = self.settings.listener == "submission"
        check = (lambda address: may_send_as(self.principal, address)) if submission else None
        problem = problem or content_problem(txn, sender_check=check)
        if problem is not None:
            await self._reset()
            return problem
        queued = await self._guard(txn.delivery.commit(self._received(txn)))
        if isinstance(queued, Reply):
            await self._reset()
            return queued
        self._txn = None
        self.state = State.READY
        return Reply.of(250, "2.0.0", f"Ok: queued as {queued}")

    def _received(self, txn: Transaction) -> bytes:
        """The Received: trace header for ``txn`` (RFC 5321 §4.4)."""
        return received_header(
            helo=self.helo,
            peer_ip=self.peer_ip,
            hostname=self.settings.hostname,
            protocol=protocol_keyword(
                esmtp=self.esmtp,
                tls=self.tls,
                authenticated=self.principal is not None,
                smtputf8=txn.mail_from.smtputf8,
            ),
            message_id=txn.message_id,
            recipients=txn.recipients,
            when=self._clock(),
        )


_ANY = COMMAND_STATES
_COMMANDS: dict[type, tuple[str, frozenset[State]]] = {
    c.EhloCmd: ("cmd_ehlo", _ANY),
    c.MailCmd: ("cmd_mail", frozenset({State.READY})),
    c.RcptCmd: ("cmd_rcpt", frozenset({State.MAIL, State.RCPT})),
    c.DataCmd: ("cmd_data", frozenset({State.MAIL, State.RCPT})),
    c.BdatCmd: ("cmd_bdat", _ANY),
    c.RsetCmd: ("cmd_rset", _ANY),
    c.NoopCmd: ("cmd_noop", _ANY),
    c.HelpCmd: ("cmd_help", _ANY),
    c.VrfyCmd: ("cmd_vrfy", _ANY),
    c.ExpnCmd: ("cmd_expn", _ANY),
    c.QuitCmd: ("cmd_quit", _ANY),
    c.StartTlsCmd: ("cmd_starttls", frozenset({State.READY})),
    c.AuthCmd: ("cmd_auth", frozenset({State.READY})),
}
