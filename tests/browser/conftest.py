"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (never a
downloaded browser), and storefront pages served on loopback by a second HTTP server.

Without ``/usr/bin/chromium`` the tests skip, except under ``CI=true`` where it is a
failure (.ci/run installs the ``chromium`` package).
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """The system Chromium, or a skip (a failure under CI=true) when it is missing."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: required when CI=true")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Any]:
    """A headless Chromium for one test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            await instance.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


@pytest.fixture
def serve_pages() -> Iterator[Callable[[Path], str]]:
    """Serve a folder on 127.0.0.1 (a storefront of its own origin); returns its origin."""
    servers: list[ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = partial(_QuietHandler, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
