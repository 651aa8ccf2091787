"""Fixtures of the dashboard's browser tests: the app on a loopback port, logged-in pages,
screenshots.

- ``dashboard`` (:class:`Dashboard`): courriel's HTTP server over the test database, with a
  real delivery-less :class:`RecordingMailer`, a cheap password hasher and a mail store;
  ``await dashboard.page(browser, "owner")`` makes a user of that role, logs in through the
  login form like a person, and returns the Playwright page (1280x800).
- ``shot(page, name)``: a full-page PNG under ``artifacts/<test name>/<name>.png`` (every
  test leaves its screenshots there); when ``COURRIEL_SCREENSHOTS`` names a folder (e.g.
  ``docs/screenshots``), also ``<folder>/<name>.png`` (how the README's pictures are made).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from courriel.mailstore.passwords import Passwords
from courriel.mailstore.service import MailStore
from courriel.marketing.links import LinkSigner
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app
from courriel.web.dashboard.admins import create_admin
from courriel.web.dashboard.render import assets_ok
from courriel.web.server import HttpServer

PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"


@dataclass
class Dashboard:
    url: str
    services: WebServices
    mailer: RecordingMailer
    users: int = 0

    async def add_user(self, role: str) -> str:
        self.users += 1
        email = f"{role}{self.users}@shop.test"
        await create_admin(
            self.services.db,
            self.services.passwords,
            email=email,
            password=PASSWORD,
            role=role,
            now=self.services.clock(),
        )
        return email

    async def page(self, browser: Any, role: str = "owner", *, width: int = 1280) -> Any:
        """A new browser page logged in as a new user of ``role`` (through the form)."""
        email = await self.add_user(role)
        context = await browser.new_context(viewport={"width": width, "height": 800})
        page = await context.new_page()
        await page.goto(f"{self.url}/login")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(re.compile(r"^(?!.*/login).*$"))
        return page


@pytest.fixture
def db_url(sqlite_template: Any, tmp_path: Path) -> str:
    """Browser tests run on SQLite only: the HTTP tests cover both engines."""
    return str(sqlite_template.new_database(tmp_path))


@pytest.fixture
async def dashboard(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> AsyncIterator[Dashboard]:
    """courriel's HTTP server (dashboard included) on a loopback port.

    Without the vendored browser libraries (tools/build_assets.py: Node.js and npm) the
    tests skip, except under ``CI=true`` where that is a failure.
    """
    if not assets_ok():
        reason = "dashboard assets missing: run python3 tools/build_assets.py (needs npm)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: required when CI=true")
        pytest.skip(reason)
    mailer = RecordingMailer()
    services = WebServices(
        db=database,
        public_url="http://127.0.0.1",
        links=LinkSigner(b"browser-test-key" * 2),
        mailer=mailer,
        clock=lambda: datetime.now(UTC),
        shop_name="Test shop",
        shop_address="1 Test street, Testville",
        passwords=Passwords(password_hasher),
        mailstore=MailStore(database, blobs, hasher=password_hasher),
        blobs=blobs,
        hostname="mail.shop.test",
    )
    server = HttpServer(create_app(services))
    host, port = await server.start("127.0.0.1", 0)
    yield Dashboard(url=f"http://{host}:{port}", services=services, mailer=mailer)
    await server.stop(grace=1)


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Awaitable[Path]]:
    """Save a full-page screenshot of ``page`` as ``name``.png (see the module docstring)."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    async def take(page: Any, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        extra = os.environ.get("COURRIEL_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            (Path(extra) / f"{name}.png").write_bytes(path.read_bytes())
        return path

    return take
