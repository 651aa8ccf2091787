"""Dashboard email templates over HTTP: roles, CSRF, saving through the compiler, previews,
test sends (both engines).

The Mailer here is the shared recorder (courriel.testing.mail) over the test database,
which runs ``on_commit`` in a real write transaction (as the delivery committer does),
because a test send is a transactional message whose row turns ``queued`` in that hook.
"""

from __future__ import annotations

import email
import email.policy
import html

import pytest
from sqlalchemy import select
from tests.integration.web.dashboard.conftest import Users

from courriel.errors import NotFound
from courriel.mailstore.domains import add_domain
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.templates.service import (
    Template,
    add_template,
    get_template,
    get_template_by_name,
)
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.campaigns import transactional_messages
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices

GOOD = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ contact.first_name | default("there") }}</mj-text>
<mj-text>{% for p in recommendations("best_sellers", 2) %}<p>{{ p.title }}</p>{% endfor %}</mj-text>
</mj-column></mj-section></mj-body></mjml>"""
BAD = """<mjml><mj-body>
<mj-section><mj-column><mj-text>{{ customer.name }}</mj-text></mj-column></mj-section>
</mj-body></mjml>"""


@pytest.fixture
def mailer(database: Database) -> RecordingMailer:  # replaces the web conftest's mailer
    return RecordingMailer(database)


@pytest.fixture
async def stored(services: WebServices) -> Template:
    async with services.db.write() as conn:
        await upsert_contact(
            conn, ContactData(email="ada@example.test", first_name="Ada"), now=services.clock()
        )
        return await add_template(
            conn, name="welcome", kind="mjml", source=GOOD, now=services.clock()
        )


async def _template(services: WebServices, template_id: int) -> Template:
    async with services.db.read() as conn:
        return await get_template(conn, template_id)


@pytest.mark.parametrize("role", ["viewer", "marketer", "owner"])
async def test_every_role_reads_the_list_editor_and_preview(
    users: Users, stored: Template, role: str
) -> None:
    browser = await users.login(role)
    listing = await browser.get("/templates")
    assert listing.status_code == 200
    assert "welcome" in listing.text and "MJML" in listing.text
    assert (f'action="/templates/{stored.id}/delete"' in listing.text) is (role != "viewer")
    for url in (
        f"/templates/{stored.id}/edit",
        "/templates/new",
        f"/templates/{stored.id}/preview",
    ):
        response = await browser.get(url)
        assert response.status_code == 200, (url, response.text)


async def test_a_viewer_may_change_nothing(users: Users, stored: Template) -> None:
    viewer = await users.login("viewer")
    attempts = {
        "/templates": {"name": "other", "kind": "mjml", "source": GOOD},
        f"/templates/{stored.id}": {"source": GOOD.replace("Hello", "Hi")},
        f"/templates/{stored.id}/delete": {},
        f"/templates/{stored.id}/test": {"to": "x@example.test", "from": "shop@shop.test"},
    }
    for url, form in attempts.items():
        response = await viewer.post(url, form)
        assert response.status_code == 403, url
    assert (await _template(users.services, stored.id)).source == GOOD


async def test_posts_without_the_csrf_token_are_refused(users: Users, stored: Template) -> None:
    marketer = await users.login("marketer")
    for url, form in {
        "/templates": {"name": "other", "kind": "mjml", "source": GOOD},
        f"/templates/{stored.id}": {"source": GOOD.replace("Hello", "Hi")},
        f"/templates/{stored.id}/delete": {},
        f"/templates/{stored.id}/test": {"to": "x@example.test"},
    }.items():
        response = await marketer.client.post(url, data=form)
        assert response.status_code == 403, url
        assert "did not come from this site" in response.text
    assert (await _template(users.services, stored.id)).source == GOOD


async def test_a_marketer_creates_a_template(users: Users) -> None:
    marketer = await users.login("marketer")
    response = await marketer.post(
        "/templates", {"name": " spring ", "kind": "mjml", "source": GOOD}
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.endswith("/edit?saved=1")
    async with users.services.db.read() as conn:
        made = await get_template_by_name(conn, "spring")
    assert made.source == GOOD and made.kind == "mjml"
    assert "<table" in made.html and "recommendations(" in made.html
    editor = await marketer.get(location)
    assert editor.status_code == 200
    assert "Saved." in editor.text
    assert GOOD in html.unescape(editor.text)  # the code view holds the source
    assert "/assets/editor.js" in editor.text and "grapesjs-mjml.min.js" in editor.text


async def test_a_compile_error_shows_line_and_column_and_saves_nothing(users: Users) -> None:
    marketer = await users.login("marketer")
    response = await marketer.post("/templates", {"name": "broken", "kind": "mjml", "source": BAD})
    assert response.status_code == 422
    assert "line 2, column" in response.text and "unknown variable" in response.text
    assert BAD in html.unescape(response.text)  # kept for correcting
    async with users.services.db.read() as conn:
        with pytest.raises(NotFound):
            await get_template_by_name(conn, "broken")


async def test_saving_an_existing_template(users: Users, stored: Template) -> None:
    marketer = await users.login("marketer")
    bad = await marketer.post(f"/templates/{stored.id}", {"source": BAD})
    assert bad.status_code == 422 and "line 2, column" in bad.text
    assert (await _template(users.services, stored.id)).source == GOOD
    changed = GOOD.replace("Hello", "Welcome")
    good = await marketer.post(f"/templates/{stored.id}", {"source": changed})
    assert good.status_code == 303
    assert good.headers["location"] == f"/templates/{stored.id}/edit?saved=1"
    assert (await _template(users.services, stored.id)).source == changed


# Formatted by hand, with a head: mrml refuses a CR between <mj-head>'s tags.
FORMATTED = """<mjml>
  <mj-head>
    <mj-title>News</mj-title>
  </mj-head>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hello {{ contact.first_name | default("there") }}</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


