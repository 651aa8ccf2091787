"""Run ``courriel serve`` as a subprocess on loopback and learn its ports from its output.

Used by the end-to-end and crash tests, and by benchmarks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from courriel.testing.node import loopback_overrides

__all__ = ["ServeProcess", "courriel_command", "run_cli"]

_LISTENING = re.compile(r"listening on \[?([0-9a-fA-F:.]+)\]?:(\d+)\s+\(listen\.(\w+)\)")


def courriel_command(data_dir: Path, overrides: Mapping[str, str]) -> list[str]:
    """The argument list of ``courriel --data-dir D --set k=v ...`` for this interpreter."""
    args = [sys.executable, "-m", "courriel", "--data-dir", str(data_dir)]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    return args


def run_cli(
    data_dir: Path, args: Sequence[str], *, stdin: str = "", database_url: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run one admin command against the data folder (blocking)."""
    overrides = {"database.url": database_url} if database_url else {}
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [*courriel_command(data_dir, overrides), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(),
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(slots=True)
class ServeProcess:
    """A ``courriel serve`` subprocess; ``ports`` is filled once it printed "ready"."""

    data_dir: Path
    database_url: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    roles: str = ""  # "delivery" runs `serve --roles delivery`; "" runs every role
    process: subprocess.Popen[str] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it is ready (or raise with its output)."""
        overrides = {**loopback_overrides(self.database_url), **self.extra}
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                *courriel_command(self.data_dir, overrides),
                "serve",
                *(["--roles", self.roles] if self.roles else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(ready,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("courriel serve did not start:\n" + "".join(self.output))

    def _read(self, ready: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = _LISTENING.search(line)
            if match:
                self.ports[match.group(3)] = int(match.group(2))
            if line.startswith("courriel: ready"):
                ready.set()

    def terminate(self, timeout: float = 30.0) -> int:
        """Send SIGTERM and wait; return the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(5)
        return status

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (the crash test's point)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if self._reader is not None:
            self._reader.join(5)
