"""What dashboard page loads read, whatever the table sizes, and bad input that once gave 500s.

Review of issue 7 (sections 3 and 4): pages that only name lists never count their
members; the campaigns list reads a page's totals in one grouped statement; the queue
page reads one filtered, keyset-paged page; the segment preview reads its 20 members in
one batch; out-of-range ids, deep JSON and infinite durations are 422 pages; the A/B
defaults have one definition. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from tests.integration.web.dashboard.conftest import Users
from tests.integration.web.dashboard.statements import Statements

from courriel.delivery.queue import enqueue
from courriel.errors import InvalidInput
from courriel.marketing.campaigns import service as campaigns
from courriel.marketing.campaigns.recent import campaign_totals
from courriel.marketing.campaigns.report import campaign_report
from courriel.marketing.contacts import get_contacts, upsert_contact
from courriel.marketing.lists import create_list, list_names, subscribe
from courriel.marketing.segments import service as segments
from courriel.marketing.templates.service import add_template
from courriel.marketing.types import ContactData
from courriel.storage.models.campaigns import campaign_stats
from courriel.storage.models.campaigns import campaigns as campaigns_table
from courriel.storage.models.mail import domains
from courriel.web.api.v1.campaigns import AbIn
from courriel.web.app import WebServices
from courriel.web.dashboard import server_queue

TOO_BIG = str(2**63)  # one past the largest 64-bit key


@pytest.fixture
def services(services: WebServices) -> WebServices:
    """The dashboard's services with a postal address, so campaigns may be sent."""
    return replace(services, shop_address="1 Rue de la Paix, Paris")


@dataclass
class Shop:
    list_id: int
    template_id: int


async def _shop(services: WebServices, members: int = 3) -> Shop:
    """A domain, a template, a list "news" with ``members`` subscribed contacts."""
    now = services.clock()
    async with services.db.write() as conn:
        await conn.execute(insert(domains).values(name="shop.test", created_at=now))
        template = await add_template(conn, name="sale", kind="html", source="<p>Hi</p>", now=now)
        news = await create_list(conn, name="news", now=now)
        for index in range(members):
            contact = await upsert_contact(
                conn, ContactData(email=f"c{index:03d}@customer.test"), now=now
            )
            await subscribe(conn, news.id, contact, method="api", now=now)
    return Shop(list_id=news.id, template_id=template.id)


async def _campaigns(services: WebServices, shop: Shop, count: int) -> list[int]:
    made = []
    async with services.db.write() as conn:
        for index in range(count):
            campaign = await campaigns.create_campaign(
                conn,
                name=f"Campaign {index}",
                variants=[("Subject A", shop.template_id), ("Subject B", shop.template_id)],
                audience=[("list", shop.list_id)],
                from_address="news@shop.test",
                ab=campaigns.AB_DEFAULTS,
                now=services.clock(),
            )
            made.append(campaign.id)
    return made


# -- 1. pages that name lists never count their members -------------------------------


async def test_pages_that_name_lists_never_read_list_members(users: Users) -> None:
    shop = await _shop(users.services)
    [campaign_id] = await _campaigns(users.services, shop, 1)
    browser = await users.login("marketer")
    for url in ("/contacts", "/segments/new", "/campaigns/new", f"/campaigns/{campaign_id}"):
        with Statements(users.services.db) as seen:
            response = await browser.get(url)
        assert response.status_code == 200, url
        assert "news" in response.text, url  # the list is still named
        assert seen.touching("list_members") == [], url


async def test_list_names_gives_ids_and_names_by_name(users: Users) -> None:
    now = users.services.clock()
    async with users.services.db.write() as conn:
        zed = await create_list(conn, name="zed", now=now)
        abc = await create_list(conn, name="abc", now=now)
    async with users.services.db.read() as conn:
        with Statements(users.services.db) as seen:
            found = await list_names(conn)
    assert [(item.id, item.name) for item in found] == [(abc.id, "abc"), (zed.id, "zed")]
    assert len(seen) == 1 and seen.touching("list_members") == []


