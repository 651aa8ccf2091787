"""``/api/v1/campaigns`` over HTTP: create, page, send, pause/resume/cancel, progress, report.

The sending itself is done by a real campaign sender over the same database (a node's
delivery role does it in production); the API only changes state and reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import insert
from tests.integration.marketing.campaigns.conftest import Clock as SenderClock
from tests.integration.marketing.campaigns.conftest import RecordingMailer, make_sender
from tests.integration.web.conftest import Clock, MakeKey, assert_problem

from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.lists import create_list, subscribe
from courriel.marketing.types import ConsentChange, ContactData
from courriel.storage.db import Database
from courriel.storage.models.campaigns import templates
from courriel.storage.models.mail import domains
from courriel.web.app import WebServices, create_app

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def shop(database: Database) -> dict[str, int]:
    """A domain, a template and a list of three subscribed contacts."""
    async with database.write() as conn:
        await conn.execute(insert(domains).values(name="shop.example", created_at=T0))
        made = await conn.execute(
            insert(templates)
            .values(
                name="sale", kind="html", source="x", html="<p>Hi {name}</p>",
                created_at=T0, updated_at=T0,
            )
            .returning(templates.c.id)
        )  # fmt: skip
        newsletter = await create_list(conn, name="newsletter", now=T0)
        for name in ("ann", "bob", "cat"):
            contact = await upsert_contact(
                conn, ContactData(email=f"{name}@customer.example", first_name=name), now=T0
            )
            await subscribe(conn, newsletter.id, contact, method="api", now=T0)
            change = ConsentChange(channel="email", status="subscribed", method="api")
            await set_consent(conn, contact, change, now=T0)
    return {"template": int(made.scalar_one()), "list": newsletter.id}


@pytest.fixture
async def client(services: WebServices) -> AsyncIterator[httpx.AsyncClient]:
    # The shared fixture's services, with the postal address sending requires.
    app = create_app(dataclasses.replace(services, shop_address="1 Rue de la Paix, Paris"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _body(shop: dict[str, int], **extra: object) -> dict[str, object]:
    return {
        "name": "Black Friday",
        "from_address": "news@shop.example",
        "variants": [{"subject": "Hi {name}", "template_id": shop["template"]}],
        "audience": [{"kind": "list", "id": shop["list"]}],
        **extra,
    }


async def test_create_send_progress_report(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    shop: dict[str, int],
    database: Database,
    clock: Clock,
) -> None:
    made = await client.post("/api/v1/campaigns", json=_body(shop, from_name="Shop"), headers=auth)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "draft" and body["from_name"] == "Shop"
    assert body["progress"] == {"status": "draft", "recipients": 0, "sent": 0, "pending": 0}
    campaign_id = body["id"]

    sent = await client.post(f"/api/v1/campaigns/{campaign_id}/send", headers=auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "scheduled"
    assert sent.json()["scheduled_at"] == clock.now.isoformat()

    mailer = RecordingMailer(database)
    sender = make_sender(database, mailer, SenderClock(now=clock.now), batch=2)
    assert await sender.step(campaign_id)  # freeze
    assert await sender.step(campaign_id)  # first batch of 2
    midway = (await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)).json()
    assert midway["progress"] == {"status": "sending", "recipients": 3, "sent": 2, "pending": 1}

    paused = await client.post(f"/api/v1/campaigns/{campaign_id}/pause", headers=auth)
    assert paused.json()["status"] == "paused"
    assert not await sender.step_all()
    resumed = await client.post(f"/api/v1/campaigns/{campaign_id}/resume", headers=auth)
    assert resumed.json()["status"] == "sending"
    while await sender.step_all():
        pass
    assert sorted(m.recipient for m in mailer.sent) == [
        "ann@customer.example",
        "bob@customer.example",
        "cat@customer.example",
    ]

    report = await client.get(f"/api/v1/campaigns/{campaign_id}/report", headers=auth)
    assert report.status_code == 200, report.text
    counts = report.json()
    assert counts["status"] == "sent"
    assert counts["total"]["recipients"] == counts["total"]["sent"] == 3
    assert [v["label"] for v in counts["variants"]] == ["A"]
    refused = await client.post(f"/api/v1/campaigns/{campaign_id}/cancel", headers=auth)
    assert_problem(refused, 422, field="status")


async def test_paging_scheduling_ab_and_cancel(
    client: httpx.AsyncClient, auth: dict[str, str], shop: dict[str, int]
) -> None:
    ids = []
    for index in range(3):
        made = await client.post(
            "/api/v1/campaigns", json=_body(shop, name=f"c{index}"), headers=auth
        )
        ids.append(made.json()["id"])
    first = (await client.get("/api/v1/campaigns?limit=2", headers=auth)).json()
    assert [c["id"] for c in first["data"]] == ids[:2] and first["next"] == str(ids[1])
    rest = (await client.get(f"/api/v1/campaigns?after={first['next']}", headers=auth)).json()
    assert [c["name"] for c in rest["data"]] == ["c2"] and rest["next"] is None

    ab = _body(
        shop,
        variants=[
            {"subject": "One", "template_id": shop["template"]},
            {"subject": "Two", "template_id": shop["template"]},
        ],
        ab={"sample_percent": 40, "wait_seconds": 3600, "metric": "revenue"},
    )
    made = (await client.post("/api/v1/campaigns", json=ab, headers=auth)).json()
    assert [v["label"] for v in made["variants"]] == ["A", "B"]
    assert made["ab"] == {"sample_percent": 40, "wait_seconds": 3600, "metric": "revenue"}
    later = await client.post(
        f"/api/v1/campaigns/{made['id']}/send",
        json={"at": "2030-01-02T08:00:00+01:00"},
        headers=auth,
    )
    assert later.json()["scheduled_at"] == "2030-01-02T07:00:00+00:00"
    cancelled = await client.post(f"/api/v1/campaigns/{made['id']}/cancel", headers=auth)
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None


async def test_problems_name_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], shop: dict[str, int], make_key: MakeKey
) -> None:
    cases = [
        (_body(shop, from_address="news@elsewhere.example"), "from_address"),
        (_body(shop, variants=[{"subject": "s", "template_id": 999}]), "variants/0/template_id"),
        (_body(shop, audience=[{"kind": "segment", "id": 999}]), "audience/0"),
        (_body(shop, audience=[]), "audience"),
        (_body(shop, name=" "), "name"),
        (_body(shop, scheduled_at="2030-01-02T08:00:00"), "scheduled_at"),
        (_body(shop, ab={"sample_percent": 0}), "variants"),
    ]
    for body, field in cases:
        assert_problem(await client.post("/api/v1/campaigns", json=body, headers=auth), 422, field)
    listed = (await client.get("/api/v1/campaigns", headers=auth)).json()
    assert listed["data"] == []  # nothing half-made

    made = (await client.post("/api/v1/campaigns", json=_body(shop), headers=auth)).json()
    naive = await client.post(
        f"/api/v1/campaigns/{made['id']}/send", json={"at": "2030-01-02T08:00:00"}, headers=auth
    )
    assert_problem(naive, 422, field="at")
    wrong = await client.post(f"/api/v1/campaigns/{made['id']}/resume", headers=auth)
    assert "draft" in assert_problem(wrong, 422, field="status")["detail"]
    assert_problem(await client.get("/api/v1/campaigns/999", headers=auth), 404)
    assert_problem(await client.get("/api/v1/campaigns/999/report", headers=auth), 404)

    reader = await make_key("campaigns:read")
    assert (await client.get(f"/api/v1/campaigns/{made['id']}", headers=reader)).status_code == 200
    forbidden = await client.post(f"/api/v1/campaigns/{made['id']}/send", headers=reader)
    assert forbidden.status_code == 403
    assert (await client.get("/api/v1/campaigns")).status_code == 401


async def test_send_needs_the_shop_address(
    services: WebServices, auth: dict[str, str], shop: dict[str, int]
) -> None:
    transport = httpx.ASGITransport(app=create_app(services))  # shop.address left empty
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        made = (await plain.post("/api/v1/campaigns", json=_body(shop), headers=auth)).json()
        answer = await plain.post(f"/api/v1/campaigns/{made['id']}/send", headers=auth)
        assert_problem(answer, 422, field="shop.address")
        still = (await plain.get(f"/api/v1/campaigns/{made['id']}", headers=auth)).json()
        assert still["status"] == "draft"
