"""The outbound SMTP client: a thin asyncio layer over :mod:`.client_parser`.

:class:`SmtpConnector` implements :class:`courriel.delivery.transport.Connector`:
it opens a session (greeting, EHLO, STARTTLS, AUTH) and returns an
:class:`SmtpConnection`, which runs one transaction per :meth:`SmtpConnection.send`
and is reused for as many messages as the caller wants.

Invariants:
    * ``send`` never raises for a protocol reply: every recipient gets its final
      reply. Connection loss, timeouts and unreadable replies raise
      :class:`courriel.delivery.transport.TransportError` and leave the connection
      closed.
    * After a transaction that did not reach its final reply, RSET is sent so that
      the connection can carry the next message (RFC 5321 §4.1.1.5).
    * Credentials are sent only over TLS unless ``starttls="none"`` was chosen.
    * Nothing read before the TLS handshake is kept after it (RFC 3207 §4.2).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Callable
from typing import Literal

from courriel.delivery.transport import Outgoing, SendOutcome, TransportError
from courriel.protocols.smtp.client_parser import (
    Extensions,
    ServerReply,
    parse_ehlo,
)
from courriel.protocols.smtp.client_transaction import run_transaction
from courriel.protocols.smtp.client_wire import READ_SIZE, ClientTimeouts, Wire, remote

__all__ = ["ClientTimeouts", "SmtpConnection", "SmtpConnector", "StartTlsMode"]

StartTlsMode = Literal["opportunistic", "required", "none"]
_QUIT_TIMEOUT = 10.0


class SmtpConnection:
    """One open session; see :class:`courriel.delivery.transport.Connection`."""

    def __init__(
        self,
        wire: Wire,
        *,
        host: str,
        tls: bool,
        tls_verified: bool,
        extensions: Extensions,
        timeouts: ClientTimeouts,
    ) -> None:
        self.host = host
        self.tls = tls
        self.tls_verified = tls_verified
        self.extensions = extensions
        self._wire = wire
        self._timeouts = timeouts
        self._lock = asyncio.Lock()

    @property
    def closed(self) -> bool:
        """True once the connection cannot carry another message."""
        return self._wire.closed

    @property
    def reusable(self) -> bool:
        """Open on both sides, nothing unsolicited waiting (a 421 before closing, RFC
        5321 §3.8), and not in use: a parked session may be handed out again."""
        wire = self._wire
        # Bytes the peer sent unasked sit in the reader's buffer (asyncio has no public
        # way to see them without reading); at_eof() alone misses "421, then close".
        unsolicited = bool(getattr(wire.reader, "_buffer", b"")) or bool(wire.parser.buffered)
        return not (
            wire.closed
            or self._lock.locked()
            or wire.reader.at_eof()
            or wire.writer.transport.is_closing()
            or unsolicited
        )

    async def send(self, message: Outgoing) -> SendOutcome:
        """Run one mail transaction; see the module docstring.

        Raises:
            TransportError: the connection was lost, timed out or sent garbage.
        """
        async with self._lock:
            if self._wire.closed:
                raise TransportError(f"connection to {self.host} is closed", temporary=True)
            results = await run_transaction(self._wire, self.extensions, self._timeouts, message)
            return SendOutcome(recipients=results)

    async def close(self) -> None:
        """Say QUIT (RFC 5321 §4.1.1.10), tolerate any failure, close; idempotent."""
        if self._wire.closed:
            return
        try:
            await self._wire.command("QUIT", _QUIT_TIMEOUT, "QUIT")
        except TransportError:
            return
        wire = self._wire
        wire.closed = True
        wire.writer.close()
        try:
            async with asyncio.timeout(_QUIT_TIMEOUT):
                await wire.writer.wait_closed()
        except (OSError, TimeoutError):
            wire.writer.transport.abort()


class _TlsFailure(TransportError):
    """A TLS handshake failed (internal: turned into a retry or a TransportError)."""

    def __init__(self, message: str, *, certificate: bool) -> None:
        self.certificate = certificate  # the peer certificate did not verify
        super().__init__(message, temporary=True)


def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _refused(
    reply: ServerReply, what: str, host: str, *, temporary: bool | None = None
) -> TransportError:
    """The error for a refusal; ``temporary`` defaults to the reply's own class."""
    answer = remote(reply)
    return TransportError(
        f"{host} answered {what} with {reply.code} {reply.enhanced} {reply.text}".replace(
            "  ", " "
        ),
        temporary=answer.temporary if temporary is None else temporary,
        reply=answer,
    )


