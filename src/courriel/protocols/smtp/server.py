"""The SMTP listener: thin asyncio glue around :class:`SmtpSession`.

The server only reads, writes, waits and upgrades TLS; every protocol decision is
the session's. It owns: the connection limit, the command and data timeouts
(``421 4.4.2`` then close), implicit TLS (port 465, RFC 8314) and STARTTLS via
``StreamWriter.start_tls`` (RFC 3207), the anti-abuse delays the session asks
for, and graceful shutdown.

Invariants:

* Replies are written once per received packet, after every command in it was
  handled, i.e. when the input buffer is drained (RFC 2920 §3.1).
* Plain-text octets received after STARTTLS are never read as commands
  (RFC 3207 §4.2; the session drops its buffer, the server closes the
  connection if the stream still holds some).
* ``stop(grace)``: no new connections; idle sessions get ``421 4.3.2`` and are
  closed; sessions inside DATA/BDAT may finish (their 250 is sent) within
  ``grace`` seconds; then whatever is left gets ``421 4.3.2`` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from typing import Final, cast

from courriel.delivery.targets import DeliveryTarget
from courriel.errors import InvalidInput, ListenerError
from courriel.mailstore.types import Authenticator
from courriel.protocols.effects import Close, Delay, StartTls
from courriel.protocols.sasl import AuthThrottle
from courriel.protocols.smtp.replies import Action, Reply
from courriel.protocols.smtp.session import (
    SHUTTING_DOWN,
    TIMEOUT,
    TOO_MANY_CONNECTIONS,
    SmtpSession,
    SmtpSettings,
)

__all__ = ["SmtpServer"]

log = logging.getLogger(__name__)

READ_SIZE = 65536
_STOP: Final = object()
LOCAL_FAILURE = Reply.of(421, "4.3.0", "Local error, closing connection")


class SmtpServer:
    """One SMTP listener (MX, submission with STARTTLS, or submissions with implicit TLS)."""

    def __init__(
        self,
        settings: SmtpSettings,
        target: DeliveryTarget,
        authenticator: Authenticator | None,
        throttle: AuthThrottle,
        ssl_context: ssl.SSLContext | None,
        *,
        implicit_tls: bool = False,
    ) -> None:
        """Configure the listener; nothing is bound until :meth:`start`.

        Args:
            settings: the listener's settings (``tls_active`` also means implicit TLS).
            target: where accepted messages go.
            authenticator: checks AUTH credentials; None on MX listeners.
            throttle: the delay policy after failed AUTH attempts.
            ssl_context: the server certificate; None disables STARTTLS.
            implicit_tls: TLS from the first octet (port 465, RFC 8314 §3.3).
        """
        implicit_tls = implicit_tls or settings.tls_active
        if implicit_tls and ssl_context is None:
            raise InvalidInput("implicit TLS needs an SSL context")
        self.settings = dataclasses.replace(
            settings,
            tls_active=implicit_tls,
            tls_available=settings.tls_available and ssl_context is not None,
        )
        self.target = target
        self.authenticator = authenticator
        self.throttle = throttle
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop_signal: asyncio.Future[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); valid after :meth:`start`."""
        if self._server is None or not self._server.sockets:
            raise ListenerError("the SMTP server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has begun."""
        return self._stopping

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start accepting; return the bound (host, port).

        Raises:
            OSError: the address cannot be bound (the caller explains it).
        """
        self._stop_signal = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(
            self._on_connect,
            host,
            port,
            ssl=self.ssl_context if self.settings.tls_active else None,
            limit=READ_SIZE,
        )
        return self.address

    async def stop(self, grace: float) -> None:
        """Stop accepting, let transactions in flight finish, close everything."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        if self._stop_signal is not None and not self._stop_signal.done():
            self._stop_signal.set_result(None)
        tasks = set(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=max(grace, 0.0))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self._server.wait_closed()
        self._server = None

    # Connections ----------------------------------------------------------------

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._stopping or len(self._tasks) >= self.settings.max_connections:
            refusal = SHUTTING_DOWN if self._stopping else TOO_MANY_CONNECTIONS
            writer.write(refusal.to_bytes())
            await _close(writer)
            return
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        session = SmtpSession(
            self.settings,
            self.target,
            authenticator=self.authenticator,
            throttle=self.throttle,
            peer_ip=str(peer[0]) if peer else "unknown",
        )
        try:
            await self._serve(session, reader, writer)
        except asyncio.CancelledError:
            # Shutdown grace period is over (or the loop is going away).
            _write_quietly(writer, SHUTTING_DOWN)
            raise
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            log.debug("smtp %s: connection lost", session.peer_ip)
        except Exception:
            log.exception("smtp %s: session failed", session.peer_ip)
            _write_quietly(writer, LOCAL_FAILURE)
        finally:
            self._tasks.discard(task)
            await session.aclose()
            await _close(writer)

    async def _serve(
        self, session: SmtpSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if not await self._perform(session, reader, writer, session.greeting()):
            return
        while not session.closed:
            if self._stopping and not session.in_message:
                writer.write(SHUTTING_DOWN.to_bytes())
                return
            in_message = session.in_message
            timeout = self.settings.data_timeout if in_message else self.settings.command_timeout
            data = await self._read(reader, timeout, stoppable=not in_message)
            if data is _STOP:
                continue
            if data is None:
                writer.write(TIMEOUT.to_bytes())
                return
            assert isinstance(data, bytes)
            if not data:
                return
            actions = await session.receive(data)
            if not await self._perform(session, reader, writer, actions):
                return

    async def _read(
        self, reader: asyncio.StreamReader, seconds: float, *, stoppable: bool
    ) -> bytes | object | None:
        """Read what is available; None on timeout, ``_STOP`` when shutdown begins."""
        read = asyncio.ensure_future(reader.read(READ_SIZE))
        waiting: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
        if stoppable and self._stop_signal is not None:
            waiting.add(self._stop_signal)  # type: ignore[arg-type]
        try:
            done, _ = await asyncio.wait(waiting, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            if not read.done():
                read.cancel()
        if read in done:
            return read.result()
        with contextlib.suppress(asyncio.CancelledError):
            await read
        return _STOP if done else None

    async def _perform(
        self,
        session: SmtpSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        actions: list[Action],
    ) -> bool:
        """Carry out the session's actions in order; False when the connection must end."""
        pending = bytearray()
        for action in actions:
            if isinstance(action, Reply):
                pending += action.to_bytes()
                continue
            if isinstance(action, StartTls):
                if not await self._start_tls(session, reader, writer, pending):
                    return False
                continue
            await self._flush(writer, pending)
            if isinstance(action, Delay):
                # The anti-abuse delay (AuthThrottle), not a synchronisation.
                await asyncio.sleep(action.seconds)
            elif isinstance(action, Close):
                return False
        await self._flush(writer, pending)
        return True

    async def _flush(self, writer: asyncio.StreamWriter, pending: bytearray) -> None:
        if pending:
            writer.write(bytes(pending))
            pending.clear()
            await asyncio.wait_for(writer.drain(), self.settings.command_timeout)

    async def _start_tls(
        self,
        session: SmtpSession,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: bytearray,
    ) -> bool:
        """Send the 220 held in ``pending`` and upgrade; False when the connection must end."""
        assert self.ssl_context is not None  # the session offers STARTTLS only with one
        # RFC 3207 §4.2: plain text received before our 220 is an injection attempt
        # (CVE-2011-0411); the stream's buffer has no public accessor.
        if getattr(reader, "_buffer", b""):
            log.info("smtp %s: data pipelined after STARTTLS, closing", session.peer_ip)
            return False
        # Stop reading before the 220 leaves: the client's TLS ClientHello that answers
        # it must reach the TLS layer, not the plain-text stream buffer.
        cast(asyncio.ReadTransport, writer.transport).pause_reading()
        await self._flush(writer, pending)
        await writer.start_tls(self.ssl_context)
        session.tls_established()
        return True


def _write_quietly(writer: asyncio.StreamWriter, reply: Reply) -> None:
    if not writer.is_closing():
        with contextlib.suppress(Exception):
            writer.write(reply.to_bytes())


async def _close(writer: asyncio.StreamWriter) -> None:
    if writer.is_closing():
        return
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 5.0)
