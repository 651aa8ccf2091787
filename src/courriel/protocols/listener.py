"""The listener core shared by the SMTP, IMAP and POP3 servers.

This module owns what the three mail listeners do alike: binding (with implicit TLS
from the first octet, RFC 8314 §3.3), the registry of connections, the connection
limit answered with the protocol's own refusal line, the per-connection task (expected
disconnects are quiet, unexpected failures are logged, the socket is always closed),
the idle/busy distinction that ``stop(grace)`` relies on, and the guard of a STARTTLS
(or STLS) upgrade against pipelined plain text. Each protocol server subclasses
:class:`Listener` and keeps only its protocol loop, in :meth:`Listener.serve`.

Invariants:
    * A connection counts in :attr:`Listener.connections` from its acceptance until its
      session has ended; a refused connection never counts.
    * A session is idle only while it waits for input (inside :meth:`Listener.idle`);
      ``stop(grace)`` cancels idle sessions at once, lets busy ones finish for ``grace``
      seconds, then cancels the rest. Nothing is accepted once ``stop`` has begun.
    * Every accepted socket is closed; a peer that never answers a TLS close_notify is
      aborted after :data:`CLOSE_TIMEOUT` seconds, so it cannot hold up ``stop``.
    * The listener writes to a client only the lines of :class:`ListenerLines`; every
      other octet comes from the protocol session.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from courriel.errors import InvalidInput, ListenerError

__all__ = [
    "CLOSE_TIMEOUT",
    "TLS_HANDSHAKE_TIMEOUT",
    "Listener",
    "ListenerLines",
    "ListenerSettings",
    "close_quietly",
]

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT = 30.0  # seconds for a TLS handshake, implicit or upgraded
CLOSE_TIMEOUT = 5.0  # seconds a closing connection may wait for the peer


class ListenerSettings(Protocol):
    """What the listener core reads in a protocol's (dataclass) settings."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def hostname(self) -> str:
        """Our name, for logs."""
        ...

    @property
    def tls_active(self) -> bool:
        """Connections start in TLS (implicit TLS)."""
        ...

    @property
    def tls_available(self) -> bool:
        """A certificate is loaded: the upgrade to TLS may be offered."""
        ...

    @property
    def max_connections(self) -> int:
        """Sessions served at once; more are refused."""
        ...


S = TypeVar("S", bound=ListenerSettings)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ListenerLines:
    """The lines a listener writes on its own, in its protocol's words (CRLF included)."""

    too_many: bytes  # instead of the greeting, when max_connections sessions are served
    shutting_down: bytes  # instead of the greeting, once stop() has begun
    cut: bytes | None = None  # to a session stop() cancels; None: close without a word
    failed: bytes | None = None  # after an unexpected error; None: close without a word


