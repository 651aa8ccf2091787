"""Dashboard Campaigns: the list, the wizard (live count, bad input), progress, state
changes, the report; every route's roles and CSRF. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from tests.integration.web.dashboard.conftest import Users

from courriel.marketing.campaigns.audience import count_audience
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.lists import create_list, subscribe
from courriel.marketing.suppression import suppress
from courriel.marketing.templates.service import add_template
from courriel.marketing.types import ConsentChange, ContactData
from courriel.storage.models.campaigns import campaigns
from courriel.storage.models.mail import domains
from courriel.web.app import WebServices

ADDRESS = "1 Rue de la Paix, Paris"


@pytest.fixture
def services(services: WebServices) -> WebServices:
    """The dashboard's services with a postal address, so campaigns may be sent."""
    return replace(services, shop_address=ADDRESS)


@dataclass
class Shop:
    list_id: int
    other_list_id: int
    template_id: int


@pytest.fixture
async def shop(services: WebServices) -> Shop:
    """A domain, a template, 4 contacts on "newsletter" (one suppressed), 1 on "vip"."""
    now = services.clock()
    async with services.db.write() as conn:
        await conn.execute(insert(domains).values(name="shop.test", created_at=now))
        template = await add_template(
            conn, name="sale", kind="html", source="<p>Hi {{ contact.first_name }}</p>", now=now
        )
        newsletter = await create_list(conn, name="newsletter", now=now)
        vip = await create_list(conn, name="vip", now=now)
        for index, list_id in enumerate([newsletter.id] * 4 + [vip.id]):
            contact = await upsert_contact(
                conn, ContactData(email=f"c{index}@customer.test"), now=now
            )
            await subscribe(conn, list_id, contact, method="api", now=now)
            consent = ConsentChange(channel="email", status="subscribed", method="api")
            await set_consent(conn, contact, consent, now=now)
        await suppress(conn, kind="address", value="c0@customer.test", reason="bounce", now=now)
    return Shop(list_id=newsletter.id, other_list_id=vip.id, template_id=template.id)


def _form(shop: Shop, **extra: str) -> dict[str, str]:
    return {
        "name": "Spring sale",
        f"list:{shop.list_id}": "on",
        "template_a": str(shop.template_id),
        "subject_a": "Spring is here",
        "from_address": "news@shop.test",
        "when": "now",
        **extra,
    }


def _alert(html: str) -> str:
    """The text of the page's error notice."""
    found = re.search(r'class="notice error" role="alert"[^>]*>([^<]*)<', html)
    assert found, "no error notice"
    return found.group(1).replace("&#39;", "'")


async def _campaign_count(services: WebServices) -> int:
    async with services.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(campaigns)) or 0)


async def test_wizard_creates_and_schedules_a_campaign(users: Users, shop: Shop) -> None:
    browser = await users.login("marketer")
    form = await browser.get("/campaigns/new")
    assert form.status_code == 200
    assert f'name="list:{shop.list_id}"' in form.text and "sale (html)" in form.text
    for field in ("name", "template_a", "subject_a", "from_address", "ab_sample", "at"):
        assert f'<label for="{field}"' in form.text
    made = await browser.post("/campaigns/new", _form(shop))
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    assert re.fullmatch(r"/campaigns/\d+", location)
    detail = await browser.get(location)
    assert detail.status_code == 200
    assert "Spring sale" in detail.text and "scheduled" in detail.text
    assert 'hx-trigger="every 2s"' in detail.text  # polls while the sender has work
    assert 'id="campaign-report-data"' in detail.text
    listing = await browser.get("/campaigns")
    assert listing.status_code == 200 and f'href="{location}"' in listing.text


async def test_live_count_is_the_freeze_count(users: Users, shop: Shop) -> None:
    browser = await users.login("viewer")
    one = await browser.get(f"/campaigns/audience-count?list:{shop.list_id}=on")
    assert one.status_code == 200
    assert "<strong>3</strong> contacts" in one.text  # 4 members, one suppressed
    both = await browser.get(
        f"/campaigns/audience-count?list:{shop.list_id}=on&list:{shop.other_list_id}=on"
    )
    assert "<strong>4</strong> contacts" in both.text
    async with users.services.db.read() as conn:
        assert (
            await count_audience(
                conn,
                [("list", shop.list_id), ("list", shop.other_list_id)],
                now=users.services.clock(),
            )
            == 4
        )
    none = await browser.get("/campaigns/audience-count")
    assert "Choose lists or segments" in none.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"list:%(list)s": ""}, "choose at least one list or segment"),
        ({"template_a": ""}, "choose a template"),
        ({"template_a": "99999"}, "no template 99999"),
        ({"from_address": "news@elsewhere.test"}, "is not one of courriel"),
        ({"subject_a": ""}, "subject is 1 to 998 characters"),
        ({"ab": "on", "ab_sample": "0", "subject_b": "Other"}, "the A/B sample is 1 to 99 percent"),
        ({"ab": "on"}, "variant B must differ from A"),
        ({"when": "at", "at": "next week"}, "give the date and time to send"),
    ],
)
async def test_bad_input_re_renders_the_form_with_the_message(
    users: Users, shop: Shop, change: dict[str, str], message: str
) -> None:
    browser = await users.login("marketer")
    form = _form(shop)
    for raw, value in change.items():
        key = raw % {"list": shop.list_id}
        if value:
            form[key] = value
        else:
            form.pop(key, None)
    response = await browser.post("/campaigns/new", form)
    assert response.status_code == 422
    assert message in _alert(response.text)
    assert 'value="Spring sale"' in response.text  # what was typed stays
    assert await _campaign_count(users.services) == 0


