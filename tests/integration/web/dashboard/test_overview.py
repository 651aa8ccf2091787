"""GET / (Overview): who may read it, and the seeded numbers it shows (both engines)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import update
from tests.integration.marketing.campaigns_tracking.seed import T0, seed_campaign
from tests.integration.web.dashboard.conftest import Users

from courriel.delivery.queue import enqueue
from courriel.marketing import dailystats
from courriel.marketing.campaigns import stats
from courriel.storage.db import Database
from courriel.storage.models import queue_recipients

_DATA = re.compile(r'<script type="application/json" id="overview-data">(.*?)</script>', re.S)


async def _seed(db: Database) -> int:
    """30 days of totals, one campaign with results, a queue of 3 queued/1 deferred/1 failed."""
    async with db.write() as conn:
        for back in range(30):
            at = T0 - timedelta(days=back)
            await dailystats.bump_in(conn, "sent", at, 1000)
            await dailystats.bump_in(conn, "delivered", at, 980)
            await dailystats.bump_in(conn, "opened", at, 245)
            await dailystats.bump_in(conn, "clicked", at, 49)
        await dailystats.bump_in(conn, "revenue_minor", T0, 123_456)
        await dailystats.bump_in(conn, "bounced", T0, 20)
        await dailystats.bump_in(conn, "complained", T0, 147)  # 147 / 29,400 = 0.5 %
        await dailystats.bump_in(conn, "sent", T0 - timedelta(days=30), 999_999)  # too old
    seeded = await seed_campaign(db, ["ann@example.com", "bob@example.com"], name="Spring sale")
    async with db.write() as conn:
        await conn.run_sync(
            lambda c: stats.bump(
                c, seeded.campaign_id, seeded.variant_id, unique_opens=1, revenue_minor=4200
            )
        )
        await enqueue(
            conn,
            sender="shop@shop.test",
            recipients=[f"r{i}@remote.test" for i in range(5)],
            blob_key="0" * 64,
            size=10,
            trace_header=b"",
        )
        await conn.execute(
            update(queue_recipients)
            .where(queue_recipients.c.recipient == "r0@remote.test")
            .values(status="failed", attempts=5)
        )
        await conn.execute(
            update(queue_recipients)
            .where(queue_recipients.c.recipient == "r1@remote.test")
            .values(attempts=2)
        )
    return seeded.campaign_id


def _text(html: str, ident: str) -> str:
    found = re.search(rf'id="{ident}">([^<]*)<', html)
    assert found, ident
    return found.group(1).strip()


@pytest.mark.parametrize("role", ["viewer", "marketer", "owner"])
async def test_every_role_reads_the_overview(users: Users, role: str) -> None:
    browser = await users.login(role)
    response = await browser.get("/")
    assert response.status_code == 200
    assert "<h1>Overview</h1>" in response.text
    assert 'aria-current="page">Overview' in response.text
    assert "No campaign yet." in response.text
    # Nothing is a write here: POST is not a method of the page, CSRF or not.
    assert (await browser.post("/")).status_code == 405
    assert (await browser.client.post("/")).status_code in (403, 405)


async def test_anonymous_is_sent_to_login(users: Users) -> None:
    response = await users.client().get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_the_overview_shows_the_seeded_numbers(users: Users) -> None:
    campaign_id = await _seed(users.services.db)
    browser = await users.login("viewer")
    html = (await browser.get("/")).text
    assert _text(html, "card-sent") == "30,000"
    assert _text(html, "card-delivered") == "29,400"
    assert _text(html, "card-open-rate") == "25.0 %"  # 7,350 / 29,400
    assert _text(html, "card-click-rate") == "5.0 %"
    assert _text(html, "card-revenue") == "1,234.56"
    assert _text(html, "card-complaint-rate") == "0.50 %"
    assert '<span class="badge bad">above 0.3 %</span>' in html
    assert (_text(html, "queue-queued"), _text(html, "queue-deferred")) == ("3", "1")
    assert _text(html, "queue-failed") == "1"
    assert f'<a href="/campaigns/{campaign_id}">Spring sale</a>' in html
    assert "50.0 %" in html and "42.00" in html  # the campaign's open rate and revenue
    found = _DATA.search(html)
    assert found
    data = json.loads(found.group(1))
    assert len(data["labels"]) == 30 and data["labels"][-1] == T0.date().isoformat()
    assert data["metrics"]["sent"] == [1000] * 30
    assert data["metrics"]["revenue_minor"][-1] == 123_456
    assert data["complaint_rate"][-1] == 15.0 and data["complaint_rate"][0] == 0
    assert data["complaint_limit"] == 0.3
    assert '<script src="/assets/overview.js" defer></script>' in html


async def test_a_low_complaint_rate_is_green(users: Users) -> None:
    async with users.services.db.write() as conn:
        await dailystats.bump_in(conn, "delivered", T0, 10_000)
        await dailystats.bump_in(conn, "complained", T0, 5)
    html = (await (await users.login("viewer")).get("/")).text
    assert _text(html, "card-complaint-rate") == "0.05 %"
    assert '<span class="badge ok">below 0.3 %</span>' in html
