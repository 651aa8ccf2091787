"""POST/GET /api/v1/messages: transactional mail over HTTP, on both engines.

The Mailer is the shared recorder (courriel.testing.mail) over the test database: a real
implementation of the port that runs ``on_commit`` in a real write transaction (as the
delivery committer does) and keeps the message it was given.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.integration.web.conftest import Clock, MakeKey, assert_problem

from courriel.errors import DeliveryRefused
from courriel.mailstore.domains import add_domain
from courriel.marketing.campaigns.tokens import Ref, parse_verp
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.suppression import suppress
from courriel.marketing.templates.service import add_template
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.campaigns import transactional_messages
from courriel.storage.models.marketing import contacts
from courriel.storage.secrets import shared_secret
from courriel.testing.mail import RecordingMailer
from courriel.web.api.v1.messages import _header_key

URL = "/api/v1/messages"
HTML = (
    "<html><body><p>Hello {{ contact.first_name | default('there') }},</p>"
    "<p>Order {{ data.order }} is on its way: "
    '<a href="https://shop.test/track/{{ data.order }}">track it</a></p></body></html>'
)


@pytest.fixture
def mailer(database: Database) -> RecordingMailer:  # replaces the conftest's: on_commit needs a db
    return RecordingMailer(database)


@pytest.fixture
async def shop(database: Database, clock: Clock) -> None:
    await add_domain(database, "shop.test")
    async with database.write() as conn:
        await add_template(conn, name="shipped", kind="html", source=HTML, now=clock())
        await upsert_contact(
            conn, ContactData(email="ada@example.test", first_name="Ada"), now=clock()
        )


def body(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "template": "shipped",
        "to": "Ada@Example.test",
        "from": "orders@shop.test",
        "subject": "Order {{ data.order }} shipped",
        "data": {"order": "A-17"},
    }
    value.update(overrides)
    return {k: v for k, v in value.items() if v is not None}


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


async def rows(database: Database) -> list[dict[str, Any]]:
    async with database.read() as conn:
        found = await conn.execute(select(transactional_messages))
        return [dict(row) for row in found.mappings()]


@pytest.mark.usefixtures("shop")
async def test_sends_a_personalised_tracked_copy(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer, database: Database
) -> None:
    response = await client.post(URL, json=body(), headers=auth)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "queued"
    assert response.headers["location"] == f"{URL}/{created['id']}"
    [sent] = mailer.sent
    assert sent.transactional is True
    assert sent.recipient == "ada@example.test"
    key = await shared_secret(database, "verp")
    assert parse_verp(key, sent.sender) == Ref("t", created["id"])
    assert sent.sender.endswith("@shop.test")
    message = parsed(sent.message)
    assert message["Subject"] == "Order A-17 shipped"
    assert message["From"] == "orders@shop.test"
    assert "List-Unsubscribe" in message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = text_part(message)
    assert "Hello Ada," in text
    assert "https://shop.test/track/A-17" not in text  # rewritten to a signed redirect
    assert "https://mail.shop.test/c/" in text
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    assert "https://mail.shop.test/o/" in str(html_part.get_content())  # type: ignore[attr-defined]
    [row] = await rows(database)
    assert (row["status"], row["email"], row["subject"]) == (
        "queued",
        "ada@example.test",
        "Order A-17 shipped",
    )
    shown = await client.get(f"{URL}/{created['id']}", headers=auth)
    assert shown.status_code == 200
    assert shown.json()["status"] == "queued"
    assert shown.json()["opened_at"] is None and shown.json()["clicked_at"] is None


@pytest.mark.usefixtures("shop")
async def test_same_key_same_body_replays_the_first_response(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer
) -> None:
    headers = {**auth, "Idempotency-Key": '"order-A-17-shipped"'}
    first = await client.post(URL, json=body(), headers=headers)
    again = await client.post(URL, json=body(), headers=headers)
    in_body = await client.post(URL, json=body(idempotency_key="order-A-17-shipped"), headers=auth)
    assert first.status_code == 202
    assert again.status_code == 200 and in_body.status_code == 200
    assert again.json() == in_body.json() == first.json()
    assert len(mailer.sent) == 1


@pytest.mark.usefixtures("shop")
async def test_same_key_other_body_is_422(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer, database: Database
) -> None:
    headers = {**auth, "Idempotency-Key": "k-1"}
    assert (await client.post(URL, json=body(), headers=headers)).status_code == 202
    other = await client.post(URL, json=body(data={"order": "B-2"}), headers=headers)
    assert_problem(other, 422, "idempotency_key")
    mixed = await client.post(URL, json=body(idempotency_key="k-2"), headers=headers)
    assert_problem(mixed, 422, "idempotency_key")
    assert len(mailer.sent) == 1
    assert len(await rows(database)) == 1


@pytest.mark.usefixtures("shop")
async def test_suppressed_recipient_is_refused_and_nothing_is_queued(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    mailer: RecordingMailer,
    database: Database,
    clock: Clock,
) -> None:
    async with database.write() as conn:
        await suppress(conn, kind="domain", value="example.test", reason="manual", now=clock())
    response = await client.post(URL, json=body(), headers=auth)
    assert_problem(response, 422, "to")
    assert mailer.sent == []
    assert await rows(database) == []


@pytest.mark.usefixtures("shop")
async def test_unsubscribed_contact_still_gets_transactional_mail(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer, database: Database
) -> None:
    async with database.write() as conn:
        await conn.execute(contacts.update().values(email_status="unsubscribed"))
    response = await client.post(URL, json=body(), headers=auth)
    assert response.status_code == 202, response.text
    assert len(mailer.sent) == 1


@pytest.mark.usefixtures("shop")
async def test_unknown_recipient_gets_defaults_and_is_not_made_a_contact(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer, database: Database
) -> None:
    response = await client.post(URL, json=body(to="bob@example.test"), headers=auth)
    assert response.status_code == 202, response.text
    assert "Hello there," in text_part(parsed(mailer.sent[0].message))
    async with database.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(contacts)) == 1


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("change", "status", "field_name"),
    [
        ({"template": "nope"}, 404, None),
        ({"template": 9999}, 404, None),
        ({"to": "not an address"}, 422, "to"),
        ({"from": "orders@elsewhere.test"}, 422, "from"),
        ({"subject": "{{ data.order"}, 422, "subject"),
        # RFC 5322 §2.2: a line break in a header value would inject a header field.
        ({"from_name": "Shop\r\nList-Unsubscribe: <https://evil.example/>"}, 422, "from_name"),
        ({"reply_to": "help@shop.example\r\nBcc: x@evil.example"}, 422, "reply_to"),
        ({"subject": None}, 422, "subject"),
        ({"data": {"order": {"x": 1}}, "subject": "{{ data.order.x.y.z() }}"}, 422, "subject"),
    ],
)
async def test_bad_requests_are_problems_and_write_nothing(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    mailer: RecordingMailer,
    database: Database,
    change: dict[str, Any],
    status: int,
    field_name: str | None,
) -> None:
    response = await client.post(URL, json=body(**change), headers=auth)
    assert_problem(response, status, field_name)
    assert mailer.sent == []
    assert await rows(database) == []


@pytest.mark.usefixtures("shop")
async def test_template_render_error_names_line(
    client: httpx.AsyncClient, auth: dict[str, str], database: Database, clock: Clock
) -> None:
    async with database.write() as conn:
        await add_template(
            conn,
            name="broken",
            kind="html",
            source="<p>\n{% if data.n %}{{ data.n // 0 }}{% endif %}</p>",
            now=clock(),
        )
    response = await client.post(URL, json=body(template="broken", data={"n": 1}), headers=auth)
    problem = assert_problem(response, 422, "template")
    assert "line 2" in problem["detail"]
    assert await rows(database) == []


@pytest.mark.usefixtures("shop")
async def test_missing_fields_are_named(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(URL, json={"template": "shipped"}, headers=auth)
    problem = assert_problem(response, 422)
    assert "to" in problem["detail"] or any(e.get("field") == "to" for e in problem["errors"])


@pytest.mark.usefixtures("shop")
async def test_queue_refusal_is_503_and_the_key_can_be_retried(
    client: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer, database: Database
) -> None:
    headers = {**auth, "Idempotency-Key": "retry-me"}
    mailer.error = DeliveryRefused(451, "4.3.0", "queue full")
    refused = await client.post(URL, json=body(), headers=headers)
    assert_problem(refused, 503)
    assert refused.headers["retry-after"]
    assert await rows(database) == []
    mailer.error = None
    retried = await client.post(URL, json=body(), headers=headers)
    assert retried.status_code == 202
    assert len(mailer.sent) == 1


@pytest.mark.usefixtures("shop")
async def test_scopes(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    reader = await make_key("messages:read")
    assert_problem(await client.post(URL, json=body(), headers=reader), 403)
    writer = await make_key("messages:write")
    created = await client.post(URL, json=body(), headers=writer)
    assert created.status_code == 202
    assert_problem(await client.get(f"{URL}/{created.json()['id']}", headers=writer), 403)
    assert (await client.get(f"{URL}/{created.json()['id']}", headers=reader)).status_code == 200
    assert_problem(await client.get(f"{URL}/99999", headers=reader), 404)


@given(st.text(max_size=300))
def test_idempotency_key_header_parser_never_raises(value: str) -> None:
    # draft-ietf-httpapi-idempotency-key-header §2.1: an sf-string; a bare token works too.
    key = _header_key(value)
    assert key is not None
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert _header_key(quoted) == value
