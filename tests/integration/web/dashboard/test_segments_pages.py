"""Dashboard segments pages: the list, the builder, the live preview, save and delete, by role."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from tests.integration.web.dashboard.conftest import Users

from courriel.marketing.contacts import upsert_contact
from courriel.marketing.segments import service
from courriel.marketing.types import ContactData
from courriel.storage.db import Database

FR_VIP = {
    "kind": "all",
    "conditions": [
        {"kind": "location", "field": "country", "op": "in", "value": ["FR"]},
        {"kind": "tag", "tag": "vip"},
    ],
}


async def _seed(database: Database, now: Any) -> None:
    """Five contacts: two French VIPs (Ann, Bob), one French, one Belgian VIP, one bare."""
    people = [
        ContactData(email="ann@shop.test", first_name="Ann", country="FR", tags=("vip",)),
        ContactData(
            email="bob@shop.test", first_name="Bob", last_name="Roy", country="FR", tags=("vip",)
        ),
        ContactData(email="cid@shop.test", country="FR"),
        ContactData(email="dee@shop.test", country="BE", tags=("vip",)),
        ContactData(email="eve@shop.test"),
    ]
    async with database.write() as conn:
        for person in people:
            await upsert_contact(conn, person, now=now)


async def _saved(users: Users, name: str = "French VIPs", tree: Any = None) -> int:
    made = await service.create(
        users.services.db, name=name, definition=tree or FR_VIP, now=users.services.clock()
    )
    return made.id


def _preview_url(tree: Any) -> str:
    return "/segments/preview?" + "definition=" + json.dumps(tree).replace(" ", "")


async def test_the_list_shows_saved_segments_without_counting_them(users: Users) -> None:
    await _seed(users.services.db, users.services.clock())
    segment_id = await _saved(users)
    browser = await users.login("viewer")
    response = await browser.get("/segments")
    assert response.status_code == 200
    assert "French VIPs" in response.text
    assert f'hx-get="/segments/{segment_id}/count"' in response.text
    assert "Delete" not in response.text  # a viewer cannot delete
    assert "contacts</span>" not in response.text  # nothing counted on load
    count = await browser.get(f"/segments/{segment_id}/count", headers={"HX-Request": "true"})
    assert count.status_code == 200
    assert "<strong>2</strong> contacts" in count.text
    assert "<html" not in count.text  # a fragment
    assert (await browser.get("/segments/999999/count")).status_code == 404


async def test_the_builder_carries_the_tree_and_the_lists(users: Users) -> None:
    segment_id = await _saved(users)
    browser = await users.login("marketer")
    response = await browser.get(f"/segments/{segment_id}")
    assert response.status_code == 200
    hidden = re.search(r'name="definition" id="definition" value="([^"]*)"', response.text)
    assert hidden is not None
    stored = json.loads(hidden.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert stored["conditions"][1] == {"kind": "tag", "tag": "vip", "present": True}
    assert 'src="/assets/segments.js"' in response.text
    assert "Save segment" in response.text
    new = await browser.get("/segments/new")
    assert new.status_code == 200 and "New segment" in new.text
    assert (await browser.get("/segments/999999")).status_code == 404


async def test_preview_counts_and_lists_the_first_members(users: Users) -> None:
    await _seed(users.services.db, users.services.clock())
    browser = await users.login("viewer")
    response = await browser.get("/segments/preview", params={"definition": json.dumps(FR_VIP)})
    assert response.status_code == 200
    assert 'data-count="2"' in response.text
    assert "ann@shop.test" in response.text and "Bob Roy" in response.text
    assert "cid@shop.test" not in response.text
    everyone = await browser.get("/segments/preview", params={"definition": '{"kind":"all"}'})
    assert everyone.status_code == 422  # "conditions" is required
    empty = {"kind": "all", "conditions": []}
    everyone = await browser.get("/segments/preview", params={"definition": json.dumps(empty)})
    assert 'data-count="5"' in everyone.text


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        (
            {"kind": "all", "conditions": [{"kind": "event", "name": "X", "within_days": 0}]},
            "conditions/0/within_days",
            "between 1 and 36500",
        ),
        (
            {"kind": "any", "conditions": [{"kind": "tag", "tag": "vip", "colour": "red"}]},
            "conditions/0/colour",
            "unexpected field",
        ),
        ("{not json", "", "not valid JSON"),
    ],
)
async def test_an_invalid_tree_answers_a_422_fragment_naming_the_field(
    users: Users, definition: Any, field: str, words: str
) -> None:
    browser = await users.login("viewer")
    raw = definition if isinstance(definition, str) else json.dumps(definition)
    response = await browser.get("/segments/preview", params={"definition": raw})
    assert response.status_code == 422
    assert f'data-field="{field}"' in response.text
    assert words in response.text
    assert "<html" not in response.text


async def test_preview_refuses_a_definition_too_long_for_a_url(users: Users) -> None:
    browser = await users.login("viewer")
    tags = [{"kind": "tag", "tag": f"t{i:04d}"} for i in range(400)]
    response = await browser.get(
        "/segments/preview", params={"definition": json.dumps({"kind": "any", "conditions": tags})}
    )
    assert response.status_code == 422 and "longer than" in response.text


async def test_a_marketer_saves_updates_and_deletes_a_segment(users: Users) -> None:
    await _seed(users.services.db, users.services.clock())
    browser = await users.login("marketer")
    created = await browser.post(
        "/segments", {"name": "French VIPs", "definition": json.dumps(FR_VIP)}
    )
    assert created.status_code == 303
    [segment] = await service.list(users.services.db)
    assert created.headers["location"] == f"/segments?saved={segment.id}"
    assert await service.count(users.services.db, segment.id) == 2
    listed = await browser.get(created.headers["location"])
    assert "Segment saved." in listed.text and "French VIPs" in listed.text

    french = {"kind": "location", "field": "country", "op": "eq", "value": "fr"}
    updated = await browser.post(
        f"/segments/{segment.id}", {"name": "French", "definition": json.dumps(french)}
    )
    assert updated.status_code == 303
    assert (await service.get(users.services.db, segment.id)).name == "French"
    assert await service.count(users.services.db, segment.id) == 3

    deleted = await browser.post(f"/segments/{segment.id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/segments?deleted=1"
    assert await service.list(users.services.db) == []
    assert (await browser.post(f"/segments/{segment.id}/delete")).status_code == 404
    missing = await browser.post(
        f"/segments/{segment.id}", {"name": "x", "definition": json.dumps(french)}
    )
    assert missing.status_code == 404


async def test_a_bad_form_re_renders_the_builder_with_the_input(users: Users) -> None:
    await _saved(users, "Taken")
    browser = await users.login("marketer")
    bad_tree = {"kind": "all", "conditions": [{"kind": "order", "metric": "count"}]}
    response = await browser.post("/segments", {"name": "New", "definition": json.dumps(bad_tree)})
    assert response.status_code == 422
    assert "definition/conditions/0" in response.text
    assert "metric" in response.text  # the user's tree comes back to the builder
    bad_json = await browser.post("/segments", {"name": "New", "definition": "{oops"})
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.text
    no_name = await browser.post("/segments", {"name": " ", "definition": json.dumps(FR_VIP)})
    assert no_name.status_code == 422 and 'data-field="name"' in no_name.text
    taken = await browser.post("/segments", {"name": "Taken", "definition": json.dumps(FR_VIP)})
    assert taken.status_code == 409 and "exists already" in taken.text
    assert len(await service.list(users.services.db)) == 1


@pytest.mark.parametrize("role", ["viewer", "marketer", "owner"])
async def test_every_role_reads_the_pages(users: Users, role: str) -> None:
    segment_id = await _saved(users)
    browser = await users.login(role)
    for url in (
        "/segments",
        "/segments/new",
        f"/segments/{segment_id}",
        f"/segments/{segment_id}/count",
        _preview_url({"kind": "all", "conditions": []}),
    ):
        assert (await browser.get(url)).status_code == 200, url


@pytest.mark.parametrize(
    ("role", "allowed"), [("viewer", False), ("marketer", True), ("owner", True)]
)
async def test_only_marketers_and_owners_change_segments(
    users: Users, role: str, allowed: bool
) -> None:
    segment_id = await _saved(users)
    browser = await users.login(role)
    tree = json.dumps(FR_VIP)
    posts = [
        ("/segments", {"name": f"{role} new", "definition": tree}),
        (f"/segments/{segment_id}", {"name": f"{role} renamed", "definition": tree}),
        (f"/segments/{segment_id}/delete", {}),
    ]
    for url, data in posts:
        response = await browser.post(url, data)
        assert response.status_code == (303 if allowed else 403), url
    names = [s.name for s in await service.list(users.services.db)]
    assert names == ([f"{role} new"] if allowed else ["French VIPs"])


async def test_posts_without_the_csrf_token_are_refused(users: Users) -> None:
    segment_id = await _saved(users)
    browser = await users.login("owner")
    tree = json.dumps(FR_VIP)
    for url, data in (
        ("/segments", {"name": "forged", "definition": tree}),
        (f"/segments/{segment_id}", {"name": "forged", "definition": tree}),
        (f"/segments/{segment_id}/delete", {}),
    ):
        response = await browser.client.post(url, data=data)
        assert response.status_code == 403, url
        assert "did not come from this site" in response.text
    assert [s.name for s in await service.list(users.services.db)] == ["French VIPs"]


async def test_anonymous_visitors_are_sent_to_the_login_page(users: Users) -> None:
    client = users.client()
    for url in ("/segments", "/segments/new", _preview_url({"kind": "all", "conditions": []})):
        response = await client.get(url)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    refused = await client.post("/segments", data={"name": "x", "definition": "{}"})
    assert refused.status_code in (303, 401, 403)
    assert await service.list(users.services.db) == []