class SmtpConnector:
    """Opens :class:`SmtpConnection` objects; implements ``delivery.transport.Connector``."""

    def __init__(
        self,
        helo_name: str,
        *,
        tls_context_factory: Callable[[], ssl.SSLContext] | None = None,
        cafile: str | None = None,
        timeouts: ClientTimeouts | None = None,
        port: int = 25,
        starttls: StartTlsMode = "opportunistic",
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        remember_for: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the client.

        Args:
            helo_name: our name in EHLO/HELO (RFC 5321 §4.1.1.1).
            tls_context_factory: makes the verifying client context; the default
                trusts the system store, or ``cafile`` when given.
            cafile: a PEM bundle to trust instead of the system store.
            timeouts: per-step timeouts (RFC 5321 §4.5.3.2 defaults).
            port: the default port (the caller passes it to :meth:`connect`).
            starttls: ``"opportunistic"`` (use TLS when offered, fall back to clear
                text if the handshake fails), ``"required"`` or ``"none"``.
            implicit_tls: TLS from the first octet (RFC 8314 §3, port 465).
            auth: ``(user, password)`` for AUTH PLAIN/LOGIN (RFC 4954), or None.
            remember_for: seconds to remember that a host's certificate does not
                verify or that its TLS handshake fails, to skip the doomed attempt.
            clock: a monotonic clock (injected by tests).
        """
        self.helo_name = helo_name
        self.port = port
        self.starttls: StartTlsMode = starttls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.timeouts = timeouts or ClientTimeouts()
        self._factory = tls_context_factory or (lambda: ssl.create_default_context(cafile=cafile))
        self._remember_for = remember_for
        self._clock = clock
        # One context of each kind per connector: building one costs ~27 ms of CPU and
        # ~1 MB (the trust store), far more than the handshake it serves.
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._unverified: dict[tuple[str, int], float] = {}  # key -> until
        self._no_tls: dict[tuple[str, int], float] = {}

    def _remembered(self, table: dict[tuple[str, int], float], key: tuple[str, int]) -> bool:
        until = table.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del table[key]
            return False
        return True

    async def connect(self, host: str, address: str, port: int) -> SmtpConnection:
        """Open a session to ``address``:``port`` for MX ``host``.

        A certificate that does not verify is retried once with an unverified
        context (``tls_verified=False``); an opportunistic handshake that fails
        altogether is retried in clear text. Both are remembered for a while.

        Raises:
            TransportError: unreachable, refused greeting, or TLS required and failed.
        """
        key = (address, port)
        opportunistic = self.starttls == "opportunistic" and not self.implicit_tls
        use_tls = self.implicit_tls or self.starttls != "none"
        if opportunistic and self._remembered(self._no_tls, key):
            use_tls = False
        verify = not self._remembered(self._unverified, key)
        try:
            return await self._open(host, address, port, use_tls=use_tls, verify=verify)
        except _TlsFailure as failure:
            last = failure
        if verify and last.certificate:
            self._unverified[key] = self._clock() + self._remember_for
            try:
                return await self._open(host, address, port, use_tls=True, verify=False)
            except _TlsFailure as failure:
                last = failure
        if not opportunistic:
            raise TransportError(f"TLS with {host} failed: {last}", temporary=True)
        self._no_tls[key] = self._clock() + self._remember_for
        return await self._open(host, address, port, use_tls=False, verify=False)

    def _context(self, verify: bool) -> ssl.SSLContext:
        """The connector's verifying (or lenient) context, built on first use."""
        context = self._contexts.get(verify)
        if context is None:
            context = self._factory() if verify else _unverified_context()
            self._contexts[verify] = context
        return context

    async def _open(
        self, host: str, address: str, port: int, *, use_tls: bool, verify: bool
    ) -> SmtpConnection:
        name = host or address
        context = self._context(verify) if use_tls else None
        wire = await self._dial(name, address, port, context if self.implicit_tls else None)
        try:
            t = self.timeouts
            greeting = await wire.read_reply(t.greeting, "greeting")
            # RFC 5321 §3.1 and §4.2: 220 is the only greeting that opens a session;
            # 554 means "no SMTP service here" and 4xx "try later".
            if greeting.code != 220:
                raise _refused(greeting, "the connection", name)
            extensions = await self._hello(wire, name)
            tls = self.implicit_tls
            if not tls and use_tls:
                extensions, tls = await self._starttls(wire, name, context, extensions)
            if self.auth is not None:
                await self._authenticate(wire, name, extensions, tls)
        except BaseException:
            wire.abort()
            raise
        return SmtpConnection(
            wire,
            host=host,
            tls=tls,
            tls_verified=tls and verify,
            extensions=extensions,
            timeouts=self.timeouts,
        )

    async def _dial(
        self, name: str, address: str, port: int, context: ssl.SSLContext | None
    ) -> Wire:
        try:
            async with asyncio.timeout(self.timeouts.connect):
                reader, writer = await asyncio.open_connection(
                    address,
                    port,
                    ssl=context,
                    server_hostname=name if context is not None else None,
                    limit=READ_SIZE,
                )
        except ssl.SSLError as exc:
            certificate = isinstance(exc, ssl.SSLCertVerificationError)
            raise _TlsFailure(str(exc), certificate=certificate) from None
        except TimeoutError:
            raise TransportError(
                f"timed out connecting to {name} [{address}]:{port}", temporary=True
            ) from None
        except OSError as exc:
            raise TransportError(
                f"cannot connect to {name} [{address}]:{port}: {exc.strerror or exc}",
                temporary=True,
            ) from None
        return Wire(reader, writer, f"{name} [{address}]:{port}")

    async def _hello(self, wire: Wire, name: str) -> Extensions:
        t = self.timeouts
        reply = await wire.command(f"EHLO {self.helo_name}", t.command, "EHLO")
        if reply.code == 250:
            return parse_ehlo(reply)
        # RFC 5321 §4.1.4: a server that does not know EHLO answers 5xx; use HELO.
        if 500 <= reply.code < 600 and reply.code != 554:
            reply = await wire.command(f"HELO {self.helo_name}", t.command, "HELO")
            if reply.code == 250:
                return Extensions()
        raise _refused(reply, "EHLO/HELO", name)

    async def _starttls(
        self, wire: Wire, name: str, context: ssl.SSLContext | None, extensions: Extensions
    ) -> tuple[Extensions, bool]:
        if not extensions.starttls or context is None:
            if self.starttls == "required":
                raise TransportError(f"{name} does not offer STARTTLS", temporary=True)
            return extensions, False
        reply = await wire.command("STARTTLS", self.timeouts.command, "STARTTLS")
        if reply.code != 220:
            # RFC 3207 §4: after a refusal the client may go on in clear text.
            if self.starttls == "required":
                raise _refused(reply, "STARTTLS", name)
            return extensions, False
        # RFC 3207 §4.2: octets the server sent after its 220 are not trusted.
        wire.parser.discard_buffer()
        try:
            await wire.writer.start_tls(
                context, server_hostname=name, ssl_handshake_timeout=self.timeouts.tls_handshake
            )
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            wire.abort()
            certificate = isinstance(exc, ssl.SSLCertVerificationError)
            raise _TlsFailure(str(exc) or type(exc).__name__, certificate=certificate) from None
        # RFC 3207 §4.2: forget what EHLO said in clear text and ask again.
        return await self._hello(wire, name), True

    async def _authenticate(self, wire: Wire, name: str, extensions: Extensions, tls: bool) -> None:
        assert self.auth is not None
        if not tls and self.starttls != "none":
            raise TransportError(f"refusing to authenticate to {name} without TLS", temporary=True)
        user, password = self.auth
        t = self.timeouts.command
        # RFC 4954 §4: AUTH with an initial response (RFC 4616 PLAIN) or LOGIN's challenges.
        if "PLAIN" in extensions.auth:
            token = _b64(f"\0{user}\0{password}")
            reply = await wire.command(f"AUTH PLAIN {token}", t, "AUTH")
        elif "LOGIN" in extensions.auth:
            reply = await wire.command("AUTH LOGIN", t, "AUTH")
            if reply.code == 334:
                reply = await wire.command(_b64(user), t, "AUTH")
            if reply.code == 334:
                reply = await wire.command(_b64(password), t, "AUTH")
        else:
            raise TransportError(f"{name} offers neither AUTH PLAIN nor LOGIN", temporary=True)
        if reply.code != 235:
            # A refused login is a configuration problem: retry later rather than bounce.
            raise _refused(reply, "AUTH", name, temporary=True)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
