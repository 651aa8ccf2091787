"""/api/v1/events and /api/v1/suppression on both databases."""

from __future__ import annotations

import hashlib

import httpx
from tests.integration.web.conftest import assert_problem


async def test_event_by_email_creates_contact_and_dedupes(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {
        "email": "e@shop.test",
        "name": "Viewed Product",
        "properties": {"ProductID": "42", "Price": 12.5},
        "value": 12.5,
        "time": "2026-02-01T10:00:00+01:00",
        "unique_key": "view-1",
    }
    first = await client.post("/api/v1/events", json=body, headers=auth)
    assert first.status_code == 201, first.text
    assert first.json()["duplicate"] is False
    again = await client.post("/api/v1/events", json=body, headers=auth)
    assert again.status_code == 200
    assert again.json() == {"id": None, "contact_id": first.json()["contact_id"], "duplicate": True}
    export = (await client.get("/api/v1/contacts/e@shop.test/export", headers=auth)).json()
    events = export["events"]
    assert len(events) == 1
    assert events[0]["name"] == "Viewed Product"
    assert events[0]["properties"] == {"ProductID": "42", "Price": 12.5}
    contact = (await client.get("/api/v1/contacts/e@shop.test", headers=auth)).json()
    assert contact["email_status"] == "never"


async def test_event_by_contact_id(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    contact = (
        await client.put("/api/v1/contacts", json={"email": "f@shop.test"}, headers=auth)
    ).json()
    made = await client.post(
        "/api/v1/events", json={"contact_id": contact["id"], "name": "Custom"}, headers=auth
    )
    assert made.status_code == 201
    assert made.json()["contact_id"] == contact["id"]
    assert_problem(
        await client.post("/api/v1/events", json={"contact_id": 999, "name": "X"}, headers=auth),
        404,
    )


async def test_event_errors(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    cases = [
        ({"name": "X"}, "email"),
        ({"email": "a@shop.test", "contact_id": 1, "name": "X"}, "email"),
        ({"email": "a@shop.test"}, "name"),
        ({"email": "a@shop.test", "name": "  "}, "name"),
        ({"email": "a@shop.test", "name": "X", "time": "2026-02-01T10:00:00"}, "time"),
        ({"email": "a@shop.test", "name": "X", "time": "yesterday"}, "time"),
        ({"email": "a@shop.test", "name": "X", "properties": [1]}, "properties"),
        ({"email": "a@shop.test", "name": "X" * 200}, "name"),
        ({"email": "nope", "name": "X"}, "email"),
    ]
    for body, field in cases:
        assert_problem(await client.post("/api/v1/events", json=body, headers=auth), 422, field)


async def test_suppression(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    added = await client.post(
        "/api/v1/suppression", json={"kind": "address", "value": "Bad@Shop.TEST"}, headers=auth
    )
    assert added.status_code == 201, added.text
    assert added.json() == {"kind": "address", "value": "bad@shop.test"}
    again = await client.post(
        "/api/v1/suppression", json={"kind": "address", "value": "bad@shop.test"}, headers=auth
    )
    assert again.status_code == 201
    digest = hashlib.sha256(b"x@shop.test").hexdigest()
    for body in (
        {"kind": "domain", "value": "spam.test", "reason": "complaint"},
        {"kind": "hash", "value": digest},
    ):
        assert (
            await client.post("/api/v1/suppression", json=body, headers=auth)
        ).status_code == 201
    first = (await client.get("/api/v1/suppression?limit=2", headers=auth)).json()
    rest = (await client.get(f"/api/v1/suppression?after={first['next']}", headers=auth)).json()
    entries = first["data"] + rest["data"]
    assert [(e["kind"], e["value"]) for e in entries] == [
        ("address", "bad@shop.test"),
        ("domain", "spam.test"),
        ("hash", digest),
    ]
    assert rest["next"] is None
    domains = (await client.get("/api/v1/suppression?kind=domain", headers=auth)).json()
    assert [e["reason"] for e in domains["data"]] == ["complaint"]
    assert_problem(
        await client.post("/api/v1/suppression", json={"kind": "ip", "value": "x"}, headers=auth),
        422,
        "kind",
    )
    assert_problem(
        await client.post(
            "/api/v1/suppression", json={"kind": "hash", "value": "zz"}, headers=auth
        ),
        422,
        "value",
    )
    gone = await client.delete("/api/v1/suppression/address/bad@shop.test", headers=auth)
    assert gone.status_code == 204
    assert_problem(
        await client.delete("/api/v1/suppression/address/bad@shop.test", headers=auth), 404
    )
    assert_problem(await client.delete("/api/v1/suppression/ip/x", headers=auth), 422, "kind")
