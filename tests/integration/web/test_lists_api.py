"""/api/v1/lists and the /u/confirm double opt-in pages, on both databases."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from tests.integration.web.conftest import Clock, assert_problem

from courriel.testing.mail import RecordingMailer


async def test_list_crud(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    made = await client.post("/api/v1/lists", json={"name": " News "}, headers=auth)
    assert made.status_code == 201, made.text
    news = made.json()
    assert (news["name"], news["double_opt_in"], news["subscribed"]) == ("News", False, 0)
    assert_problem(await client.post("/api/v1/lists", json={"name": "News"}, headers=auth), 409)
    assert_problem(await client.post("/api/v1/lists", json={"name": ""}, headers=auth), 422, "name")
    assert_problem(
        await client.post(
            "/api/v1/lists", json={"name": "x", "double_opt_in": "yes"}, headers=auth
        ),
        422,
        "double_opt_in",
    )
    listed = (await client.get("/api/v1/lists", headers=auth)).json()
    assert [item["name"] for item in listed["data"]] == ["News"]
    assert (await client.get(f"/api/v1/lists/{news['id']}", headers=auth)).json() == news
    assert (await client.delete(f"/api/v1/lists/{news['id']}", headers=auth)).status_code == 204
    assert_problem(await client.get(f"/api/v1/lists/{news['id']}", headers=auth), 404)
    assert_problem(await client.delete(f"/api/v1/lists/{news['id']}", headers=auth), 404)


async def test_members_of_a_plain_list(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    list_id = (await client.post("/api/v1/lists", json={"name": "Plain"}, headers=auth)).json()[
        "id"
    ]
    for i in range(3):
        added = await client.post(
            f"/api/v1/lists/{list_id}/members",
            json={"email": f"m{i}@shop.test", "method": "form", "ip": "192.0.2.1"},
            headers=auth,
        )
        assert added.status_code == 200, added.text
        assert added.json()["status"] == "subscribed"
    contact = (await client.get("/api/v1/contacts/m0@shop.test", headers=auth)).json()
    assert contact["email_status"] == "subscribed"
    first = (await client.get(f"/api/v1/lists/{list_id}/members?limit=2", headers=auth)).json()
    assert [m["email"] for m in first["data"]] == ["m0@shop.test", "m1@shop.test"]
    rest = await client.get(
        f"/api/v1/lists/{list_id}/members", params={"after": first["next"]}, headers=auth
    )
    assert [m["email"] for m in rest.json()["data"]] == ["m2@shop.test"]
    assert rest.json()["next"] is None
    gone = await client.delete(f"/api/v1/lists/{list_id}/members/m1@shop.test", headers=auth)
    assert gone.status_code == 204
    assert_problem(
        await client.delete(f"/api/v1/lists/{list_id}/members/m1@shop.test", headers=auth), 404
    )
    unsub = await client.get(
        f"/api/v1/lists/{list_id}/members", params={"status": "unsubscribed"}, headers=auth
    )
    assert [m["email"] for m in unsub.json()["data"]] == ["m1@shop.test"]
    assert_problem(
        await client.post(f"/api/v1/lists/{list_id}/members", json={}, headers=auth), 422, "email"
    )
    assert_problem(
        await client.post("/api/v1/lists/999/members", json={"email": "a@b.test"}, headers=auth),
        404,
    )
    assert_problem(
        await client.post(
            f"/api/v1/lists/{list_id}/members", json={"contact_id": 999}, headers=auth
        ),
        404,
    )


async def test_double_opt_in_flow(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer, clock: Clock
) -> None:
    made = await client.post(
        "/api/v1/lists", json={"name": "Weekly", "double_opt_in": True}, headers=auth
    )
    list_id = made.json()["id"]
    added = await client.post(
        f"/api/v1/lists/{list_id}/members", json={"email": "d@shop.test"}, headers=auth
    )
    assert added.status_code == 202, added.text
    assert added.json()["status"] == "pending"
    assert len(mailer.sent) == 1
    mail = mailer.sent[0]
    assert mail.recipient == "d@shop.test"
    assert mail.sender == "noreply@mail.shop.test"
    text = mail.message.replace(b"=\r\n", b"").decode()
    link = re.search(r"https://mail\.shop\.test(/u/confirm/[A-Za-z0-9_.\-]+)", text)
    assert link is not None, text
    path = link.group(1)

    page = await client.get(path)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert 'method="post"' in page.text
    # A GET (a mail scanner) changes nothing.
    contact = (await client.get("/api/v1/contacts/d@shop.test", headers=auth)).json()
    assert contact["email_status"] == "pending"

    done = await client.post(path)
    assert done.status_code == 200
    assert "Weekly" in done.text
    contact = (await client.get("/api/v1/contacts/d@shop.test", headers=auth)).json()
    assert contact["email_status"] == "subscribed"
    proof = (await client.get("/api/v1/contacts/d@shop.test/consent", headers=auth)).json()
    assert [p["method"] for p in proof["data"]] == ["api", "double_opt_in"]

    tampered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")
    assert (await client.get(tampered)).status_code == 400
    assert (await client.post(tampered)).status_code == 400
    clock.advance(timedelta(days=365))
    expired = await client.post(path)
    assert expired.status_code == 400
    assert "<script" not in expired.text
