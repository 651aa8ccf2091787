"""Dashboard lists pages: roles, CSRF, counts on demand, members paged, double opt-in, 404s.

Every role reads; marketers and owners create, delete, add and remove members. Runs on
both engines.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event
from tests.integration.web.dashboard.conftest import Users

from courriel.marketing.consent import consent_history
from courriel.marketing.contacts import find_contact_id, upsert_contact
from courriel.marketing.lists import create_list, list_lists, members, subscribe
from courriel.marketing.types import ContactData, MailingList
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices
from courriel.web.dashboard.lists_pages import PAGE


async def _list(services: WebServices, name: str = "News", *, doi: bool = False) -> MailingList:
    async with services.db.write() as conn:
        return await create_list(conn, name=name, double_opt_in=doi, now=services.clock())


async def _subscribe(services: WebServices, list_id: int, *emails: str) -> list[int]:
    ids = []
    async with services.db.write() as conn:
        for email in emails:
            contact_id = await upsert_contact(conn, ContactData(email=email), now=services.clock())
            await subscribe(conn, list_id, contact_id, method="import", now=services.clock())
            ids.append(contact_id)
    return ids


async def _member_rows(services: WebServices, list_id: int) -> list[tuple[str, str]]:
    async with services.db.read() as conn:
        return [(m.email, m.status) for m in await members(conn, list_id)]


async def test_viewer_reads_lists_and_members_but_cannot_write(
    users: Users, services: WebServices
) -> None:
    news = await _list(services)
    [ann] = await _subscribe(services, news.id, "ann@shop.test")
    viewer = await users.login("viewer")
    index = await viewer.get("/lists")
    assert index.status_code == 200 and 'aria-current="page"' in index.text
    assert f'href="/lists/{news.id}"' in index.text
    assert 'action="/lists"' not in index.text  # no create form
    detail = await viewer.get(f"/lists/{news.id}")
    assert detail.status_code == 200 and "ann@shop.test" in detail.text
    assert "/members" not in detail.text and "/delete" not in detail.text
    count = await viewer.get(f"/lists/{news.id}/count")
    assert count.status_code == 200 and "<strong>1</strong> subscribed" in count.text
    forbidden = [
        ("/lists", {"name": "Other"}),
        (f"/lists/{news.id}/members", {"email": "bob@shop.test"}),
        (f"/lists/{news.id}/members/{ann}/remove", {}),
        (f"/lists/{news.id}/delete", {}),
    ]
    for url, form in forbidden:
        assert (await viewer.post(url, form)).status_code == 403, url
    assert await _member_rows(services, news.id) == [("ann@shop.test", "subscribed")]
    async with services.db.read() as conn:
        assert [item.name for item in await list_lists(conn)] == ["News"]


async def test_posts_without_csrf_are_refused(users: Users, services: WebServices) -> None:
    news = await _list(services)
    [ann] = await _subscribe(services, news.id, "ann@shop.test")
    marketer = await users.login("marketer")
    for url, form in [
        ("/lists", {"name": "Other"}),
        (f"/lists/{news.id}/members", {"email": "bob@shop.test"}),
        (f"/lists/{news.id}/members/{ann}/remove", {}),
        (f"/lists/{news.id}/delete", {}),
    ]:
        assert (await marketer.client.post(url, data=form)).status_code == 403, url
    assert await _member_rows(services, news.id) == [("ann@shop.test", "subscribed")]


class _Statements:
    """The SQL texts the app's engine runs inside the ``with`` (lower case)."""

    def __init__(self, services: WebServices) -> None:
        self.engine = services.db.engine.sync_engine
        self.sql: list[str] = []

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sql.append(statement.lower())

    def __enter__(self) -> _Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def counts_members(self) -> bool:
        return any("list_members" in sql and "count(" in sql for sql in self.sql)


async def test_pages_count_nothing_until_asked(users: Users, services: WebServices) -> None:
    news = await _list(services)
    await _list(services, "Weekly", doi=True)
    await _subscribe(services, news.id, "a@shop.test", "b@shop.test")
    viewer = await users.login("viewer")
    with _Statements(services) as seen:
        index = await viewer.get("/lists")
    assert not any("list_members" in sql for sql in seen.sql)
    assert f'hx-get="/lists/{news.id}/count"' in index.text
    assert "subscribed" not in index.text  # no count rendered on load
    assert index.text.index("News") < index.text.index("Weekly")
    with _Statements(services) as seen:
        detail = await viewer.get(f"/lists/{news.id}")
    assert detail.status_code == 200 and not seen.counts_members()
    with _Statements(services) as seen:
        count = await viewer.get(f"/lists/{news.id}/count", headers={"HX-Request": "true"})
    assert seen.counts_members()
    assert "<strong>2</strong> subscribed" in count.text
    assert "<strong>0</strong> pending" in count.text
    assert "<html" not in count.text  # a fragment


async def test_marketer_creates_a_list_and_adds_a_member(
    users: Users, services: WebServices, mailer: RecordingMailer
) -> None:
    marketer = await users.login("marketer")
    made = await marketer.post("/lists", {"name": "  VIP news  "})
    assert made.status_code == 303
    location = made.headers["location"]
    assert re.fullmatch(r"/lists/\d+\?created=1", location)
    list_id = int(location.split("/")[2].split("?")[0])
    assert "List created." in (await marketer.get(location)).text
    added = await marketer.post(f"/lists/{list_id}/members", {"email": "Ann@Shop.Test"})
    assert added.status_code == 303 and added.headers["location"].endswith("?added=subscribed")
    page = await marketer.get(added.headers["location"])
    assert "Member added and subscribed." in page.text and "ann@shop.test" in page.text
    assert await _member_rows(services, list_id) == [("ann@shop.test", "subscribed")]
    assert mailer.sent == []  # a plain list sends nothing
    async with services.db.read() as conn:
        contact_id = await find_contact_id(conn, "ann@shop.test")
        assert contact_id is not None
        history = await consent_history(conn, contact_id)
    assert [(c.status, c.method) for c in history] == [("subscribed", "dashboard")]


