"""Issue 7: send a campaign to local mailboxes from the dashboard and open its report.

The wizard is filled in Chromium (the live count answers 3); after "Create campaign" the
test runs the campaign sender itself, wired as ``courriel serve``'s delivery role wires it
(real renderer, router, group committer and mail store: copies are stored in the local
accounts' INBOX and counted delivered in the same transaction), while the page polls its
progress; the page then redraws as sent and its report says sent = 3, delivered = 3.
"""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime
from typing import Any

from tests.browser.dashboard.conftest import Dashboard

from courriel.app import OriginatingMailer
from courriel.delivery.committer import GroupCommitter
from courriel.delivery.router import Router
from courriel.marketing.campaigns.feedback import feedback_address_check, local_delivered_recorder
from courriel.marketing.campaigns.render import renderer_factory
from courriel.marketing.campaigns.sender import CampaignSender, SenderSettings
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.links import LinkSigner
from courriel.marketing.lists import create_list, subscribe
from courriel.marketing.templates.service import add_template
from courriel.marketing.types import ConsentChange, ContactData
from courriel.outbound import Originator

PEOPLE = ("ana@shop.test", "ben@shop.test", "cleo@shop.test")
VERP_KEY = b"browser-verp-key" * 2
TEMPLATE = (
    '<p>Hello {{ contact.first_name }}</p><p><a href="https://shop.test/spring">Spring</a></p>'
)


async def _seed(dashboard: Dashboard) -> None:
    services = dashboard.services
    assert services.mailstore is not None
    await services.mailstore.add_domain("shop.test")
    now = datetime.now(UTC)
    async with services.db.write() as conn:
        await add_template(conn, name="spring", kind="html", source=TEMPLATE, now=now)
        newsletter = await create_list(conn, name="newsletter", now=now)
        for address in PEOPLE:
            contact = await upsert_contact(
                conn, ContactData(email=address, first_name=address.split("@")[0]), now=now
            )
            await subscribe(conn, newsletter.id, contact, method="api", now=now)
            consent = ConsentChange(channel="email", status="subscribed", method="api")
            await set_consent(conn, contact, consent, now=now)
    for address in PEOPLE:
        await services.mailstore.add_account(address, "mailbox-password-1")


async def _send(dashboard: Dashboard) -> None:
    """What the delivery role of ``courriel serve`` does, until no campaign has work."""
    services = dashboard.services
    assert services.mailstore is not None and services.blobs is not None
    committer = GroupCommitter(
        services.db, services.mailstore, on_local_delivered=local_delivered_recorder(VERP_KEY)
    )
    router = Router(
        services.mailstore,
        services.blobs,
        committer,
        is_feedback_address=feedback_address_check(VERP_KEY),
    )
    shop = {"name": "Test shop", "url": "https://shop.test", "address": services.shop_address}
    sender = CampaignSender(
        services.db,
        OriginatingMailer(Originator(router, "mail.shop.test")),
        renderer_factory(shop),
        None,
        Links(LinkSigner(b"browser-test-key" * 2), dashboard.url),
        VERP_KEY,
        SenderSettings(
            concurrency=2,
            batch=10,
            feedback_sender="mail.shop.test",
            shop_name="Test shop",
            shop_address=services.shop_address,
        ),
        lambda: datetime.now(UTC),
    )
    try:
        for _ in range(20):
            if not await sender.step_all():
                break
    finally:
        await committer.close()


async def _inbox(dashboard: Dashboard, address: str) -> list[bytes]:
    store = dashboard.services.mailstore
    assert store is not None
    drop = await store.open_maildrop(await store.principal(address))
    try:
        return [await drop.read(m.message_id) for m in drop.messages]
    finally:
        await drop.release()


async def test_send_a_campaign_to_local_mailboxes_and_open_its_report(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/campaigns/new")
    await page.get_by_label("Campaign name").fill("Spring sale")
    await page.get_by_label("newsletter").check()
    await page.locator("#audience-count").get_by_text("3", exact=True).wait_for()
    await page.get_by_label("Template", exact=True).select_option(label="spring (html)")
    await page.get_by_label("Subject", exact=True).fill("Spring is here, {{ contact.first_name }}")
    await page.get_by_label("From address").fill("news@shop.test")
    await page.get_by_label("From name").fill("Test shop")
    await page.get_by_label("Send now").check()
    await shot(page, "campaign-wizard")
    await page.get_by_role("button", name="Create campaign").click()
    await page.wait_for_url(re.compile(r"/campaigns/\d+$"))
    await page.get_by_text("scheduled").first.wait_for()

    await _send(dashboard)

    # The page polls every 2 s and redraws itself once the status changed.
    sent = page.locator('[data-report="sent"]')
    await page.wait_for_function(
        "() => document.querySelector('[data-report=\"sent\"]').textContent.trim() === '3'",
        timeout=15_000,
    )
    assert (await sent.text_content() or "").strip() == "3"
    assert (await page.locator('[data-report="delivered"]').text_content() or "").strip() == "3"
    await page.locator("#funnel-chart").wait_for()
    await shot(page, "campaign-report")
    # A phone-sized screen: the page fits its width (tables scroll inside .table-wrap).
    await page.set_viewport_size({"width": 375, "height": 800})
    # (Chart.js redraws its canvas to the new width on its resize observer.)
    await page.wait_for_function("() => document.documentElement.scrollWidth <= 375")
    await shot(page, "campaign-report-phone")

    for address in PEOPLE:
        [raw] = await _inbox(dashboard, address)
        message = email.message_from_bytes(raw)
        name = address.split("@")[0]
        assert message["Subject"] == f"Spring is here, {name}"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
