"""Servers under test for ``bench/smtp_receive.py``: start each on 127.0.0.1, always stop it.

Each server is a context manager that yields the port its SMTP listener accepts on:
courriel (``courriel serve`` as a subprocess), the aiosmtpd baseline (``_aiosmtpd_sink.py``
as a subprocess) and a private Postfix instance (``postfix_sink.py``). All three accept
``user@bench.test``.

Invariants:
    * Nothing listens anywhere but 127.0.0.1.
    * Every wait is bounded by a deadline; every process started here is stopped on exit,
      also on Ctrl-C or an exception (children run in their own session, so the terminal's
      SIGINT reaches only the benchmark, which then stops them in order).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from postfix_sink import PostfixSink

from courriel.errors import ListenerError

__all__ = ["BENCH_DIR", "aiosmtpd_server", "courriel_server", "free_port", "postfix_server"]

BENCH_DIR = Path(__file__).resolve().parent
PASSWORD = "bench-password-not-secret\n"  # the mailbox's password; the benchmark never logs in


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (for servers that need one given)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _drain(stream: IO[bytes], log: IO[bytes]) -> None:
    # Keeps the child's stdout pipe from filling up once it is ready; ends at end of file.
    for line in iter(stream.readline, b""):
        log.write(line)
        log.flush()


def _start_drain(proc: subprocess.Popen[bytes], log: IO[bytes]) -> threading.Thread:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    thread = threading.Thread(target=_drain, args=(proc.stdout, log), daemon=True)
    thread.start()
    return thread


def _wait_ready(
    proc: subprocess.Popen[bytes], marker: bytes, log: IO[bytes], timeout: float
) -> str:
    """Copy the child's stdout to ``log`` until a line holds ``marker``; return that line."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    buffer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if readable else b""
        log.write(chunk)
        log.flush()
        buffer += chunk
        for line in buffer.splitlines():
            if marker in line:
                return line.decode("utf-8", "replace")
        if readable and not chunk:
            break  # end of file: the child closed stdout
    raise ListenerError(
        f"server did not print {marker.decode()!r} in {timeout:.0f}s; see {log.name}"
    )


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


@contextmanager
def _process(
    argv: Sequence[str], log_path: Path, marker: bytes, timeout: float = 60.0
) -> Iterator[str]:
    """Run ``argv`` until the block ends; yield its ready line. Stderr goes to the log."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
        drain: threading.Thread | None = None
        try:
            line = _wait_ready(proc, marker, log, timeout)
            drain = _start_drain(proc, log)
            yield line
        finally:
            _stop(proc)
            if drain is not None:
                drain.join(10.0)


def _courriel(binary: Path, data_dir: Path, settings: Mapping[str, str]) -> list[str]:
    argv = [str(binary), "--data-dir", str(data_dir)]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def _seed(base: list[str], args: list[str], stdin: str = "") -> None:
    result = subprocess.run(
        base + args, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    # A PostgreSQL database given with --database-url may hold the domain from a past run.
    if result.returncode != 0 and "exist" not in result.stderr.lower():
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise ListenerError(f"courriel {' '.join(args[:2])} failed: {last}")


@contextmanager
def courriel_server(binary: Path, tmp: Path, database_url: str | None) -> Iterator[int]:
    """Seed a data folder (domain bench.test, user@bench.test) and run ``courriel serve``."""
    data_dir = tmp / "courriel-data"
    port = free_port()
    settings = {"database.url": database_url} if database_url else {}
    base = _courriel(binary, data_dir, settings)
    _seed(base, ["domain", "add", "bench.test"])
    _seed(base, ["account", "add", "user@bench.test", "--password-stdin"], PASSWORD)
    listen = {
        "listen.smtp": f"127.0.0.1:{port}",
        "listen.submission": "",
        "listen.submissions": "",
        "listen.pop3": "",
        "listen.pop3s": "",
    }
    argv = [*_courriel(binary, data_dir, {**settings, **listen}), "serve"]
    with _process(argv, tmp / "courriel.log", b"ready"):
        yield port


@contextmanager
def aiosmtpd_server(tmp: Path) -> Iterator[int]:
    """Run the aiosmtpd baseline (fsync per message) on a free port."""
    argv = [sys.executable, str(BENCH_DIR / "_aiosmtpd_sink.py"), "--dir", str(tmp / "aiosmtpd")]
    with _process([*argv, "--port", "0"], tmp / "aiosmtpd.log", b"ready") as line:
        yield int(line.rpartition(":")[2])


@contextmanager
def postfix_server(tmp: Path, clients: int) -> Iterator[int]:
    """Run a private Postfix instance (see ``postfix_sink.py``) on a free port."""
    sink = PostfixSink(tmp / "postfix", free_port(), processes=clients + 20)
    with sink:
        yield sink.port
