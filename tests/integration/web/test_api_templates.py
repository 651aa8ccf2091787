"""``/api/v1/templates`` over HTTP: CRUD, scopes, problem JSON (422) with line and column."""

from __future__ import annotations

import httpx
from tests.integration.web.conftest import MakeKey, assert_problem

MJML = (
    "<mjml><mj-body><mj-section><mj-column>\n"
    "<mj-text>Hi {{ contact.first_name | default('there') }} {{ data.code }}</mj-text>\n"
    "<mj-text>{% for p in recommendations('best_sellers', 2) %}{{ p.title }};{% endfor %}"
    "</mj-text>\n</mj-column></mj-section></mj-body></mjml>"
)


async def test_crud_and_preview(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    made = await client.post(
        "/api/v1/templates", json={"name": "Welcome", "kind": "mjml", "source": MJML}, headers=auth
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["name"] == "Welcome" and body["kind"] == "mjml" and "<mj-" not in body["html"]
    template_id = body["id"]

    listed = (await client.get("/api/v1/templates", headers=auth)).json()
    assert [t["name"] for t in listed["data"]] == ["Welcome"] and listed["next"] is None
    assert "source" not in listed["data"][0]
    one = (await client.get(f"/api/v1/templates/{template_id}", headers=auth)).json()
    assert one["source"] == MJML

    contact = await client.put(
        "/api/v1/contacts", json={"email": "zoe@shop.example", "first_name": "Zoé"}, headers=auth
    )
    assert contact.status_code in (200, 201), contact.text
    preview = await client.post(
        f"/api/v1/templates/{template_id}/preview",
        json={
            "contact_id": contact.json()["id"],
            "data": {"code": "SPRING"},
            "subject": "{{ contact.first_name }}!",
        },
        headers=auth,
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["subject"] == "Zoé!"
    assert "Hi Zoé SPRING" in shown["text"] and "Sample product 2;" in shown["text"]
    assert "Hi Zoé SPRING" in shown["html"]

    replaced = await client.put(
        f"/api/v1/templates/{template_id}",
        json={"source": "<p>{{ shop.name }}</p>", "kind": "html"},
        headers=auth,
    )
    assert replaced.status_code == 200 and replaced.json()["html"] == "<p>{{ shop.name }}</p>"
    gone = await client.delete(f"/api/v1/templates/{template_id}", headers=auth)
    assert gone.status_code == 204
    assert_problem(await client.get(f"/api/v1/templates/{template_id}", headers=auth), 404)


async def test_bad_source_is_a_problem_with_line_and_column(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad = MJML.replace("{{ data.code }}", "{{ data.code( }}")
    answer = await client.post(
        "/api/v1/templates", json={"name": "Bad", "kind": "mjml", "source": bad}, headers=auth
    )
    problem = assert_problem(answer, 422, field="source")
    assert problem["detail"].startswith("line 2, column "), problem
    ssti = await client.post(
        "/api/v1/templates",
        json={"name": "X", "kind": "html", "source": "<p>\n{{ cycler.__init__.__globals__ }}</p>"},
        headers=auth,
    )
    problem = assert_problem(ssti, 422, field="source")
    assert problem["detail"].startswith("line 2, column 4:")
    assert (await client.get("/api/v1/templates", headers=auth)).json()["data"] == []
    made = await client.post(
        "/api/v1/templates", json={"name": "Ok", "source": "<p>x</p>"}, headers=auth
    )
    assert made.status_code == 201
    again = await client.post(
        "/api/v1/templates", json={"name": "Ok", "source": "<p>x</p>"}, headers=auth
    )
    assert_problem(again, 409)


async def test_scopes(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    reader = await make_key("templates:read")
    writer = await make_key("templates:write")
    other = await make_key("contacts:read")
    payload = {"name": "S", "source": "<p>x</p>"}
    assert_problem(await client.post("/api/v1/templates", json=payload, headers=reader), 403)
    assert_problem(await client.get("/api/v1/templates", headers=other), 403)
    assert_problem(await client.get("/api/v1/templates"), 401)
    made = await client.post("/api/v1/templates", json=payload, headers=writer)
    assert made.status_code == 201
    assert (await client.get("/api/v1/templates", headers=reader)).status_code == 200
