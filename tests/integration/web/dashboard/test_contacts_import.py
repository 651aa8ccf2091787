"""Dashboard CSV import: the upload, the background job and its progress page, bad rows
by line, whole-file refusals, permissions and CSRF."""

from __future__ import annotations

import asyncio
import re

from tests.integration.web.dashboard.conftest import Browser, Users

from courriel.marketing.contacts import find_contact_id, get_contact
from courriel.web.dashboard import contacts_import

GOOD = (
    "email,first_name,country,plan\r\n"
    "ada@shop.test,Ada,GB,gold\r\n"
    "not-an-address,Bob,GB,\r\n"
    "grace@shop.test,Grace,US,silver\r\n"
    "eve@shop.test,Eve,XX,\r\n"
)


async def _upload(
    browser: Browser, text: str | bytes, **fields: str
) -> tuple[str, contacts_import.ImportJob]:
    content = text.encode() if isinstance(text, str) else text
    response = await browser.post(
        "/contacts/import", data=fields, files={"file": ("people.csv", content, "text/csv")}
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    job_id = location.rsplit("/", 1)[1]
    job = contacts_import._JOBS[job_id]
    if job.task is not None:
        await asyncio.gather(job.task)
    return location, job


async def test_import_reports_counts_and_bad_rows_by_line(users: Users) -> None:
    marketer = await users.login("marketer")
    form = await marketer.get("/contacts/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    location, job = await _upload(marketer, GOOD, list="Buyers", consent="subscribed")
    assert job.state == "done"
    page = await marketer.get(location)
    assert page.status_code == 200
    text = page.text
    assert "done" in text and "hx-trigger" not in text  # finished: no more polling
    assert re.search(r'<div class="value">2</div><div class="label">new</div>', text)
    assert re.search(r"<td>3</td><td>email</td>", text)  # line 3: the bad address
    assert re.search(r"<td>5</td><td>country</td>", text)  # line 5: no such country
    async with users.services.db.read() as conn:
        ada = await find_contact_id(conn, "ada@shop.test")
        assert ada is not None
        contact = await get_contact(conn, ada)
    assert contact.email_status == "subscribed" and contact.attributes == {"plan": "gold"}
    listing = await marketer.get("/contacts", params={"q": "ada"})
    assert "ada@shop.test" in listing.text
    # Importing the same file again changes nothing.
    _, again = await _upload(marketer, GOOD, list="Buyers", consent="subscribed")
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 2)


async def test_the_fragment_polls_while_running(users: Users) -> None:
    marketer = await users.login("marketer")
    response = await marketer.post(
        "/contacts/import", files={"file": ("a.csv", GOOD.encode(), "text/csv")}
    )
    job_id = response.headers["location"].rsplit("/", 1)[1]
    job = contacts_import._JOBS[job_id]
    # Seen before the task ran a step: the fragment asks htmx to poll it again.
    fragment = await marketer.get(response.headers["location"], headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    if job.state == "running":
        assert f'hx-get="/contacts/import/{job_id}"' in fragment.text
        assert 'hx-trigger="every 1s"' in fragment.text
    assert job.task is not None or job.state != "running"
    if job.task is not None:
        await asyncio.gather(job.task)
    done = await marketer.get(response.headers["location"], headers={"HX-Request": "true"})
    # Four data rows read: two taken, two refused.
    assert "hx-trigger" not in done.text and "4 rows read" in done.text


async def test_unusable_files_fail_with_the_reason(users: Users) -> None:
    owner = await users.login("owner")
    _, no_email = await _upload(owner, "name,country\r\nAda,GB\r\n")
    assert no_email.state == "failed" and "email" in no_email.message
    _, latin1 = await _upload(
        owner, "email,first_name\r\nz@shop.test,Jos\xe9\r\n".encode("latin-1")
    )
    assert latin1.state == "failed" and "UTF-8" in latin1.message
    page = await owner.get(f"/contacts/import/{latin1.id}")
    assert "The import failed" in page.text


async def test_form_errors_are_422(users: Users) -> None:
    marketer = await users.login("marketer")
    no_file = await marketer.post("/contacts/import", data={"list": "x"})
    assert no_file.status_code == 422 and "Choose a CSV file" in no_file.text
    bad_consent = await marketer.post(
        "/contacts/import",
        data={"consent": "maybe"},
        files={"file": ("a.csv", b"email\r\na@shop.test\r\n", "text/csv")},
    )
    assert bad_consent.status_code == 422


async def test_viewers_cannot_import_and_csrf_is_required(users: Users) -> None:
    viewer = await users.login("viewer")
    assert (await viewer.get("/contacts/import")).status_code == 403
    refused = await viewer.post(
        "/contacts/import", files={"file": ("a.csv", GOOD.encode(), "text/csv")}
    )
    assert refused.status_code == 403
    marketer = await users.login("marketer")
    no_csrf = await marketer.client.post(
        "/contacts/import", files={"file": ("a.csv", GOOD.encode(), "text/csv")}
    )
    assert no_csrf.status_code == 403
    async with users.services.db.read() as conn:
        assert await find_contact_id(conn, "ada@shop.test") is None
    _, job = await _upload(marketer, GOOD)
    assert (await viewer.get(f"/contacts/import/{job.id}")).status_code == 403
    assert (await marketer.get("/contacts/import/unknown-job")).status_code == 404