# -- 2. the campaigns list: one grouped read of the page's totals ---------------------


async def test_the_campaigns_list_reads_the_same_statements_for_2_or_12_rows(
    users: Users,
) -> None:
    shop = await _shop(users.services)
    browser = await users.login("viewer")
    sizes = []
    for count in (2, 10):  # 2 campaigns, then 12
        await _campaigns(users.services, shop, count)
        with Statements(users.services.db) as seen:
            response = await browser.get("/campaigns")
        assert response.status_code == 200
        sizes.append(len(seen))
    assert sizes[0] == sizes[1]
    assert response.text.count('href="/campaigns/') >= 12
    assert "campaign_links" not in " ".join(seen.sql)  # the list shows no links


async def test_campaign_totals_sum_the_variants_as_the_report_does(users: Users) -> None:
    shop = await _shop(users.services)
    ids = await _campaigns(users.services, shop, 3)
    async with users.services.db.write() as conn:
        rows = (await conn.execute(select(campaign_stats.c.variant_id))).scalars().all()
        for n, variant_id in enumerate(rows, start=1):
            await conn.execute(
                update(campaign_stats)
                .where(campaign_stats.c.variant_id == variant_id)
                .values(
                    recipients=10 * n,
                    sent=9 * n,
                    delivered=8 * n,
                    opens=7 * n,
                    unique_opens=5 * n,
                    clicks=4 * n,
                    unique_clicks=3 * n,
                    orders=n,
                    revenue_minor=1000 * n,
                )
            )
    async with users.services.db.read() as conn:
        totals = await campaign_totals(conn, [*ids, 999_999])
        for campaign_id in ids:
            assert totals[campaign_id] == (await campaign_report(conn, campaign_id)).total
    assert totals[999_999].sent == 0  # an id without stats has zeros
    browser = await users.login("viewer")
    listed = await browser.get("/campaigns")
    # Campaign 0's variants are rows 1 and 2: 9 + 18 sent.
    assert re.search(r">Campaign 0<.*?<td>27</td>", listed.text, re.S)


# -- 4. bad input is a page with its message, never a 500 -----------------------------


@pytest.mark.parametrize("after", ["abc", TOO_BIG, "-1", "1.5", "²"])
async def test_a_bad_campaigns_cursor_is_an_html_page(users: Users, after: str) -> None:
    browser = await users.login("viewer")
    response = await browser.get("/campaigns", params={"after": after})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "This page link is not valid" in response.text


@pytest.mark.parametrize("ident", [TOO_BIG, "0", "99999999999999999999999", "²"])
async def test_audience_ids_no_row_can_have_are_unknown(users: Users, ident: str) -> None:
    shop = await _shop(users.services)
    viewer = await users.login("viewer")
    count = await viewer.get("/campaigns/audience-count", params={f"list:{ident}": "on"})
    assert count.status_code == 422 and "no list" in count.text
    marketer = await users.login("marketer")
    form = await marketer.get("/campaigns/new", params={f"segment:{ident}": "on"})
    assert form.status_code == 422 and "no segment" in form.text
    made = await marketer.post(
        "/campaigns/new",
        {
            "name": "Out of range",
            f"list:{ident}": "on",
            "template_a": str(shop.template_id),
            "subject_a": "Hello",
            "from_address": "news@shop.test",
            "when": "draft",
        },
    )
    assert made.status_code == 422 and "no list" in made.text
    async with users.services.db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(campaigns_table)) == 0


@pytest.mark.parametrize("hours", ["inf", "1e400", "nan", "-inf", "-1", "100000", "1e300"])
async def test_an_ab_duration_must_be_finite_and_bounded(users: Users, hours: str) -> None:
    shop = await _shop(users.services)
    browser = await users.login("marketer")
    response = await browser.post(
        "/campaigns/new",
        {
            "name": "A/B",
            f"list:{shop.list_id}": "on",
            "template_a": str(shop.template_id),
            "subject_a": "Hello",
            "subject_b": "Hi",
            "ab": "on",
            "ab_wait_hours": hours,
            "from_address": "news@shop.test",
            "when": "draft",
        },
    )
    assert response.status_code == 422
    assert "the test duration is a number of hours, 0 to 720" in response.text
    assert 'id="ab_wait_hours"' in response.text and hours in response.text  # input kept