async def test_double_opt_in_member_is_pending_and_gets_the_mail(
    users: Users, services: WebServices, mailer: RecordingMailer
) -> None:
    owner = await users.login("owner")
    made = await owner.post("/lists", {"name": "Weekly", "double_opt_in": "on"})
    list_id = int(made.headers["location"].split("/")[2].split("?")[0])
    async with services.db.read() as conn:
        assert [(i.name, i.double_opt_in) for i in await list_lists(conn)] == [("Weekly", True)]
    added = await owner.post(f"/lists/{list_id}/members", {"email": "dee@shop.test"})
    assert added.headers["location"].endswith("?added=pending")
    assert "pending until they follow the link" in (await owner.get(added.headers["location"])).text
    assert await _member_rows(services, list_id) == [("dee@shop.test", "pending")]
    assert [m.recipient for m in mailer.sent] == ["dee@shop.test"]
    assert b"/u/confirm/" in mailer.sent[0].message.replace(b"=\r\n", b"")


async def test_bad_input_re_renders_with_the_message(
    users: Users, services: WebServices, mailer: RecordingMailer
) -> None:
    news = await _list(services)
    marketer = await users.login("marketer")
    empty = await marketer.post("/lists", {"name": "   "})
    assert empty.status_code == 422 and "a list needs a name" in empty.text
    taken = await marketer.post("/lists", {"name": "News", "double_opt_in": "on"})
    assert taken.status_code == 422 and "exists already" in taken.text
    assert 'value="News"' in taken.text and "checked" in taken.text  # input kept
    bad_email = await marketer.post(f"/lists/{news.id}/members", {"email": "not an address"})
    assert bad_email.status_code == 422 and 'role="alert"' in bad_email.text
    assert 'value="not an address"' in bad_email.text
    no_email = await marketer.post(f"/lists/{news.id}/members", {"email": ""})
    assert no_email.status_code == 422 and "give the member" in no_email.text
    bad_status = await marketer.get(f"/lists/{news.id}?status=gone")
    assert bad_status.status_code == 422 and "status must be one of" in bad_status.text
    assert await _member_rows(services, news.id) == []
    assert mailer.sent == []
    async with services.db.read() as conn:
        assert [item.name for item in await list_lists(conn)] == ["News"]


async def test_members_are_paged_by_id_and_filtered(users: Users, services: WebServices) -> None:
    news = await _list(services)
    emails = [f"m{i:03}@shop.test" for i in range(PAGE + 5)]
    ids = await _subscribe(services, news.id, *emails)
    viewer = await users.login("viewer")
    first = await viewer.get(f"/lists/{news.id}")
    assert emails[PAGE - 1] in first.text and emails[PAGE] not in first.text
    assert f'href="/lists/{news.id}?after={ids[PAGE - 1]}"' in first.text
    second = await viewer.get(f"/lists/{news.id}?after={ids[PAGE - 1]}")
    assert emails[PAGE] in second.text and emails[-1] in second.text
    assert emails[0] not in second.text and "Next page" not in second.text
    marketer = await users.login("marketer")
    gone = await marketer.post(f"/lists/{news.id}/members/{ids[0]}/remove")
    assert gone.status_code == 303 and gone.headers["location"] == f"/lists/{news.id}?removed=1"
    only = await viewer.get(f"/lists/{news.id}?status=unsubscribed")
    assert emails[0] in only.text and emails[1] not in only.text


async def test_remove_member_then_delete_the_list(users: Users, services: WebServices) -> None:
    news = await _list(services)
    [ann] = await _subscribe(services, news.id, "ann@shop.test")
    marketer = await users.login("marketer")
    assert (await marketer.post(f"/lists/{news.id}/members/{ann}/remove")).status_code == 303
    assert await _member_rows(services, news.id) == [("ann@shop.test", "unsubscribed")]
    again = await marketer.post(f"/lists/{news.id}/members/{ann}/remove")
    assert again.status_code == 404 and "not a subscribed or pending member" in again.text
    deleted = await marketer.post(f"/lists/{news.id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/lists?deleted=News"
    assert "List News deleted" in (await marketer.get(deleted.headers["location"])).text
    async with services.db.read() as conn:
        assert await list_lists(conn) == []
        assert await find_contact_id(conn, "ann@shop.test") == ann  # the contact stays


@pytest.mark.parametrize("bad_id", ["999999", str(2**63), str(2**63 - 1), "0"])
async def test_unknown_ids_are_a_404_page(users: Users, services: WebServices, bad_id: str) -> None:
    news = await _list(services)
    marketer = await users.login("marketer")
    for response in [
        await marketer.get(f"/lists/{bad_id}"),
        await marketer.get(f"/lists/{bad_id}/count"),
        await marketer.post(f"/lists/{bad_id}/members", {"email": "a@shop.test"}),
        await marketer.post(f"/lists/{bad_id}/members/1/remove"),
        await marketer.post(f"/lists/{bad_id}/delete"),
        await marketer.post(f"/lists/{news.id}/members/{bad_id}/remove"),
    ]:
        assert response.status_code == 404, (response.request.url, response.text[:200])
        assert 'role="alert"' in response.text and "<html" in response.text
