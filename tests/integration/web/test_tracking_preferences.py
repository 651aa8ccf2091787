"""The preference centre over HTTP: lists and channels, changed through one form."""

from __future__ import annotations

import httpx
from sqlalchemy import insert, select, update
from tests.integration.marketing.campaigns_tracking.seed import T0, seed_campaign, stats_row

from courriel.marketing.campaigns.tokens import Links, Ref
from courriel.marketing.consent import consent_history
from courriel.marketing.lists import create_list, subscribe
from courriel.storage.db import Database
from courriel.storage.models.marketing import contacts, list_members
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices

EMAIL = "ann@example.com"


async def _setup(services: WebServices, database: Database) -> tuple[str, int, dict[str, int]]:
    seeded = await seed_campaign(database, [EMAIL, "bob@example.com"])
    contact_id = seeded.contacts[EMAIL]
    async with database.write() as conn:
        ids = {}
        for name, double in (("Weekly <news>", False), ("VIP", True), ("Internal", False)):
            ids[name] = (await create_list(conn, name=name, double_opt_in=double, now=T0)).id
        await subscribe(conn, ids["Weekly <news>"], contact_id, method="form", now=T0)
        # VIP is double opt-in: a member who confirmed already.
        await conn.execute(
            insert(list_members).values(
                list_id=ids["VIP"], contact_id=contact_id, status="subscribed", added_at=T0
            )
        )
        await conn.execute(
            update(contacts)
            .where(contacts.c.id == contact_id)
            .values(phone="+33612345678", sms_status="subscribed")
        )
    url = Links(services.links, services.public_url).preferences_url(seeded.refs[EMAIL])
    return url.removeprefix("https://mail.shop.test"), seeded.campaign_id, {**ids, "c": contact_id}


async def _member_statuses(db: Database, contact_id: int) -> dict[int, str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(list_members.c.list_id, list_members.c.status).where(
                list_members.c.contact_id == contact_id
            )
        )
        return {int(r.list_id): r.status for r in rows}


async def _statuses(db: Database, contact_id: int) -> tuple[str, str]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(contacts.c.email_status, contacts.c.sms_status).where(
                    contacts.c.id == contact_id
                )
            )
        ).one()
    return row.email_status, row.sms_status


async def test_page_lists_only_the_contacts_lists(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    url, _, ids = await _setup(services, database)
    response = await client.get(url)
    assert response.status_code == 200
    assert "Weekly &lt;news&gt;" in response.text and "VIP" in response.text
    assert "Internal" not in response.text  # not a member: the shop's other lists stay private
    assert 'name="sms"' in response.text and EMAIL in response.text
    assert await _member_statuses(database, ids["c"]) == {
        ids["Weekly <news>"]: "subscribed",
        ids["VIP"]: "subscribed",
    }


async def test_post_applies_every_change_in_one_go(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    url, campaign_id, ids = await _setup(services, database)
    # Keep VIP, leave the weekly list, stop SMS, stop email.
    response = await client.post(url, data={"list": str(ids["VIP"])})
    assert response.status_code == 200 and "saved" in response.text
    assert await _member_statuses(database, ids["c"]) == {
        ids["Weekly <news>"]: "unsubscribed",
        ids["VIP"]: "subscribed",
    }
    assert await _statuses(database, ids["c"]) == ("unsubscribed", "unsubscribed")
    # Email off from the preference centre is an unsubscribe of that campaign.
    assert (await stats_row(database, campaign_id))["unsubscribes"] == 1
    async with database.read() as conn:
        methods = {(p.channel, p.method) for p in await consent_history(conn, ids["c"])}
    assert ("email", "preference_centre") in methods and ("sms", "preference_centre") in methods


async def test_resubscribing_a_double_opt_in_list_sends_a_confirmation(
    client: httpx.AsyncClient,
    services: WebServices,
    database: Database,
    mailer: RecordingMailer,
) -> None:
    url, _, ids = await _setup(services, database)
    await client.post(url, data={"email": "on", "sms": "on"})  # leaves both lists
    everything = {"email": "on", "sms": "on", "list": [str(ids["VIP"]), str(ids["Weekly <news>"])]}
    response = await client.post(url, data=everything)
    assert response.status_code == 200
    assert await _member_statuses(database, ids["c"]) == {
        ids["Weekly <news>"]: "subscribed",
        ids["VIP"]: "pending",
    }
    assert [m.recipient for m in mailer.sent] == [EMAIL]
    assert await _statuses(database, ids["c"]) == ("subscribed", "subscribed")


async def test_sms_cannot_be_switched_on_here(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    url, _, ids = await _setup(services, database)
    await client.post(url, data={"email": "on"})  # SMS off
    await client.post(url, data={"email": "on", "sms": "on"})  # ignored: no express consent
    assert await _statuses(database, ids["c"]) == ("subscribed", "unsubscribed")


async def test_foreign_list_or_bad_token_changes_nothing(
    client: httpx.AsyncClient, services: WebServices, database: Database
) -> None:
    url, _, ids = await _setup(services, database)
    before = await _member_statuses(database, ids["c"])
    for data in ({"list": str(ids["Internal"])}, {"list": "1e3"}, {"list": "99999999999999999999"}):
        response = await client.post(url, data=data)
        assert response.status_code == 400
    assert await _member_statuses(database, ids["c"]) == before
    assert await _statuses(database, ids["c"]) == ("subscribed", "subscribed")
    assert (await client.get("/p/bad.token")).status_code == 400
    assert (await client.post("/p/bad.token", data={})).status_code == 400


async def test_gone_contact_gets_a_plain_page(
    client: httpx.AsyncClient, services: WebServices
) -> None:
    url = Links(services.links, services.public_url).preferences_url(Ref("c", 5150))
    path = url.removeprefix("https://mail.shop.test")
    for response in (await client.get(path), await client.post(path, data={"email": "on"})):
        assert response.status_code == 200 and "nothing left to manage" in response.text