async def test_a_textarea_s_crlf_line_breaks_are_stored_as_written(
    users: Users, stored: Template
) -> None:
    # A browser sends a textarea's line breaks as CRLF: the source stored is the LF text
    # the user saw, on create and on save alike.
    marketer = await users.login("marketer")
    sent = FORMATTED.replace("\n", "\r\n")
    made = await marketer.post("/templates", {"name": "formatted", "kind": "mjml", "source": sent})
    assert made.status_code == 303, made.text
    async with users.services.db.read() as conn:
        assert (await get_template_by_name(conn, "formatted")).source == FORMATTED
    saved = await marketer.post(f"/templates/{stored.id}", {"source": sent})
    assert saved.status_code == 303, saved.text
    assert (await _template(users.services, stored.id)).source == FORMATTED


async def test_a_taken_name_is_refused(users: Users, stored: Template) -> None:
    marketer = await users.login("marketer")
    response = await marketer.post(
        "/templates", {"name": "welcome", "kind": "html", "source": "<p>x</p>"}
    )
    assert response.status_code == 409 and "exists already" in response.text
    assert (await _template(users.services, stored.id)).kind == "mjml"


async def test_delete_and_unknown_templates(users: Users, stored: Template) -> None:
    marketer = await users.login("marketer")
    response = await marketer.post(f"/templates/{stored.id}/delete")
    assert response.status_code == 303 and response.headers["location"] == "/templates"
    async with users.services.db.read() as conn:
        with pytest.raises(NotFound):
            await get_template(conn, stored.id)
    assert (await marketer.post(f"/templates/{stored.id}/delete")).status_code == 404
    assert (await marketer.post(f"/templates/{stored.id}", {"source": GOOD})).status_code == 404
    for url in (f"/templates/{stored.id}/edit", f"/templates/{stored.id}/preview"):
        assert (await marketer.get(url)).status_code == 404


async def test_preview_with_a_contact_at_mobile_width(users: Users, stored: Template) -> None:
    viewer = await users.login("viewer")
    by_email = await viewer.get(
        f"/templates/{stored.id}/preview",
        params={
            "contact": "ADA@example.test",
            "width": "mobile",
            "subject": "Hi {{ contact.first_name }}",
        },
    )
    assert by_email.status_code == 200
    assert 'sandbox=""' in by_email.text and 'class="preview-frame mobile"' in by_email.text
    assert "Hello Ada" in html.unescape(by_email.text)  # inside srcdoc, escaped once
    assert "Sample product 1" in html.unescape(by_email.text)
    assert "Hi Ada" in by_email.text
    assert "Send a test" not in by_email.text  # viewers do not send
    sample = await viewer.get(f"/templates/{stored.id}/preview", params={"width": "nonsense"})
    assert sample.status_code == 200 and 'class="preview-frame desktop"' in sample.text
    unknown = await viewer.get(
        f"/templates/{stored.id}/preview", params={"contact": "nobody@example.test"}
    )
    assert unknown.status_code == 404 and "no contact" in unknown.text
    bad = await viewer.get(f"/templates/{stored.id}/preview", params={"contact": "not an address"})
    assert bad.status_code == 422


async def test_a_test_send_goes_through_the_queue(
    users: Users, stored: Template, mailer: RecordingMailer
) -> None:
    await add_domain(users.services.db, "shop.test")
    marketer = await users.login("marketer")
    response = await marketer.post(
        f"/templates/{stored.id}/test",
        {
            "to": "ada@example.test",
            "from": "news@shop.test",
            "subject": "Hi {{ contact.first_name }}",
        },
    )
    assert response.status_code == 200, response.text
    assert "Test sent to ada@example.test" in response.text
    [sent] = mailer.sent
    assert sent.recipient == "ada@example.test"
    message = email.message_from_bytes(sent.message, policy=email.policy.default)
    assert message["Subject"] == "[Test] Hi Ada"
    assert message["From"] == "news@shop.test"
    async with users.services.db.read() as conn:
        row = (await conn.execute(select(transactional_messages))).mappings().one()
    assert row["status"] == "queued" and row["template_id"] == stored.id


async def test_a_test_send_from_a_foreign_domain_is_refused(
    users: Users, stored: Template, mailer: RecordingMailer
) -> None:
    marketer = await users.login("marketer")
    response = await marketer.post(
        f"/templates/{stored.id}/test", {"to": "ada@example.test", "from": "me@elsewhere.test"}
    )
    assert response.status_code == 422
    assert "not one of courriel" in response.text
    assert mailer.sent == []
    missing = await marketer.post("/templates/9999/test", {"to": "ada@example.test"})
    assert missing.status_code == 404
