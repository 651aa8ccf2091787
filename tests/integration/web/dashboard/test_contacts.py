"""Dashboard Contacts pages: search and filters, profile and timeline, CSV export, GDPR
export and forget, with each role's permissions and the CSRF refusal."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.integration.web.dashboard.conftest import Users

from courriel.marketing.commerce import EventData, append_event
from courriel.marketing.contacts import find_contact_id
from courriel.marketing.csvio import import_contacts
from courriel.marketing.suppression import is_forgotten
from courriel.storage.models.marketing import lists
from courriel.web.app import WebServices

CSV = (
    "email,first_name,last_name,country,tags,email_consent,plan\r\n"
    "ada@shop.test,Ada,Lovelace,GB,vip;early,subscribed,gold\r\n"
    "alan@shop.test,Alan,Turing,GB,early,unsubscribed,\r\n"
    "grace@shop.test,Grace,Hopper,US,vip,,silver\r\n"
)


async def _seed(services: WebServices) -> dict[str, int]:
    report = await import_contacts(
        services.db, io.StringIO(CSV), list_name="Newsletter", now=services.clock()
    )
    assert report.imported == 3 and not report.errors
    ids: dict[str, int] = {}
    async with services.db.read() as conn:
        for email in ("ada@shop.test", "alan@shop.test", "grace@shop.test"):
            found = await find_contact_id(conn, email)
            assert found is not None
            ids[email.split("@")[0]] = found
    return ids


async def _list_id(services: WebServices, name: str) -> int:
    async with services.db.read() as conn:
        return int(
            (await conn.execute(select(lists.c.id).where(lists.c.name == name))).scalar_one()
        )


def _emails(html: str) -> list[str]:
    return re.findall(r'<a href="/contacts/\d+">([^<]+)</a>', html)


async def test_every_role_reads_the_list_and_htmx_gets_only_the_results(users: Users) -> None:
    await _seed(users.services)
    for role in ("viewer", "marketer", "owner"):
        browser = await users.login(role)
        response = await browser.get("/contacts")
        assert response.status_code == 200
        assert _emails(response.text) == ["ada@shop.test", "alan@shop.test", "grace@shop.test"]
        assert ('href="/contacts/import"' in response.text) is (role != "viewer")
    fragment = await browser.get("/contacts", params={"q": "gr"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert _emails(fragment.text) == ["grace@shop.test"]


async def test_anonymous_is_sent_to_login(users: Users) -> None:
    response = await users.client().get("/contacts/1")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/contacts/1")


async def test_search_and_filters_are_the_api_search_narrowed(users: Users) -> None:
    await _seed(users.services)
    browser = await users.login("viewer")
    newsletter = await _list_id(users.services, "Newsletter")
    cases = [
        ({"q": "AL"}, ["alan@shop.test"]),  # prefix of the address, case-insensitive
        ({"q": "hop"}, ["grace@shop.test"]),  # prefix of the last name
        ({"tag": "vip"}, ["ada@shop.test", "grace@shop.test"]),
        ({"status": "unsubscribed"}, ["alan@shop.test"]),
        ({"country": "gb", "tag": "early"}, ["ada@shop.test", "alan@shop.test"]),
        ({"list": str(newsletter), "country": "US"}, ["grace@shop.test"]),
        ({"list": str(newsletter + 99)}, []),
        ({"q": "%"}, []),  # LIKE wildcards are literal
    ]
    for params, expected in cases:
        response = await browser.get("/contacts", params=params)
        assert response.status_code == 200, params
        assert _emails(response.text) == expected, params


async def test_bad_filters_answer_422_with_the_field(users: Users) -> None:
    browser = await users.login("viewer")
    for params, field in (({"country": "ZZ"}, "country"), ({"status": "maybe"}, "status")):
        response = await browser.get("/contacts", params=params)
        assert response.status_code == 422
        assert f"{field}:" in response.text


async def test_pages_follow_the_id_cursor(users: Users, monkeypatch: pytest.MonkeyPatch) -> None:
    import courriel.web.dashboard.contacts as page_module

    monkeypatch.setattr(page_module, "PAGE_SIZE", 2)
    ids = await _seed(users.services)
    browser = await users.login("viewer")
    first = await browser.get("/contacts")
    assert _emails(first.text) == ["ada@shop.test", "alan@shop.test"]
    found = re.search(r'href="(/contacts\?after=(\d+))"', first.text)
    assert found and int(found.group(2)) == ids["alan"]
    second = await browser.get(found.group(1))
    assert _emails(second.text) == ["grace@shop.test"]
    assert "Next page" not in second.text


async def test_profile_shows_fields_lists_consent_and_a_paged_timeline(
    users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    import courriel.web.dashboard.contacts as page_module

    monkeypatch.setattr(page_module, "TIMELINE_PAGE", 3)
    ids = await _seed(users.services)
    start = users.services.clock()
    async with users.services.db.write() as conn:
        for n in range(5):
            await append_event(
                conn,
                EventData(
                    name=f"Viewed Product {n}",
                    properties={},
                    occurred_at=start - timedelta(days=n),
                    source="tracker",
                    contact_id=ids["ada"],
                ),
            )
    browser = await users.login("viewer")
    response = await browser.get(f"/contacts/{ids['ada']}")
    assert response.status_code == 200
    text = response.text
    for expected in ("Lovelace", "GB", "plan", "gold", "Newsletter", "vip", "subscribed"):
        assert expected in text
    # The consent proof of the import, and the newest three events, newest first.
    assert re.search(r"<td>email</td><td>subscribed</td><td>import</td>", text)
    shown = re.findall(r"Viewed Product (\d)", text)
    assert shown == ["0", "1", "2"]
    # A viewer sees no GDPR buttons.
    assert "/forget" not in text and "data.json" not in text
    more = re.search(r'href="(/contacts/\d+\?before=[^"#]+)#timeline"', text)
    assert more
    older = await browser.get(more.group(1).replace("&amp;", "&"))
    assert re.findall(r"Viewed Product (\d)", older.text) == ["3", "4"]
    assert "?before=" not in older.text


async def test_unknown_contact_and_bad_cursor(users: Users) -> None:
    browser = await users.login("viewer")
    assert (await browser.get("/contacts/999999")).status_code == 404
    ids = await _seed(users.services)
    bad = await browser.get(f"/contacts/{ids['ada']}", params={"before": "yesterday"})
    assert bad.status_code == 422


async def test_csv_export_streams_the_cli_format_to_marketers_only(users: Users) -> None:
    await _seed(users.services)
    viewer = await users.login("viewer")
    assert (await viewer.get("/contacts/export")).status_code == 403
    marketer = await users.login("marketer")
    response = await marketer.get("/contacts/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["email"] for r in rows] == ["ada@shop.test", "alan@shop.test", "grace@shop.test"]
    assert rows[0]["plan"] == "gold" and rows[0]["tags"] == "early;vip"
    # The list's members, as the CLI's --list: alan unsubscribed from it.
    only = await marketer.get("/contacts/export", params={"list": "Newsletter"})
    assert [r["email"] for r in csv.DictReader(io.StringIO(only.text))] == [
        "ada@shop.test",
        "grace@shop.test",
    ]
    assert (await marketer.get("/contacts/export", params={"list": "Nope"})).status_code == 404


async def test_csv_export_of_many_contacts_is_whole(users: Users) -> None:
    # More than one exporter page (1000) and many 64 KiB spool pieces.
    lines = ["email,note"] + [f"p{n}@shop.test,{'x' * 60}" for n in range(2500)]
    report = await import_contacts(
        users.services.db, io.StringIO("\r\n".join(lines) + "\r\n"), now=users.services.clock()
    )
    assert report.imported == 2500
    owner = await users.login("owner")
    response = await owner.get("/contacts/export")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2500
    assert rows[-1]["email"] == "p2499@shop.test" and rows[-1]["note"] == "x" * 60


async def test_gdpr_export_is_json_for_marketers(users: Users) -> None:
    ids = await _seed(users.services)
    viewer = await users.login("viewer")
    assert (await viewer.get(f"/contacts/{ids['ada']}/data.json")).status_code == 403
    marketer = await users.login("marketer")
    response = await marketer.get(f"/contacts/{ids['ada']}/data.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    person = json.loads(response.text)
    assert person["email"] == "ada@shop.test"
    assert person["contact"]["last_name"] == "Lovelace"
    assert (await marketer.get("/contacts/999999/data.json")).status_code == 404


async def test_forget_needs_a_marketer_and_csrf_and_keeps_the_hash(users: Users) -> None:
    ids = await _seed(users.services)
    url = f"/contacts/{ids['alan']}/forget"
    viewer = await users.login("viewer")
    assert (await viewer.get(url)).status_code == 403
    assert (await viewer.post(url)).status_code == 403
    marketer = await users.login("marketer")
    confirm = await marketer.get(url)
    assert confirm.status_code == 200 and "Forget this person" in confirm.text
    no_csrf = await marketer.client.post(url, data={})
    assert no_csrf.status_code == 403
    assert (await marketer.client.get(f"/contacts/{ids['alan']}")).status_code == 200
    done = await marketer.post(url)
    assert done.status_code == 303
    assert done.headers["location"] == "/contacts?done=forgotten"
    listing = await marketer.get(done.headers["location"])
    assert "never added again" in listing.text
    assert (await marketer.get(f"/contacts/{ids['alan']}")).status_code == 404
    async with users.services.db.read() as conn:
        assert await find_contact_id(conn, "alan@shop.test") is None
        assert await is_forgotten(conn, "alan@shop.test")
    assert (await marketer.post(url)).status_code == 404