class Listener(abc.ABC, Generic[S]):
    """One listening socket and the connections it serves.

    Args:
        settings: the protocol's settings; ``tls_active`` means implicit TLS.
        tls: the server TLS context; None disables the upgrade and implicit TLS.
        implicit_tls: overrides ``settings.tls_active`` when given.
        lines: the refusal and farewell lines in the protocol's words.

    Raises:
        InvalidInput: implicit TLS without a TLS context.
    """

    protocol: ClassVar[str]  # the name in logs: "SMTP", "IMAP", "POP3"

    def __init__(
        self,
        settings: S,
        tls: ssl.SSLContext | None,
        *,
        implicit_tls: bool | None,
        lines: ListenerLines,
    ) -> None:
        implicit = settings.tls_active if implicit_tls is None else implicit_tls
        if implicit and tls is None:
            raise InvalidInput("implicit TLS needs a TLS context")
        # The session's view must match the socket: the upgrade only with a context.
        self.settings: S = dataclasses.replace(
            settings,
            tls_active=implicit,
            tls_available=settings.tls_available and tls is not None,
        )
        self.tls = tls
        self.lines = lines
        self.port = 0  # the bound port, once started
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()  # sessions waiting for input
        self._stopping = False

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._tasks)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has begun."""
        return self._stopping

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port).

        Raises:
            ListenerError: the listener is not started.
        """
        if self._server is None or not self._server.sockets:
            raise ListenerError(f"the {self.protocol} listener is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start accepting.

        Args:
            host: the address to bind (tests use ``127.0.0.1``).
            port: the port; 0 picks a free one (see :attr:`port`).

        Returns:
            The bound host and port.

        Raises:
            OSError: the address cannot be bound (the caller explains it).
        """
        implicit = self.settings.tls_active
        self._server = await asyncio.start_server(
            self._on_connect,
            host,
            port,
            ssl=self.tls if implicit else None,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit else None,
        )
        bound_host, self.port = self.address
        name = self.settings.hostname
        log.info("%s listening on %s:%d (%s)", self.protocol, bound_host, self.port, name)
        return bound_host, self.port

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, give busy sessions ``grace`` seconds, then cut the rest.

        Sessions waiting for input are cut at once (they get ``lines.cut``).
        """
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in self._idle:
            task.cancel()
        tasks = set(self._tasks)
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @abc.abstractmethod
    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        """Run one session to its end: the protocol loop.

        Return when the session is over; the listener closes the socket. Lost
        connections (``OSError``, ``EOFError``) may propagate: they end the session
        quietly. Waits for input go through :meth:`idle` or :meth:`read`.

        Args:
            reader: the connection's input.
            writer: the connection's output.
            peer: the client's IP address, or ``unknown``.
        """

    @contextlib.contextmanager
    def idle(self) -> Iterator[None]:
        """Mark the current session as waiting for input: :meth:`stop` may cut it at once."""
        task = asyncio.current_task()
        assert task is not None  # sessions run in their own tasks
        self._idle.add(task)
        try:
            yield
        finally:
            self._idle.discard(task)

    async def read(
        self, reader: asyncio.StreamReader, size: int, seconds: float, *, idle: bool = True
    ) -> bytes | None:
        """Read what is available, up to ``size`` octets (``b""`` at end of input).

        Args:
            reader: the connection's input.
            size: the most octets to return.
            seconds: how long to wait.
            idle: the session counts as idle while it waits (False in the middle of a
                command, e.g. a message being received).

        Returns:
            The octets read, or None when ``seconds`` passed first.
        """
        with self.idle() if idle else contextlib.nullcontext():
            try:
                async with asyncio.timeout(seconds):
                    return await reader.read(size)
            except TimeoutError:
                return None

    @staticmethod
    def hold_for_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Prepare an upgrade to TLS, before the reply that announces it is written.

        Returns False when the client already sent plain text after its command: it
        would be read as if it came through TLS (an injection, CVE-2011-0411), so the
        connection must end. Otherwise stops reading, so that the ClientHello answering
        the reply reaches the TLS layer instead of the plain-text buffer.
        """
        # The StreamReader's buffer has no public accessor.
        if getattr(reader, "_buffer", b""):
            return False
        cast(asyncio.ReadTransport, writer.transport).pause_reading()
        return True

    async def start_tls(self, writer: asyncio.StreamWriter) -> None:
        """Upgrade the connection after its announcing reply (see :meth:`hold_for_tls`)."""
        assert self.tls is not None  # sessions offer the upgrade only with a context
        await writer.drain()
        await writer.start_tls(self.tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each client in its own task
        if self._stopping or len(self._tasks) >= self.settings.max_connections:
            refusal = self.lines.shutting_down if self._stopping else self.lines.too_many
            with contextlib.suppress(OSError):
                writer.write(refusal)
                await writer.drain()
            await close_quietly(writer)
            return
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._run(reader, writer, str(peer[0]) if peer else "unknown")
        finally:
            self._tasks.discard(task)
            await close_quietly(writer)

    async def _run(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        try:
            await self.serve(reader, writer, peer)
        except asyncio.CancelledError:
            # stop(): the session was idle, or the grace period is over.
            _say(writer, self.lines.cut)
            raise
        except (OSError, EOFError):
            # ssl.SSLError, TimeoutError and ConnectionError are OSErrors.
            log.debug("%s %s: connection lost", self.protocol, peer)
        except Exception:
            log.exception("%s %s: session failed", self.protocol, peer)
            _say(writer, self.lines.failed)


def _say(writer: asyncio.StreamWriter, line: bytes | None) -> None:
    """Write a last line if the connection is still open; never raise."""
    if line is not None and not writer.is_closing():
        with contextlib.suppress(Exception):
            writer.write(line)


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close a connection, aborting it when the peer does not answer in time.

    Args:
        writer: the connection's output.
    """
    writer.close()
    try:
        # A TLS peer that never answers close_notify must not hold up stop().
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except Exception:  # the connection is gone, however it went
        log.debug("closing a connection failed", exc_info=True)
