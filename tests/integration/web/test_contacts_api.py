"""/api/v1/contacts through the ASGI app on both databases."""

from __future__ import annotations

import httpx
from tests.integration.web.conftest import MakeKey, assert_problem


async def test_upsert_creates_then_merges(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {
        "email": "Ada@Example.TEST",
        "first_name": " Ada ",
        "tags": ["vip"],
        "attributes": {"shoe": 38},
    }
    created = await client.put("/api/v1/contacts", json=body, headers=auth)
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["email"] == "ada@example.test"
    assert contact["first_name"] == "Ada"
    assert contact["source"] == "api"
    again = await client.put(
        "/api/v1/contacts",
        json={
            "email": "Ada@example.test",
            "last_name": "Lovelace",
            "tags": ["new"],
            "attributes": {"size": "M"},
        },
        headers=auth,
    )
    assert again.status_code == 200, again.text
    merged = again.json()
    assert merged["id"] == contact["id"]
    assert (merged["first_name"], merged["last_name"]) == ("Ada", "Lovelace")
    assert merged["tags"] == ["new", "vip"]
    assert merged["attributes"] == {"shoe": 38, "size": "M"}


async def test_get_by_id_and_address(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    made = (
        await client.put("/api/v1/contacts", json={"email": "b@shop.test"}, headers=auth)
    ).json()
    by_id = await client.get(f"/api/v1/contacts/{made['id']}", headers=auth)
    by_mail = await client.get("/api/v1/contacts/B@SHOP.test", headers=auth)
    assert by_id.json() == by_mail.json() == made
    assert_problem(await client.get("/api/v1/contacts/999", headers=auth), 404)
    assert_problem(await client.get("/api/v1/contacts/x@nowhere.test", headers=auth), 404)
    assert_problem(await client.get("/api/v1/contacts/nonsense", headers=auth), 422, "contact")
    # "²" passes str.isdigit but not int(): a 422, never a 500.
    assert_problem(await client.get("/api/v1/contacts/%C2%B2", headers=auth), 422, "contact")


async def test_upsert_errors_name_the_field(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cases = [
        ({"email": "not an address"}, "email"),
        ({"email": "a@shop.test", "phone": "call me"}, "phone"),
        ({"email": "a@shop.test", "country": "France"}, "country"),
        ({"email": "a@shop.test", "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"email": "a@shop.test", "first_name": 12}, "first_name"),
        ({"email": "a@shop.test", "colour": "red"}, "colour"),
        ({"first_name": "x"}, "email"),
        (
            {"email": "a@shop.test", "consent": [{"channel": "fax", "status": "subscribed"}]},
            "consent/0/channel",
        ),
    ]
    for body, field in cases:
        response = await client.put("/api/v1/contacts", json=body, headers=auth)
        problem = assert_problem(response, 422, field)
        assert problem["errors"][0]["field"] == field


async def test_bad_json_is_400(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.put(
        "/api/v1/contacts",
        content=b'{"email": ',
        headers={**auth, "content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_consent_with_proof(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {
        "email": "c@shop.test",
        "consent": [
            {
                "channel": "email",
                "status": "subscribed",
                "method": "form",
                "ip": "192.0.2.7",
                "detail": "footer form",
            }
        ],
    }
    contact = (await client.put("/api/v1/contacts", json=body, headers=auth)).json()
    assert contact["email_status"] == "subscribed"
    assert contact["sms_status"] == "never"
    proof = (await client.get("/api/v1/contacts/c@shop.test/consent", headers=auth)).json()
    assert [(p["channel"], p["status"], p["method"], p["ip"]) for p in proof["data"]] == [
        ("email", "subscribed", "form", "192.0.2.7")
    ]


async def test_search_pages_by_cursor(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for i in range(5):
        await client.put("/api/v1/contacts", json={"email": f"p{i}@shop.test"}, headers=auth)
    await client.put("/api/v1/contacts", json={"email": "zed@shop.test"}, headers=auth)
    seen: list[str] = []
    after = "0"
    pages = 0
    while after is not None:
        got = await client.get(
            "/api/v1/contacts", params={"q": "P", "after": after, "limit": 2}, headers=auth
        )
        assert got.status_code == 200, got.text
        body = got.json()
        seen += [c["email"] for c in body["data"]]
        after = body["next"]
        pages += 1
    assert seen == [f"p{i}@shop.test" for i in range(5)]
    assert pages == 3
    assert_problem(await client.get("/api/v1/contacts?limit=0", headers=auth), 400, "limit")
    assert_problem(await client.get("/api/v1/contacts?after=x", headers=auth), 400, "after")


async def test_delete_forgets_and_blocks_readding(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.put("/api/v1/contacts", json={"email": "gone@shop.test"}, headers=auth)
    exported = await client.get("/api/v1/contacts/gone@shop.test/export", headers=auth)
    assert exported.status_code == 200
    assert exported.json()["contact"]["email"] == "gone@shop.test"
    deleted = await client.delete("/api/v1/contacts/gone@shop.test", headers=auth)
    assert deleted.status_code == 204
    assert_problem(await client.get("/api/v1/contacts/gone@shop.test", headers=auth), 404)
    assert_problem(await client.delete("/api/v1/contacts/gone@shop.test", headers=auth), 404)
    again = await client.put("/api/v1/contacts", json={"email": "gone@shop.test"}, headers=auth)
    assert_problem(again, 422, "email")


async def test_scopes(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    reader = await make_key("contacts:read")
    denied = await client.put("/api/v1/contacts", json={"email": "d@shop.test"}, headers=reader)
    problem = assert_problem(denied, 403)
    assert "contacts:write" in problem["detail"]
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert (await client.get("/api/v1/contacts", headers=reader)).status_code == 200