@pytest.mark.parametrize("field", ["template_a", "ab_sample"])
async def test_huge_numbers_in_the_wizard_are_refused(users: Users, field: str) -> None:
    shop = await _shop(users.services)
    browser = await users.login("marketer")
    form = {
        "name": "Big",
        f"list:{shop.list_id}": "on",
        "template_a": str(shop.template_id),
        "subject_a": "Hello",
        "subject_b": "Hi",
        "ab": "on",
        "from_address": "news@shop.test",
        "when": "draft",
        field: TOO_BIG,
    }
    response = await browser.post("/campaigns/new", form)
    assert response.status_code == 422
    assert f'id="{field}"' in response.text


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


async def test_deep_segment_json_is_a_422_in_the_preview_and_the_form(users: Users) -> None:
    viewer = await users.login("viewer")
    preview = await viewer.get("/segments/preview", params={"definition": _deep(3000)})
    assert preview.status_code == 422
    assert "nested too deep" in preview.text and 'data-field=""' in preview.text
    marketer = await users.login("marketer")
    saved = await marketer.post("/segments", {"name": "Deep", "definition": _deep(100_000)})
    assert saved.status_code == 422
    assert "nested too deep" in saved.text and 'data-field="definition"' in saved.text
    null = await marketer.post("/segments", {"name": "Null", "definition": "null"})
    assert null.status_code == 422 and "has no definition" in null.text
    assert await segments.list(users.services.db) == []


# -- 5. the segment preview reads its members in one batch and links them -------------


async def test_the_preview_reads_its_members_in_one_batch(users: Users) -> None:
    now = users.services.clock()
    browser = await users.login("viewer")
    everyone = json.dumps({"kind": "all", "conditions": []})
    sizes = []
    for total in (2, 30):
        async with users.services.db.write() as conn:
            for index in range(total):
                await upsert_contact(
                    conn, ContactData(email=f"p{total}-{index}@shop.test"), now=now
                )
        with Statements(users.services.db) as seen:
            response = await browser.get("/segments/preview", params={"definition": everyone})
        assert response.status_code == 200
        sizes.append(len(seen))
    assert sizes[0] == sizes[1]
    links = re.findall(r'<a href="/contacts/(\d+)">([^<]+)</a>', response.text)
    assert len(links) == 20
    async with users.services.db.read() as conn:
        shown = await get_contacts(conn, [int(ident) for ident, _ in links])
    assert [c.email for c in shown] == [email for _, email in links]


async def test_get_contacts_keeps_the_order_asked_and_skips_unknown_ids(users: Users) -> None:
    now = users.services.clock()
    async with users.services.db.write() as conn:
        ann = await upsert_contact(conn, ContactData(email="ann@shop.test", tags=("vip",)), now=now)
        bob = await upsert_contact(conn, ContactData(email="bob@shop.test"), now=now)
    async with users.services.db.read() as conn:
        found = await get_contacts(conn, [bob, 424242, ann, bob])
        assert await get_contacts(conn, []) == []
    assert [(c.id, c.email, c.tags) for c in found] == [
        (bob, "bob@shop.test", ()),
        (ann, "ann@shop.test", ("vip",)),
    ]


# -- 6. one definition of the A/B defaults --------------------------------------------


