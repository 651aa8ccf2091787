"""A private dnsmasq (Debian's package) on loopback, as a real DNS server for interop tests.

It reads no configuration file, no ``/etc/hosts`` and no ``resolv.conf``, forwards nothing
(``--no-resolv``; names under the zones given as ``local`` are answered from its own
records only, NXDOMAIN otherwise) and binds one loopback address and port, UDP and TCP.

Invariants:
    * The process is started with :meth:`Dnsmasq.start` and always ended by
      :meth:`Dnsmasq.stop` (the async context manager calls it on any exit).
    * Readiness is dnsmasq's own "started" log line, written after its sockets are bound.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Sequence
from types import TracebackType

from courriel.errors import ListenerError

__all__ = ["Dnsmasq", "dnsmasq_path", "free_udp_port"]


def dnsmasq_path() -> str:
    """Where Debian's dnsmasq is, or ``""``; ``/usr/sbin`` counts even when not on PATH."""
    search = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))
    return shutil.which("dnsmasq", path=search) or ""


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A port that is free for both UDP and TCP on ``host`` at the time of the call."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
            return port
    raise ListenerError(f"no port free for both UDP and TCP on {host}")


class Dnsmasq:
    """One dnsmasq process answering on ``host:port`` from the records given as options.

    Args:
        records: dnsmasq options that define the records, e.g.
            ``["--mx-host=a.test,mx.a.test,10", "--host-record=mx.a.test,127.0.0.5"]``.
        local: zones answered only from those records (``--local=/zone/``).
        host: the loopback address to bind.
        port: the port; 0 picks a free one.
        start_timeout: seconds to wait for dnsmasq's "started" line.
    """

    def __init__(
        self,
        records: Sequence[str],
        *,
        local: Sequence[str] = ("test",),
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout: float = 10.0,
    ) -> None:
        self.start_timeout = start_timeout
        self.records = tuple(records)
        self.local = tuple(local)
        self.host = host
        self.port = port
        self.log: list[str] = []  # dnsmasq's own lines (queries included), for failure reports
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        """The dnsmasq command line (``port`` must be set)."""
        return [
            dnsmasq_path() or "dnsmasq",
            "--keep-in-foreground",
            "--log-facility=-",
            "--log-queries",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            f"--port={self.port}",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            *(f"--local=/{zone}/" for zone in self.local),
            *self.records,
        ]

    async def start(self) -> int:
        """Start dnsmasq and return its port once it has bound its sockets.

        Raises:
            ListenerError: dnsmasq is missing, exited, or did not start in time.
        """
        if not dnsmasq_path():
            raise ListenerError("dnsmasq is not installed")
        if self.port == 0:
            self.port = free_udp_port(self.host)
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        started = asyncio.Event()
        self._reader = asyncio.create_task(self._read_log(started))
        try:
            async with asyncio.timeout(self.start_timeout):
                await started.wait()
        except TimeoutError:
            await self.stop()
            raise ListenerError(f"dnsmasq did not start: {' | '.join(self.log)}") from None
        if self._process.returncode is not None:
            await self.stop()
            raise ListenerError(f"dnsmasq exited: {' | '.join(self.log)}")
        return self.port

    async def _read_log(self, started: asyncio.Event) -> None:
        assert self._process is not None and self._process.stderr is not None
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if "started, version" in line:
                started.set()
        # End of output: dnsmasq exited; wake start() so that it reports why.
        started.set()

    async def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader

    async def __aenter__(self) -> int:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
