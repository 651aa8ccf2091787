"""Commands of the not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE.

This module owns login: plaintext refusal before TLS (RFC 9051 §6.2.3, worded as
Dovecot 2.3 words it), the SASL PLAIN exchange with SASL-IR (RFC 4959) and ``*``
cancellation, and the failure throttle. Passwords are never logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from courriel.errors import CourrielError, SyntaxProblem
from courriel.protocols.imap.actions import (
    Action,
    Close,
    Delay,
    Send,
    StartTls,
    bad,
    no,
    ok,
    untagged,
)
from courriel.protocols.imap.types import Authenticate, Command, Login
from courriel.protocols.sasl import b64decode_response, decode_plain

if TYPE_CHECKING:
    from courriel.protocols.imap.session import ImapSession

__all__ = ["cmd_authenticate", "cmd_login", "cmd_starttls"]

log = logging.getLogger(__name__)

# Dovecot 2.3's answer to a LOGIN sent in clear text (disable_plaintext_auth).
PLAINTEXT_ALERT = (
    "BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your client "
    "did it anyway. If anyone was listening, the password was exposed."
)
PLAINTEXT_REFUSED = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
AUTH_FAILED = "Authentication failed."


async def cmd_starttls(s: ImapSession, cmd: Command) -> list[Action]:
    """NOT AUTHENTICATED. RFC 9051 §6.2.1: tagged OK, then the TLS handshake."""
    if s.tls_active:
        return [bad(cmd.tag, "TLS is already active.")]
    if not s.settings.tls_available:
        return [bad(cmd.tag, "TLS support isn't enabled.")]
    return [ok(cmd.tag, "Begin TLS negotiation now."), StartTls()]


async def cmd_login(s: ImapSession, cmd: Command) -> list[Action]:
    """NOT AUTHENTICATED. RFC 9051 §6.2.3: user name and password, only over TLS."""
    assert isinstance(cmd.args, Login)
    if not s.tls_active:
        return [untagged(PLAINTEXT_ALERT), no(cmd.tag, PLAINTEXT_REFUSED, "PRIVACYREQUIRED")]
    return await _login(s, cmd.tag, cmd.args.user, cmd.args.password)


async def cmd_authenticate(s: ImapSession, cmd: Command) -> list[Action]:
    """NOT AUTHENTICATED. RFC 9051 §6.2.2: SASL PLAIN (RFC 4616), SASL-IR (RFC 4959)."""
    assert isinstance(cmd.args, Authenticate)
    if cmd.args.mechanism != "PLAIN":
        return [no(cmd.tag, "Unsupported authentication mechanism.")]
    if not s.tls_active:
        return [no(cmd.tag, PLAINTEXT_REFUSED, "PRIVACYREQUIRED")]
    if cmd.args.initial is not None:
        return await _sasl_response(s, cmd.tag, cmd.args.initial)
    tag = cmd.tag

    async def respond(text: str) -> list[Action]:
        return await _sasl_response(s, tag, text)

    s.raw_handler = respond
    s.parser.want_raw_line()
    # RFC 9051 §7.5: an empty challenge is "+ " then CRLF.
    return [Send(data=b"+ \r\n")]


async def _sasl_response(s: ImapSession, tag: str, text: str) -> list[Action]:
    if text.strip() == "*":
        # RFC 9051 §6.2.2: the client cancelled; the server answers BAD.
        return [bad(tag, "Authentication aborted by client.")]
    try:
        creds = decode_plain(b64decode_response(text))
    except SyntaxProblem as exc:
        if "base64" in exc.public:
            return [bad(tag, "Invalid base64 data in continued response")]
        return await _failed(s, tag)
    if creds.authzid and creds.authzid != creds.username:
        # No proxy authorisation: acting as another user is refused (RFC 4616 §2).
        return await _failed(s, tag)
    return await _login(s, tag, creds.username, creds.password)


async def _login(s: ImapSession, tag: str, username: str, password: str) -> list[Action]:
    from courriel.protocols.imap.session import ImapState

    try:
        principal = await s.authenticator.authenticate(username, password)
    except CourrielError:
        log.exception("imap: authentication back end failed for %s", s.peer)
        return [no(tag, "Temporary authentication failure.", "UNAVAILABLE")]
    if principal is None:
        return await _failed(s, tag)
    s.throttle.succeeded(s.peer)
    s.principal = principal
    s.state = ImapState.AUTHENTICATED
    return [ok(tag, "Logged in", f"CAPABILITY {s.capability_text()}")]


async def _failed(s: ImapSession, tag: str) -> list[Action]:
    s.auth_failures += 1
    delay = s.throttle.failed(s.peer)
    # RFC 5530 §3: AUTHENTICATIONFAILED, without saying which part was wrong.
    actions: list[Action] = [Delay(seconds=delay), no(tag, AUTH_FAILED, "AUTHENTICATIONFAILED")]
    if s.auth_failures >= s.settings.max_auth_failures:
        s.closed = True
        actions += [untagged("BYE Too many invalid IMAP commands."), Close()]
    return actions
