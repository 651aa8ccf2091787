"""The mail-server pages in Chromium: retry a deferred queue item, a domain's records with
the live DNS check, and connecting a shop (its secret shown once).

The server here is the one of ``conftest.dashboard`` plus a resolver that asks a loopback
DNS server (``courriel.testing.dns``), so the domain page's check has answers to show.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from tests.browser.dashboard.conftest import Dashboard
from tests.integration.web.dashboard.server_seed import seed_deferred

from courriel.delivery.queue_admin import show_message
from courriel.dns.resolver import DnsResolver
from courriel.mailstore.passwords import Passwords
from courriel.mailstore.service import MailStore
from courriel.marketing.links import LinkSigner
from courriel.storage.blobs import BlobStore
from courriel.storage.db import Database
from courriel.testing.dns import DnsServer
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app
from courriel.web.server import HttpServer

HOST = "mail.shop.test"


@pytest.fixture
async def dashboard(
    database: Database, blobs: BlobStore, password_hasher: PasswordHasher
) -> AsyncIterator[Dashboard]:
    """The dashboard's server with a mail store, blobs and a loopback DNS resolver."""
    dns = DnsServer({(HOST, "A"): ["127.0.0.1"]})
    await dns.start()
    mailer = RecordingMailer()
    services = WebServices(
        db=database,
        public_url="https://mail.shop.test",
        links=LinkSigner(b"browser-test-key" * 2),
        mailer=mailer,
        clock=lambda: datetime.now(UTC),
        passwords=Passwords(password_hasher),
        mailstore=MailStore(database, blobs, hasher=password_hasher),
        blobs=blobs,
        resolver=DnsResolver(nameservers=[f"127.0.0.1:{dns.port}"], timeout=2.0),
        hostname=HOST,
    )
    server = HttpServer(create_app(services))
    host, port = await server.start("127.0.0.1", 0)
    try:
        board = Dashboard(url=f"http://{host}:{port}", services=services, mailer=mailer)
        board.dns = dns  # type: ignore[attr-defined]
        yield board
    finally:
        await server.stop(grace=1)
        await dns.stop()


async def test_retry_a_deferred_queue_item(browser: Any, dashboard: Dashboard, shot: Any) -> None:
    blobs = dashboard.services.blobs
    assert blobs is not None
    message_id, later = await seed_deferred(dashboard.services.db, blobs)
    page = await dashboard.page(browser, "owner")
    await page.goto(f"{dashboard.url}/server/queue")
    await page.get_by_label("State").select_option("deferred")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(re.compile(r"state=deferred"))
    await shot(page, "queue")
    await page.get_by_role("link", name=str(message_id), exact=True).click()
    await page.get_by_text("451 4.3.0 mailbox busy").first.wait_for()
    before = datetime.now(UTC)
    await page.get_by_role("button", name="Retry now").click()
    await page.get_by_text("1 recipient(s) due now.").wait_for()
    (recipient,) = (await show_message(dashboard.services.db, message_id)).entry.recipients
    assert before <= recipient.next_attempt_at <= datetime.now(UTC) < later - timedelta(minutes=50)
    shown = await page.locator("[data-next-attempt]").get_attribute("data-next-attempt")
    assert shown == recipient.next_attempt_at.isoformat()


async def test_a_domain_with_its_records_and_live_check(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    dns: DnsServer = dashboard.dns  # type: ignore[attr-defined]
    dns.zone = {
        (HOST, "A"): ["127.0.0.1"],
        ("shop.test", "MX"): [f"10 {HOST}."],
        ("shop.test", "TXT"): ['"v=spf1 mx -all"'],
    }
    page = await dashboard.page(browser, "owner")
    await page.goto(f"{dashboard.url}/server/domains")
    await page.get_by_label("Domain name").fill("shop.test")
    await page.get_by_role("button", name="Add domain").click()
    await page.wait_for_url(re.compile(r"/server/domains/shop\.test"))
    await page.get_by_text("v=DMARC1; p=quarantine").wait_for()
    # The htmx fragment replaces "Checking DNS…" with a badge per record.
    await page.locator('#dns-check [data-status="OK"]').first.wait_for()
    statuses = await page.locator("#dns-check [data-status]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.status)"
    )
    assert statuses[:2] == ["OK", "OK"] and set(statuses[2:]) == {"MISSING"}
    await shot(page, "domains")
    # On a phone-sized screen each record is one block: nothing is wider than the screen.
    await page.set_viewport_size({"width": 375, "height": 800})
    widest = await page.locator("main").evaluate("m => m.scrollWidth")
    assert widest <= 375
    await shot(page, "domains-phone")


async def test_connect_a_shop(browser: Any, dashboard: Dashboard, shot: Any) -> None:
    page = await dashboard.page(browser, "owner")
    await page.goto(f"{dashboard.url}/integrations")
    await page.get_by_label("Platform").select_option("woocommerce")
    await page.get_by_label(re.compile(r"^Name")).fill("my-shop")
    await page.get_by_role("button", name="Connect shop").click()
    await page.get_by_text("shown only this once").wait_for()
    url = await page.locator("#hook-url").inner_text()
    assert url == "https://mail.shop.test/hooks/woocommerce/my-shop"
    assert len(await page.locator("#hook-secret").inner_text()) >= 40
    await page.get_by_role("link", name="Back to integrations").click()
    await page.get_by_text("No webhook received yet.").wait_for()
    await shot(page, "integrations")
