"""``GET /v/<token>``: a recipient's campaign copy in a browser, as the sender built it.

The page is the HTML part of the copy the sender's own code path builds (personalised,
recommendations for that contact, tracked links, CAN-SPAM footer), without the open pixel:
viewing in a browser is never an open. Bad tokens get 400, copies whose rows are gone and
transactional messages (whose data is not kept) a 404 page.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import delete, insert, select, update
from tests.integration.marketing.campaigns_tracking.seed import (
    T0,
    seed_campaign,
    seed_transactional,
    stats_row,
)

from courriel.marketing.campaigns.copies import (
    RECIPIENT_COLUMNS,
    CopyJob,
    SenderSettings,
    load_renderer,
    render_copy,
)
from courriel.marketing.campaigns.render import renderer_factory
from courriel.marketing.campaigns.service import get_campaign
from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.recommend import Recommender
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_recipients, campaigns, templates
from courriel.storage.models.marketing import contacts, events, products
from courriel.web.app import WebServices

SHOP = {"name": "Tea Shop", "address": "1 Rue du Thé\n75001 Paris", "url": "https://shop.test"}
TEMPLATE = (
    "<html><body><p>Hello {{ contact.first_name | default('there') }}</p>"
    "{% for p in recommendations('recently_viewed', 3) %}"
    '<a href="{{ p.url }}">{{ p.title }}</a>{% endfor %}'
    '<a href="https://shop.test/sale">Sale</a>'
    '<a href="{{ view_in_browser_url }}">View in browser</a></body></html>'
)


@pytest.fixture
def services(services: WebServices) -> WebServices:
    return replace(
        services,
        shop_name=SHOP["name"],
        shop_address=SHOP["address"],
        renderer_factory=renderer_factory(SHOP),
        recommender=Recommender(services.db, services.clock),
    )


async def _seed(database: Database) -> tuple[Ref, int]:
    seeded = await seed_campaign(database, ["ann@example.com"])
    contact_id = seeded.contacts["ann@example.com"]
    async with database.write() as conn:
        await conn.execute(update(templates).values(html=TEMPLATE))
        await conn.execute(
            update(contacts).where(contacts.c.id == contact_id).values(first_name="Ann")
        )
        await conn.execute(
            insert(products).values(
                external_id="p7",
                title="Green Tea",
                url="https://shop.test/p/green-tea",
                status="active",
                created_at=T0,
                updated_at=T0,
            )
        )
        await conn.execute(
            insert(events).values(
                contact_id=contact_id,
                name="Viewed Product",
                properties={"ProductID": "p7"},
                occurred_at=T0,
                source="tracker",
            )
        )
    return seeded.refs["ann@example.com"], seeded.campaign_id


def _view_path(services: WebServices, ref: Ref) -> str:
    url = Links(services.links, services.public_url).view_url(ref)
    return url.removeprefix(services.public_url)


async def _as_sent(services: WebServices, ref: Ref) -> str:
    """The HTML part of the copy the sender would mail now (open pixel on)."""
    links = Links(services.links, services.public_url)
    assert services.renderer_factory is not None and services.recommender is not None
    async with services.db.read() as conn:
        row = (
            await conn.execute(
                select(*RECIPIENT_COLUMNS, campaign_recipients.c.campaign_id)
                .join(contacts, contacts.c.id == campaign_recipients.c.contact_id)
                .where(campaign_recipients.c.id == ref.id)
            )
        ).one()
        campaign = await get_campaign(conn, int(row.campaign_id))
        variant = campaign.variants[0]
        renderer = await load_renderer(conn, services.renderer_factory, campaign, variant)
        book = await services.recommender.prefetch(
            [int(row.contact_id)], renderer.recommendation_calls, conn=conn
        )
    job = CopyJob(
        campaign=campaign,
        variant=variant,
        ref=ref,
        row=row,
        recommend=book.for_contact(int(row.contact_id)),
    )
    settings = SenderSettings(shop_name=SHOP["name"], shop_address=SHOP["address"])
    copy = render_copy(
        job, renderer, links=links, verp_key=b"v" * 32, settings=settings, now=services.clock()
    )
    parsed = email.message_from_bytes(copy.message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    body = parsed.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


async def test_view_is_the_sent_copy_without_the_pixel(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    ref, _campaign_id = await _seed(database)
    response = await client.get(_view_path(services, ref))
    assert response.status_code == 200
    page = response.text
    links = Links(services.links, services.public_url)
    assert "Hello Ann" in page
    assert "Green Tea" in page  # recommendations for this contact
    assert links.click_url(ref, "https://shop.test/sale") in page  # tracked, as in the mail
    assert "https://shop.test/sale" not in page.replace(links.click_url(ref, "x"), "")
    assert "75001 Paris" in page and links.unsubscribe_url(ref) in page  # CAN-SPAM footer
    assert links.view_url(ref) in page
    assert links.open_url(ref) not in page and "/o/" not in page
    sent = await _as_sent(services, ref)
    assert links.open_url(ref) in sent
    pixel = f'<img src="{links.open_url(ref)}" width="1" height="1" alt="" />'
    assert sent.replace(pixel, "") == page


async def test_view_headers(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    ref, _ = await _seed(database)
    response = await client.get(_view_path(services, ref))
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-robots-tag"] == "noindex"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src https: http: data:" in csp
    assert "script-src" not in csp  # no script source at all: default-src 'none' applies


async def test_a_view_is_not_an_open(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    ref, campaign_id = await _seed(database)
    for _ in range(2):
        assert (await client.get(_view_path(services, ref))).status_code == 200
    report = await stats_row(database, campaign_id)
    assert (report["opens"], report["unique_opens"], report["prefetches"]) == (0, 0, 0)
    async with database.read() as conn:
        opened = await conn.scalar(
            select(events.c.id).where(events.c.name.in_(["Opened Email", "Clicked Email"]))
        )
        assert opened is None
        sent = await conn.execute(
            select(campaign_recipients.c.opened_at).where(campaign_recipients.c.id == ref.id)
        )
        assert sent.scalar_one() is None


async def test_bad_tokens_are_400(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    ref, _ = await _seed(database)
    good = _view_path(services, ref)
    tampered = await client.get(good[:-2] + ("aa" if not good.endswith("aa") else "bb"))
    assert tampered.status_code == 400
    assert "not valid" in tampered.text and "Hello" not in tampered.text
    links = Links(services.links, services.public_url)
    other = links.unsubscribe_url(ref).rsplit("/", 1)[1]  # another purpose's token
    assert (await client.get(f"/v/{other}")).status_code == 400
    assert (await client.get("/v/garbage")).status_code == 400


async def test_gone_rows_are_404(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    ref, campaign_id = await _seed(database)
    async with database.write() as conn:
        await conn.execute(delete(campaigns).where(campaigns.c.id == campaign_id))
    response = await client.get(_view_path(services, ref))
    assert response.status_code == 404
    assert "no longer available" in " ".join(response.text.split())
    assert response.headers["cache-control"] == "no-store, private"


async def test_transactional_copies_are_404_with_the_reason(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    ref = await seed_transactional(database, "bob@example.com")
    response = await client.get(_view_path(services, ref))
    assert response.status_code == 404
    text = " ".join(response.text.split())
    assert "does not keep a copy of account and order emails" in text
    assert "Tea Shop" in text
