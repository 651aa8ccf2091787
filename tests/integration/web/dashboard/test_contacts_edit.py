"""Dashboard contact form: add and edit a contact through the API's upsert, its email
consent with the dashboard's proof, list membership; roles, CSRF, bad input (422, field
named, nothing written) and unknown ids (404)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from tests.integration.web.dashboard.conftest import Users

from courriel.marketing.consent import consent_history
from courriel.marketing.contacts import find_contact_id, get_contact, upsert_contact
from courriel.marketing.lists import create_list
from courriel.marketing.profile import contact_lists
from courriel.marketing.types import Contact, ContactData
from courriel.storage.models.marketing import contacts
from courriel.web.app import WebServices

HUGE = str(2**63)


async def _ada(services: WebServices) -> int:
    async with services.db.write() as conn:
        return await upsert_contact(
            conn,
            ContactData(
                email="ada@shop.test",
                first_name="Ada",
                country="GB",
                attributes={"plan": "gold"},
                tags=("vip",),
                source="api",
            ),
            now=services.clock(),
        )


async def _contact(services: WebServices, contact_id: int) -> Contact:
    async with services.db.read() as conn:
        return await get_contact(conn, contact_id)


async def _count(services: WebServices) -> int:
    async with services.db.read() as conn:
        return len((await conn.execute(select(contacts.c.id))).all())


def _form(contact: Contact, **changes: str) -> dict[str, str]:
    """The edit form as a browser submits it: every field, with ``changes``."""
    fields = ("first_name", "last_name", "phone", "country", "region", "city")
    values = {name: getattr(contact, name) or "" for name in fields}
    values.update(postal_code="", time_zone="", tags="", attributes="")
    values["email_status"] = contact.email_status
    values.update(changes)
    return values


async def test_roles_read_and_write_the_forms(users: Users) -> None:
    ada = await _ada(users.services)
    viewer = await users.login("viewer")
    for url in ("/contacts/new", f"/contacts/{ada}/edit"):
        assert (await viewer.get(url)).status_code == 403
    for url, data in (
        ("/contacts/new", {"email": "v@shop.test"}),
        (f"/contacts/{ada}/edit", {"first_name": "V"}),
        (f"/contacts/{ada}/lists", {"list_id": "1"}),
        (f"/contacts/{ada}/lists/1/remove", {}),
    ):
        assert (await viewer.post(url, data)).status_code == 403
    for role in ("marketer", "owner"):
        browser = await users.login(role)
        assert (await browser.get("/contacts/new")).status_code == 200
        edit = await browser.get(f"/contacts/{ada}/edit")
        assert edit.status_code == 200
        assert 'value="Ada"' in edit.text and "&#34;plan&#34;: &#34;gold&#34;" in edit.text
        profile = await browser.get(f"/contacts/{ada}")
        assert f'href="/contacts/{ada}/edit"' in profile.text
    assert f'href="/contacts/{ada}/edit"' not in (await viewer.get(f"/contacts/{ada}")).text


async def test_a_post_without_the_csrf_token_is_refused(users: Users) -> None:
    ada = await _ada(users.services)
    browser = await users.login("owner")
    for url in ("/contacts/new", f"/contacts/{ada}/edit", f"/contacts/{ada}/lists"):
        response = await browser.client.post(url, data={"email": "x@shop.test", "list_id": "1"})
        assert response.status_code == 403
    assert await _count(users.services) == 1
    assert (await _contact(users.services, ada)).first_name == "Ada"


async def test_new_contact_is_upserted_with_its_consent_proof(users: Users) -> None:
    browser = await users.login("marketer")
    response = await browser.post(
        "/contacts/new",
        {
            "email": "Grace@Shop.test",
            "first_name": "Grace",
            "last_name": "Hopper",
            "phone": "+1 202 555 0143",
            "country": "us",
            "city": "Arlington",
            "time_zone": "America/New_York",
            "tags": "navy, vip",
            "attributes": '{"rank": "admiral", "age": 85}',
            "email_status": "subscribed",
        },
    )
    assert response.status_code == 303
    found = re.fullmatch(r"/contacts/(\d+)", response.headers["location"])
    assert found
    grace = await _contact(users.services, int(found.group(1)))
    assert grace.email == "grace@shop.test"
    assert (grace.phone, grace.country, grace.time_zone) == (
        "+12025550143",
        "US",
        "America/New_York",
    )
    assert grace.tags == ("navy", "vip")
    assert grace.attributes == {"rank": "admiral", "age": 85}
    assert grace.source == "dashboard" and grace.email_status == "subscribed"
    async with users.services.db.read() as conn:
        proof = await consent_history(conn, grace.id)
    assert [(p.channel, p.status, p.method, p.detail) for p in proof] == [
        ("email", "subscribed", "dashboard", f"by {browser.email}")
    ]
    assert proof[0].ip == "127.0.0.1"
    # The same address again is refused, not merged into the stored contact.
    again = await browser.post("/contacts/new", {"email": "grace@shop.test", "first_name": "G"})
    assert again.status_code == 422
    assert 'id="email-error"' in again.text
    assert (await _contact(users.services, grace.id)).first_name == "Grace"


async def test_edit_changes_fields_adds_tags_and_records_an_unsubscribe(users: Users) -> None:
    ada = await _ada(users.services)
    before = await _contact(users.services, ada)
    browser = await users.login("marketer")
    response = await browser.post(
        f"/contacts/{ada}/edit",
        _form(
            before,
            first_name="Augusta Ada",
            last_name="King",
            city="",
            tags="countess",
            attributes='{"plan": "platinum", "era": 1843}',
            email_status="unsubscribed",
            email="other@shop.test",  # ignored: the address is the contact's identity
        ),
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/contacts/{ada}"
    after = await _contact(users.services, ada)
    assert (after.email, after.first_name, after.last_name) == (
        "ada@shop.test",
        "Augusta Ada",
        "King",
    )
    assert after.tags == ("countess", "vip")
    assert after.attributes == {"plan": "platinum", "era": 1843}
    assert after.email_status == "unsubscribed" and after.source == "api"
    async with users.services.db.read() as conn:
        proof = await consent_history(conn, ada)
    assert [(p.status, p.method) for p in proof] == [("unsubscribed", "dashboard")]
    # Saving the same form again changes nothing and adds no proof row.
    same = await browser.post(f"/contacts/{ada}/edit", _form(after))
    assert same.status_code == 303
    assert await _contact(users.services, ada) == after
    async with users.services.db.read() as conn:
        assert len(await consent_history(conn, ada)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "not a number"}, "phone"),
        ({"country": "France"}, "country"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"attributes": "{plan: gold"}, "attributes"),
        ({"attributes": "[1, 2]"}, "attributes"),
        ({"tags": "ok, " + "x" * 65}, "tags"),
        ({"email_status": "maybe"}, "email_status"),
    ],
)
async def test_bad_input_is_the_form_again_with_the_field_and_nothing_written(
    users: Users, change: dict[str, str], field: str
) -> None:
    ada = await _ada(users.services)
    before = await _contact(users.services, ada)
    browser = await users.login("marketer")
    # The good changes around the bad one must not be written either.
    form = _form(before, **{"first_name": "Changed", "email_status": "unsubscribed", **change})
    response = await browser.post(f"/contacts/{ada}/edit", form)
    assert response.status_code == 422
    assert 'role="alert"' in response.text and f"{field}" in response.text
    assert f'id="{field}-error"' in response.text
    assert await _contact(users.services, ada) == before
    async with users.services.db.read() as conn:
        assert await consent_history(conn, ada) == []


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "new@shop.test", "phone": "12"}, "phone"),
        ({"email": "new@shop.test", "country": "XX"}, "country"),
        ({"email": "new@shop.test", "attributes": '"text"'}, "attributes"),
    ],
)
async def test_bad_new_contact_is_not_created(
    users: Users, form: dict[str, str], field: str
) -> None:
    browser = await users.login("marketer")
    response = await browser.post("/contacts/new", {"email_status": "subscribed", **form})
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert 'value="' + form["email"] + '"' in response.text  # what was typed is kept
    assert await _count(users.services) == 0


async def test_list_membership_is_added_and_removed(users: Users) -> None:
    ada = await _ada(users.services)
    async with users.services.db.write() as conn:
        news = await create_list(conn, name="Newsletter", now=users.services.clock())
    browser = await users.login("marketer")
    page = await browser.get(f"/contacts/{ada}/edit")
    assert f'<option value="{news.id}">Newsletter</option>' in page.text
    added = await browser.post(f"/contacts/{ada}/lists", {"list_id": str(news.id)})
    assert added.status_code == 303 and added.headers["location"] == f"/contacts/{ada}/edit"
    async with users.services.db.read() as conn:
        assert [(m.name, m.status) for m in await contact_lists(conn, ada)] == [
            ("Newsletter", "subscribed")
        ]
        proof = await consent_history(conn, ada)
    # Subscribing records consent as the API's member route does, with the dashboard's method.
    assert [(p.status, p.method, p.detail) for p in proof] == [
        ("subscribed", "dashboard", "list:Newsletter")
    ]
    removed = await browser.post(f"/contacts/{ada}/lists/{news.id}/remove")
    assert removed.status_code == 303
    async with users.services.db.read() as conn:
        assert [m.status for m in await contact_lists(conn, ada)] == ["unsubscribed"]
    assert (await browser.post(f"/contacts/{ada}/lists/{news.id}/remove")).status_code == 404
    assert (await browser.post(f"/contacts/{ada}/lists", {"list_id": "999"})).status_code == 404
    bad = await browser.post(f"/contacts/{ada}/lists", {"list_id": "news"})
    assert bad.status_code == 422 and 'id="list_id-error"' in bad.text


async def test_unknown_ids_are_404(users: Users) -> None:
    ada = await _ada(users.services)
    browser = await users.login("owner")
    for missing in ("999", HUGE, str(2**64 + 5)):
        assert (await browser.get(f"/contacts/{missing}/edit")).status_code == 404
        edit = await browser.post(f"/contacts/{missing}/edit", {"first_name": "X"})
        assert edit.status_code == 404
        lists = await browser.post(f"/contacts/{missing}/lists", {"list_id": "1"})
        assert lists.status_code == 404
    for missing in ("999", HUGE):
        assert (await browser.post(f"/contacts/{ada}/lists/{missing}/remove")).status_code == 404
    async with users.services.db.read() as conn:
        assert await find_contact_id(conn, "ada@shop.test") == ada


async def test_the_list_offers_new_contact_to_marketers_only(users: Users) -> None:
    marketer = await users.login("marketer")
    assert 'href="/contacts/new"' in (await marketer.get("/contacts")).text
    viewer = await users.login("viewer")
    assert 'href="/contacts/new"' not in (await viewer.get("/contacts")).text
