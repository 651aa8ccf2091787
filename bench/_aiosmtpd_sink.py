"""The aiosmtpd baseline of ``bench/smtp_receive.py``: an SMTP server that fsyncs every message.

A plain :class:`aiosmtpd.smtp.SMTP` protocol served by ``loop.create_server`` (no
``aiosmtpd.controller`` thread), on uvloop when it is installed, like courriel. Its handler
makes each message durable before answering 250: it writes the message to its own file in
``DIR/tmp``, fsyncs it, and renames it into ``DIR/new`` (the Maildir delivery steps), the file
work done in a worker thread so that the event loop keeps serving other connections.

Invariants:
    * It listens on 127.0.0.1 only; port 0 picks a free port.
    * The first line on stdout is ``ready 127.0.0.1:PORT`` once it accepts connections.
    * SIGTERM or SIGINT stops it: the listener closes, then the process exits.

Usage::

    python bench/_aiosmtpd_sink.py --dir /tmp/sink --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["FsyncHandler", "main", "serve"]


class FsyncHandler:
    """aiosmtpd handler: accept ``@bench.test`` recipients, store each message durably."""

    def __init__(self, directory: Path, domain: str = "bench.test") -> None:
        self.tmp = directory / "tmp"
        self.new = directory / "new"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.new.mkdir(parents=True, exist_ok=True)
        self.domain = domain.lower()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """Accept recipients of the benchmark domain only, like a real MX would."""
        if address.rpartition("@")[2].lower() != self.domain:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Write the message (tmp, write, fsync, rename) and only then answer 250."""
        content = envelope.original_content or b""
        await asyncio.to_thread(self._store, content)
        return "250 2.0.0 OK: stored"

    def _store(self, content: bytes) -> None:
        name = f"{uuid.uuid4().hex}.bench"
        tmp = self.tmp / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.rename(self.new / name)


async def serve(directory: Path, port: int) -> None:
    """Serve until SIGTERM/SIGINT; print ``ready 127.0.0.1:PORT`` once listening."""
    handler = FsyncHandler(directory)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="aiosmtpd.bench.localhost", decode_data=False)

    server = await loop.create_server(factory, "127.0.0.1", port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"ready 127.0.0.1:{bound}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    """Parse ``--dir`` and ``--port`` and serve."""
    parser = argparse.ArgumentParser(description="aiosmtpd baseline that fsyncs each message")
    parser.add_argument("--dir", type=Path, required=True, help="Maildir-like folder to write")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    try:
        runner = importlib.import_module("uvloop").run
    except (ImportError, AttributeError):
        runner = asyncio.run
    runner(serve(args.dir, args.port))


if __name__ == "__main__":
    main()