async def test_empty_ab_fields_take_the_service_defaults(users: Users) -> None:
    shop = await _shop(users.services)
    browser = await users.login("marketer")
    form = await browser.get("/campaigns/new")
    defaults = campaigns.AB_DEFAULTS
    assert f'name="ab_sample" type="number" min="1" max="99" value="{defaults.sample_percent}"' in (
        form.text
    )
    made = await browser.post(
        "/campaigns/new",
        {
            "name": "A/B",
            f"list:{shop.list_id}": "on",
            "template_a": str(shop.template_id),
            "subject_a": "Hello",
            "subject_b": "Hi",
            "ab": "on",
            "ab_sample": "",
            "ab_wait_hours": "",
            "from_address": "news@shop.test",
            "when": "draft",
        },
    )
    assert made.status_code == 303
    async with users.services.db.read() as conn:
        [campaign] = await campaigns.list_campaigns(conn)
    assert campaign.ab == defaults
    api: Any = AbIn()
    assert (api.sample_percent, api.wait_seconds, api.metric) == (
        defaults.sample_percent,
        defaults.wait_seconds,
        defaults.metric,
    )


async def test_the_service_refuses_an_ab_wait_past_its_bound(users: Users) -> None:
    shop = await _shop(users.services)
    too_long = replace(campaigns.AB_DEFAULTS, wait_seconds=campaigns.AB_MAX_WAIT_SECONDS + 1)
    with pytest.raises(InvalidInput, match="0 to 30 days") as refused:
        async with users.services.db.write() as conn:
            await campaigns.create_campaign(
                conn,
                name="Forever",
                variants=[("A", shop.template_id), ("B", shop.template_id)],
                audience=[("list", shop.list_id)],
                from_address="news@shop.test",
                ab=too_long,
                now=users.services.clock(),
            )
    assert refused.value.field == "ab/wait_seconds"


# -- 3. the queue page reads one filtered page, never the whole queue -----------------


async def _enqueue(services: WebServices, recipients: list[str], count: int) -> list[int]:
    made = []
    async with services.db.write() as conn:
        for _ in range(count):
            made.append(
                await enqueue(
                    conn,
                    sender="shop@shop.test",
                    recipients=recipients,
                    blob_key="ab" * 32,
                    size=10,
                    trace_header=b"Received: test\r\n",
                )
            )
    return made


async def test_the_queue_page_reads_the_same_for_3_or_33_messages(users: Users) -> None:
    owner = await users.login("owner")
    sizes = []
    for count in (3, 30):
        await _enqueue(users.services, ["ann@gmail.test"], count)
        with Statements(users.services.db) as seen:
            response = await owner.get("/server/queue")
        assert response.status_code == 200
        sizes.append(len(seen.selects()))
        assert seen.touching("trace_header") == []
    assert sizes[0] == sizes[1]
    assert response.text.count("ann@gmail.test") == 33


async def test_the_queue_page_pages_by_id_and_keeps_its_filters(
    users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_queue, "LIMIT", 2)
    gmail = await _enqueue(users.services, ["ann@gmail.test"], 3)
    await _enqueue(users.services, ["bob@remote.test"], 2)
    owner = await users.login("owner")
    first = await owner.get("/server/queue", params={"domain": "gmail.test", "state": "queued"})
    shown = [int(i) for i in re.findall(r'<td><a href="/server/queue/(\d+)">', first.text)]
    assert shown == gmail[:2]
    following = re.search(r'<a href="([^"]+)">Next messages', first.text)
    assert following is not None
    url = following.group(1).replace("&amp;", "&")
    assert url == f"/server/queue?state=queued&domain=gmail.test&after={gmail[1]}"
    second = await owner.get(url)
    assert re.findall(r'<td><a href="/server/queue/(\d+)">', second.text) == [str(gmail[2])]
    assert "Next messages" not in second.text
    assert 'href="/server/queue?state=queued&amp;domain=gmail.test">First page' in second.text


@pytest.mark.parametrize("after", ["abc", TOO_BIG, "-1"])
async def test_a_bad_queue_cursor_is_an_html_page(users: Users, after: str) -> None:
    owner = await users.login("owner")
    response = await owner.get("/server/queue", params={"after": after})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "This page link is not valid" in response.text