async def test_no_shop_address_refuses_sending_and_keeps_no_draft(
    services: WebServices, shop: Shop
) -> None:
    bare = Users(replace(services, shop_address=""))
    try:
        browser = await bare.login("marketer")
        form = await browser.get("/campaigns/new")
        assert "shop.address" in form.text
        refused = await browser.post("/campaigns/new", _form(shop))
        assert refused.status_code == 422
        assert "set shop.address first" in refused.text
        assert await _campaign_count(services) == 0
        draft = await browser.post("/campaigns/new", _form(shop, when="draft"))
        assert draft.status_code == 303
        send = await browser.post(f"{draft.headers['location']}/send")
        assert send.status_code == 422 and "set shop.address first" in send.text
    finally:
        await bare.close()


async def test_a_b_test_and_a_later_time(users: Users, shop: Shop) -> None:
    browser = await users.login("marketer")
    form = _form(
        shop,
        ab="on",
        subject_b="Spring is HERE",
        ab_sample="30",
        ab_wait_hours="2",
        ab_metric="revenue",
        when="at",
        at="2030-01-02T08:00",
    )
    made = await browser.post("/campaigns/new", form)
    assert made.status_code == 303, made.text
    detail = await browser.get(made.headers["location"])
    assert "Variant B" in detail.text and "Spring is HERE" in detail.text
    assert "30 % sample, winner by revenue after 2.0 h" in detail.text
    assert "2030-01-02 08:00 UTC" in detail.text


async def test_pause_resume_cancel_and_progress(users: Users, shop: Shop) -> None:
    browser = await users.login("marketer")
    location = (await browser.post("/campaigns/new", _form(shop))).headers["location"]
    progress = await browser.get(
        f"{location}/progress?shown=scheduled", headers={"HX-Request": "true"}
    )
    assert progress.status_code == 200 and "hx-refresh" not in progress.headers
    assert 'data-stat="sent">0<' in progress.text and "<html" not in progress.text
    assert (await browser.post(f"{location}/pause")).status_code == 303
    changed = await browser.get(
        f"{location}/progress?shown=scheduled", headers={"HX-Request": "true"}
    )
    assert changed.headers["hx-refresh"] == "true"  # the page redraws its buttons
    assert "every 2s" not in changed.text  # a paused campaign is not polled
    again = await browser.post(f"{location}/pause")
    assert again.status_code == 422 and "cannot pause a campaign that is paused" in again.text
    assert (await browser.post(f"{location}/resume")).status_code == 303
    page = await browser.get(location)
    assert 'data-confirm="Cancel this campaign' in page.text
    assert (await browser.post(f"{location}/cancel")).status_code == 303
    assert "cancelled" in (await browser.get(location)).text


async def test_unknown_campaign_is_a_404_page(users: Users) -> None:
    browser = await users.login("marketer")
    for response in (
        await browser.get("/campaigns/999"),
        await browser.get("/campaigns/999/progress"),
        await browser.post("/campaigns/999/pause"),
    ):
        assert response.status_code == 404 and "no campaign 999" in response.text.lower()


async def _draft(users: Users, shop: Shop) -> str:
    owner = await users.login("owner")
    made = await owner.post("/campaigns/new", _form(shop, when="draft"))
    assert made.status_code == 303
    return str(made.headers["location"])


async def test_roles_on_every_route(users: Users, shop: Shop) -> None:
    location = await _draft(users, shop)
    reads = [
        "/campaigns",
        "/campaigns/new",
        location,
        f"{location}/progress",
        f"/campaigns/audience-count?list:{shop.list_id}=on",
    ]
    for role in ("viewer", "marketer", "owner"):
        browser = await users.login(role)
        for url in reads:
            assert (await browser.get(url)).status_code == 200, (role, url)
    viewer = await users.login("viewer")
    assert "New campaign" not in (await viewer.get("/campaigns")).text
    assert "Cancel campaign" not in (await viewer.get(location)).text
    writes: list[tuple[str, dict[str, Any]]] = [
        ("/campaigns/new", _form(shop)),
        (f"{location}/send", {}),
        (f"{location}/pause", {}),
        (f"{location}/resume", {}),
        (f"{location}/cancel", {}),
    ]
    for url, data in writes:
        assert (await viewer.post(url, data)).status_code == 403, url
    marketer = await users.login("marketer")
    for url, data in writes:
        no_csrf = await marketer.client.post(url, data=data)
        assert no_csrf.status_code == 403, url
    assert await _campaign_count(users.services) == 1
    assert (await marketer.post(f"{location}/send")).status_code == 303
    anonymous = users.client()
    assert (await anonymous.get("/campaigns")).status_code == 303
