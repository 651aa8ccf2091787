"""The server side of SMTP AUTH (RFC 4954), sans-I/O.

This module owns everything AUTH asks of a session:

* :func:`auth_refusal`: whether AUTH may be used at all on this connection
  (submission listeners only, over TLS only, once per session, known mechanism);
* :class:`SaslExchange`: one PLAIN or LOGIN exchange. ``start`` takes the optional
  initial response (SASL-IR, RFC 4954 §4), ``step`` takes each following client
  line. Each returns either a ``334`` challenge to send or the final
  :class:`Credentials`;
* :class:`SmtpAuth`: one per session. It runs the exchange, checks the
  credentials through the Authenticator port and applies the failure throttle
  (a :class:`Delay` before each 535). The session applies the
  :class:`AuthOutcome` it returns (state, parser mode, principal);
* :func:`command_trace`: how a command may appear in a trace.

Invariants: nothing here logs or echoes what the client sent; AUTH commands are
traced as ``AUTH <mechanism> [redacted]``; a failed check never answers before
the throttle's delay (the Delay action comes first).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from courriel.errors import DeliveryRefused, ProtocolError, SyntaxProblem
from courriel.mailstore.types import Authenticator, Principal
from courriel.protocols.sasl import (
    AuthThrottle,
    Credentials,
    b64decode_response,
    decode_plain,
    redact_auth,
)
from courriel.protocols.smtp import commands as c
from courriel.protocols.smtp.extensions import AUTH_MECHANISMS
from courriel.protocols.smtp.replies import Action, Delay, Reply, reply_from_error

__all__ = ["AuthOutcome", "SaslExchange", "SmtpAuth", "auth_refusal", "command_trace"]

log = logging.getLogger(__name__)

# RFC 4954 §4 and the LOGIN draft: the challenges are "Username:" and "Password:".
_USERNAME = Reply.of(334, "", "VXNlcm5hbWU6")
_PASSWORD = Reply.of(334, "", "UGFzc3dvcmQ6")
_EMPTY = Reply.of(334, "", "")

_BAD_SEQUENCE = Reply.of(503, "5.5.1", "Bad sequence of commands")
_SUCCEEDED = Reply.of(235, "2.7.0", "Authentication successful")
_INVALID = Reply.of(535, "5.7.8", "Authentication credentials invalid")
_TEMPORARY = Reply.of(454, "4.7.0", "Temporary authentication failure")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyntaxProblem("Credentials are not UTF-8", code=501, enhanced="5.5.2") from exc


def command_trace(command: c.Command) -> str:
    """Return ``command`` as it may appear in a trace (AUTH payloads redacted)."""
    shown = f"AUTH {command.mechanism}" if isinstance(command, c.AuthCmd) else command
    return redact_auth(str(shown))


def auth_refusal(
    cmd: c.AuthCmd, *, submission: bool, tls: bool, authenticated: bool
) -> Reply | None:
    """Return the reply refusing ``cmd`` on this connection, or None to go ahead.

    Args:
        cmd: the AUTH command.
        submission: the listener is a submission listener (AUTH is offered there only).
        tls: the connection is encrypted.
        authenticated: the session already has a principal.
    """
    if not submission:
        return Reply.of(502, "5.5.1", "AUTH not available")
    if not tls:
        # RFC 4954 §6: 538 when the mechanism needs an encrypted connection.
        return Reply.of(538, "5.7.11", "Encryption required for authentication")
    if authenticated:
        return Reply.of(503, "5.5.1", "Already authenticated")
    if cmd.mechanism not in AUTH_MECHANISMS:
        return Reply.of(504, "5.5.4", "Unrecognized authentication type")
    return None


class SaslExchange:
    """One PLAIN or LOGIN exchange."""

    def __init__(self, mechanism: str) -> None:
        """Begin an exchange for ``mechanism`` (``PLAIN`` or ``LOGIN``)."""
        self.mechanism = mechanism
        self._username: str | None = None

    def start(self, initial: str | None) -> Reply | Credentials:
        """Handle the AUTH command's optional initial response.

        Raises:
            ProtocolError: 501 5.0.0 when cancelled, 501 5.5.2 on malformed data.
        """
        if initial is None:
            return _EMPTY if self.mechanism == "PLAIN" else _USERNAME
        return self.step(initial)

    def step(self, response: str) -> Reply | Credentials:
        """Handle one client response line.

        Raises:
            ProtocolError: 501 5.0.0 when cancelled (``*``), 501 5.5.2 on malformed data.
        """
        if response.strip() == "*":
            # RFC 4954 §4: "*" cancels the exchange.
            raise ProtocolError(501, "5.0.0", "Authentication cancelled")
        raw = b64decode_response(response)
        if self.mechanism == "PLAIN":
            creds = decode_plain(raw)
            # RFC 4616 §2: we only allow acting as oneself.
            if creds.authzid and creds.authzid != creds.username:
                raise ProtocolError(535, "5.7.8", "Authentication credentials invalid")
            return creds
        if self._username is None:
            self._username = _text(raw)
            return _PASSWORD
        return Credentials(authzid="", username=self._username, password=_text(raw))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthOutcome:
    """What the session does after an AUTH command or one SASL response line."""

    actions: tuple[Action, ...]  # to send in order; a Delay comes before its 535
    pending: bool = False  # a 334 challenge went out: the next line is a SASL response
    principal: Principal | None = None  # set on success (235) only


class SmtpAuth:
    """The AUTH exchanges of one session: challenge, check, throttle."""

    def __init__(
        self,
        *,
        authenticator: Authenticator | None,
        throttle: AuthThrottle | None,
        peer_ip: str,
    ) -> None:
        """Create the AUTH side of a session.

        Args:
            authenticator: checks credentials; None answers every attempt 454.
            throttle: returns the delay after a failed attempt; None means no delay.
            peer_ip: the client's address (the throttle's key, log lines).
        """
        self.authenticator = authenticator
        self.throttle = throttle
        self.peer_ip = peer_ip
        self._sasl: SaslExchange | None = None

    async def begin(self, cmd: c.AuthCmd) -> AuthOutcome:
        """Start an exchange for an accepted AUTH command (see :func:`auth_refusal`)."""
        self._sasl = SaslExchange(cmd.mechanism)
        try:
            result = self._sasl.start(cmd.initial)
        except ProtocolError as exc:
            return self._done(reply_from_error(exc))
        return await self._result(result)

    async def respond(self, text: str) -> AuthOutcome:
        """Take one client line of the exchange (RFC 4954 §4)."""
        if self._sasl is None:
            return self._done(_BAD_SEQUENCE)
        try:
            result = self._sasl.step(text)
        except ProtocolError as exc:
            return self._done(reply_from_error(exc))
        return await self._result(result)

    async def _result(self, result: Reply | Credentials) -> AuthOutcome:
        if isinstance(result, Reply):
            return AuthOutcome(actions=(result,), pending=True)
        principal = await self._check(result)
        if isinstance(principal, Reply):
            return self._done(principal)
        if principal is None:
            delay = self.throttle.failed(self.peer_ip) if self.throttle else 0.0
            return self._done(Delay(delay), _INVALID)
        if self.throttle:
            self.throttle.succeeded(self.peer_ip)
        self._sasl = None
        return AuthOutcome(actions=(_SUCCEEDED,), principal=principal)

    async def _check(self, creds: Credentials) -> Principal | Reply | None:
        """Ask the Authenticator; a refusal or a failure of the port is a 454."""
        if self.authenticator is None:
            return _TEMPORARY
        try:
            return await self.authenticator.authenticate(creds.username, creds.password)
        except DeliveryRefused:
            return _TEMPORARY
        except Exception:
            log.exception("smtp %s: authenticator failed", self.peer_ip)
            return _TEMPORARY

    def _done(self, *actions: Action) -> AuthOutcome:
        self._sasl = None
        return AuthOutcome(actions=actions)
