"""A fast SMTP sink for ``bench/delivery.py``: the remote MX hosts of every destination domain.

One process listens on ``127.0.0.2 .. 127.0.0.(N+1)`` (one address per destination domain),
all on the same port, speaks just enough ESMTP to receive mail (RFC 5321 with PIPELINING,
RFC 2920; 8BITMIME; SMTPUTF8; no STARTTLS and no CHUNKING, so every client sends plain
``DATA``) and throws each message away after noting its ``Message-ID`` and recipients.
It is the same sink for courriel and for Postfix, so neither gets an easier peer.

A control listener on ``127.0.0.1`` answers every connection with one JSON line, then
closes: messages and recipients accepted, distinct (Message-ID, recipient) pairs, the
duplicates, and the ``time.monotonic()`` of the first and the last accepted message
(CLOCK_MONOTONIC is system-wide on Linux, so the benchmark compares them with its own).

Invariants:
    * It binds loopback addresses only and never connects anywhere.
    * A message counts once its end-of-data dot is read; it is then answered 250.
    * Nothing is parsed beyond command verbs, ``RCPT`` paths and the ``Message-ID`` line.

Usage (normally started by ``delivery.py``)::

    python bench/_delivery_sink.py --hosts 50      # prints: ready PORT CONTROL_PORT
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import cast

__all__ = ["SinkStats", "host_addresses", "main"]

_EHLO = (
    b"250-sink.bench.localhost\r\n"
    b"250-PIPELINING\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250 SIZE 52428800\r\n"
)
_END = b"\r\n.\r\n"  # RFC 5321 §4.1.1.4: the end of mail data indicator
_MESSAGE_ID = re.compile(rb"\r\nMessage-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE)
_PATH = re.compile(rb"<([^>]*)>")
_MAX_LINE = 4096  # a command line longer than this closes the connection


def host_addresses(count: int) -> list[str]:
    """The loopback addresses of ``count`` MX hosts: 127.0.0.2, 127.0.0.3, ..."""
    if not 1 <= count <= 250:
        raise ValueError("between 1 and 250 hosts")
    return [f"127.0.0.{2 + n}" for n in range(count)]


@dataclass(slots=True)
class SinkStats:
    """What the sink has accepted so far (one event loop: no locking)."""

    messages: int = 0
    recipients: int = 0
    seen: set[bytes] = field(default_factory=set)  # b"<message-id> rcpt"
    duplicates: int = 0
    first: float = 0.0  # time.monotonic() of the first accepted message
    last: float = 0.0

    def accept(self, message_id: bytes, recipients: list[bytes]) -> None:
        """Count one message delivered to ``recipients``."""
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        self.messages += 1
        self.recipients += len(recipients)
        for rcpt in recipients:
            key = message_id + b" " + rcpt.lower()
            if key in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(key)

    def as_json(self) -> bytes:
        """One JSON line for the control listener."""
        data = {
            "messages": self.messages,
            "recipients": self.recipients,
            "distinct": len(self.seen),
            "duplicates": self.duplicates,
            "first": self.first,
            "last": self.last,
        }
        return json.dumps(data).encode() + b"\n"


class SinkProtocol(asyncio.Protocol):
    """One SMTP connection: commands line by line, then mail data until the dot."""

    def __init__(self, stats: SinkStats) -> None:
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.in_data = False
        self.recipients: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"220 sink.bench.localhost ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        while self.buffer and self.transport is not None:
            if self.in_data:
                if not self._data_end(replies):
                    break
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_LINE:
                    self.transport.close()
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            reply = self._command(line)
            replies.append(reply)
            if reply.startswith(b"221"):
                break
        # RFC 2920 §3.2: replies to a pipelined group may go out together.
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
            if replies[-1].startswith(b"221"):
                self.transport.close()

    def _data_end(self, replies: list[bytes]) -> bool:
        # The message may be empty: then the dot line comes first.
        if self.buffer.startswith(b".\r\n"):
            end, skip = 0, 3
        else:
            end = self.buffer.find(_END)
            if end < 0:
                return False
            skip = end + len(_END)
        head = bytes(self.buffer[: min(end, 8192)])
        match = _MESSAGE_ID.search(b"\r\n" + head)
        self.stats.accept(match.group(1) if match else b"<none>", self.recipients)
        del self.buffer[:skip]
        self.in_data = False
        self.recipients = []
        replies.append(b"250 2.0.0 OK\r\n")
        return True

    def _command(self, line: bytes) -> bytes:
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            self.recipients = []
            return _EHLO if verb == b"EHLO" else b"250 sink.bench.localhost\r\n"
        if verb == b"MAIL":
            self.recipients = []
            return b"250 2.1.0 OK\r\n"
        if verb == b"RCPT":
            match = _PATH.search(line)
            self.recipients.append(match.group(1) if match else b"")
            return b"250 2.1.5 OK\r\n"
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 no valid recipients\r\n"
            self.in_data = True
            return b"354 go ahead\r\n"
        if verb == b"RSET":
            self.recipients = []
            return b"250 2.0.0 OK\r\n"
        if verb == b"NOOP":
            return b"250 2.0.0 OK\r\n"
        if verb == b"QUIT":
            return b"221 2.0.0 bye\r\n"
        return b"502 5.5.2 not implemented\r\n"

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class ControlProtocol(asyncio.Protocol):
    """Writes the statistics as one JSON line and closes."""

    def __init__(self, stats: SinkStats) -> None:
        self.stats = stats

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        stream.write(self.stats.as_json())
        stream.close()


def _common_port(hosts: list[str]) -> int:
    """A port free on every host (bound and released; the sink binds it right after)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise OSError("no port free on every sink address")


async def serve(hosts: list[str], port: int) -> None:
    """Serve until SIGTERM/SIGINT; print ``ready PORT CONTROL_PORT`` once listening."""
    loop = asyncio.get_running_loop()
    stats = SinkStats()
    port = port or _common_port(hosts)
    servers = [
        await loop.create_server(lambda: SinkProtocol(stats), host, port, backlog=1024)
        for host in hosts
    ]
    control = await loop.create_server(lambda: ControlProtocol(stats), "127.0.0.1", 0)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    control_port = control.sockets[0].getsockname()[1]
    sys.stdout.write(f"ready {port} {control_port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        for server in [*servers, control]:
            server.close()


def main(argv: list[str] | None = None) -> None:
    """Parse ``--hosts`` and ``--port`` and serve."""
    parser = argparse.ArgumentParser(description="SMTP sink on 127.0.0.2.. for the benchmark")
    parser.add_argument("--hosts", type=int, default=1, help="addresses 127.0.0.2 onwards")
    parser.add_argument("--port", type=int, default=0, help="one port for all (0: any free)")
    args = parser.parse_args(argv)
    try:
        runner = importlib.import_module("uvloop").run
    except (ImportError, AttributeError):
        runner = asyncio.run
    runner(serve(host_addresses(args.hosts), args.port))


if __name__ == "__main__":
    main()
