"""Dashboard email templates: the list, the drag-and-drop MJML editor, previews, test sends.

Owns the pages under ``/templates`` (NAV key ``templates``, area ``marketing``: viewers
read the list and previews, marketers save, delete and test-send). Every action calls the
service the API and the CLI call: :mod:`courriel.marketing.templates.service` to save
(compiled there, so a template that does not compile is refused with its line and column
and nothing is stored), :func:`~courriel.marketing.templates.preview.preview_template` to
preview, and :func:`~courriel.marketing.campaigns.transactional.send_message` for a test
send (templates have no test send of their own; a test is one transactional message,
suppression and sender-domain checks included, its subject prefixed ``[Test] ``), built with
the API's settings (:func:`courriel.web.transactional.transactional_settings`).

Invariants:
- The editor page's GrapesJS code lives in ``static/editor.js``. It runs under the
  dashboard's own Content-Security-Policy, unchanged: the canvas needs only inline styles,
  which that policy allows, once GrapesJS's telemetry and its CDN icon font are turned off
  (the browser test fails on any CSP violation or request leaving the server).
- The visual editor never rewrites a source it would change: ``editor.js`` imports and
  re-exports every source before the canvas may save it, opens one whose export differs in
  the code view (saved exactly as written), and writes the canvas's MJML only when the
  canvas was edited. The form's CRLF line breaks are stored as LF (:func:`_form_source`).
- A preview is shown in an ``<iframe sandbox srcdoc=…>``: no script runs, and the email's
  HTML never shares the dashboard's origin.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect

from courriel.errors import AlreadyExists, DeliveryRefused, InvalidInput, NotFound
from courriel.marketing.campaigns.transactional import MessageRequest, send_message
from courriel.marketing.templates.preview import preview_template
from courriel.marketing.templates.render import RenderedEmail
from courriel.marketing.templates.service import (
    Template,
    add_template,
    delete_template,
    get_template,
    list_templates,
    update_template,
)
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.render import page
from courriel.web.transactional import transactional_settings

__all__ = ["ROUTES", "STARTER", "WIDTHS"]

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

WIDTHS = {"desktop": 660, "mobile": 375}  # preview iframe widths, CSS pixels
MAX_LIST = 1000  # templates listed on one page

STARTER = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text font-size="20px">Hello {{ contact.first_name | default("there") }},</mj-text>
        <mj-text>Write your message here.</mj-text>
        <mj-button href="{{ shop.url }}">Visit the shop</mj-button>
      </mj-column>
    </mj-section>
    <mj-section>
      <mj-column>
        <mj-text font-size="11px">{{ shop.address }} ·
          <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def _not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[str]:
    return page(request, "error.html", status=404, title="Not found", message=str(exc))


def _editor(
    request: Request[Any, Any, Any],
    *,
    template: Template | None,
    name: str,
    kind: str,
    source: str,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    return page(
        request,
        "email_templates/editor.html",
        status=status,
        active="templates",
        title=f"Edit {name}" if template else "New template",
        template=template,
        template_name=name,
        kind=kind,
        source=source,
        **context,
    )


def _form_source(data: dict[str, str]) -> str:
    """The ``source`` field as the user wrote it in the textarea.

    Browsers send a textarea's line breaks as CRLF (HTML's form submission rules), whatever
    the text had: turned back into LF, a template saved from the page unchanged is stored
    unchanged (and mrml, which refuses a CR between the tags of ``<mj-head>``, accepts it).
    """
    return data.get("source", "").replace("\r\n", "\n")


@get("/templates", **allow("marketing"))
async def template_list(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """Every template: name, kind, last update, and its actions."""
    return await _list_page(request, services)


async def _list_page(
    request: Request[Any, Any, Any], services: Services, *, status: int = 200, error: str = ""
) -> Response[str]:
    async with services.db.read() as conn:
        rows = await list_templates(conn, 0, MAX_LIST)
    rows.sort(key=lambda t: t.updated_at, reverse=True)
    return page(
        request,
        "email_templates/list.html",
        status=status,
        active="templates",
        title="Templates",
        templates=rows,
        error=error,
        more=len(rows) == MAX_LIST,
    )


@get("/templates/new", **allow("marketing"))
async def new_template(request: Request[Any, Any, Any]) -> Response[str]:
    """The editor with a starter MJML template."""
    return _editor(request, template=None, name="", kind="mjml", source=STARTER)


@post("/templates", **allow("marketing"))
async def create_template(
    request: Request[Any, Any, Any], services: Services, data: Form
) -> Response[Any]:
    """Compile and store a new template; its editor again with the error when it fails."""
    name, kind, source = data.get("name", ""), data.get("kind", "mjml"), _form_source(data)
    try:
        async with services.db.write() as conn:
            made = await add_template(
                conn, name=name, kind=kind, source=source, now=services.clock()
            )
    except (InvalidInput, AlreadyExists) as exc:
        status = 409 if isinstance(exc, AlreadyExists) else 422
        return _editor(
            request,
            template=None,
            name=name,
            kind=kind if kind in ("mjml", "html") else "mjml",
            source=source,
            status=status,
            error=str(exc),
            error_field=getattr(exc, "field", None) or "name",
        )
    return Redirect(path=f"/templates/{made.id}/edit?saved=1", status_code=303)


@get("/templates/{template_id:int}/edit", **allow("marketing"))
async def edit_template(
    request: Request[Any, Any, Any], services: Services, template_id: FromPath[int]
) -> Response[str]:
    """The editor over a stored template."""
    try:
        async with services.db.read() as conn:
            found = await get_template(conn, template_id)
    except NotFound as exc:
        return _not_found(request, exc)
    saved = request.query_params.get("saved") == "1"
    return _editor(
        request,
        template=found,
        name=found.name,
        kind=found.kind,
        source=found.source,
        done="Saved." if saved else "",
    )


@post("/templates/{template_id:int}", **allow("marketing"))
async def save_template(
    request: Request[Any, Any, Any], services: Services, template_id: FromPath[int], data: Form
) -> Response[Any]:
    """Recompile and store a template's new source (nothing stored when it fails)."""
    source = _form_source(data)
    try:
        async with services.db.write() as conn:
            current = await get_template(conn, template_id)
            await update_template(conn, template_id, source=source, now=services.clock())
    except NotFound as exc:
        return _not_found(request, exc)
    except InvalidInput as exc:
        return _editor(
            request,
            template=current,
            name=current.name,
            kind=current.kind,
            source=source,
            status=422,
            error=str(exc),
            error_field=exc.field or "source",
        )
    return Redirect(path=f"/templates/{template_id}/edit?saved=1", status_code=303)


@post("/templates/{template_id:int}/delete", **allow("marketing"))
async def remove_template(
    request: Request[Any, Any, Any], services: Services, template_id: FromPath[int]
) -> Response[Any]:
    """Delete a template no campaign uses (the list with the reason when one does)."""
    try:
        async with services.db.write() as conn:
            await delete_template(conn, template_id)
    except NotFound as exc:
        return _not_found(request, exc)
    except InvalidInput as exc:
        return await _list_page(request, services, status=422, error=str(exc))
    return Redirect(path="/templates", status_code=303)


def _contact_ref(value: str) -> dict[str, Any]:
    """``preview_template`` keywords for the ``contact`` field: an address or an id."""
    text = value.strip()
    if not text:
        return {}
    if text.isdigit():
        return {"contact_id": int(text)}
    return {"email": text}


async def _render_preview(
    services: Services, template: Template, contact: str, subject: str
) -> RenderedEmail:
    async with services.db.read() as conn:
        return await preview_template(
            conn,
            template,
            subject=subject,
            shop=services.template_shop,
            public_url=services.public_url,
            **_contact_ref(contact),
        )


async def _preview_page(
    request: Request[Any, Any, Any],
    services: Services,
    template_id: FromPath[int],
    *,
    query: dict[str, str],
    status: int = 200,
    **context: Any,
) -> Response[str]:
    try:
        async with services.db.read() as conn:
            found = await get_template(conn, template_id)
    except NotFound as exc:
        return _not_found(request, exc)
    contact, subject = query.get("contact", ""), query.get("subject", "")
    width = query.get("width", "desktop")
    width = width if width in WIDTHS else "desktop"
    rendered, error = None, ""
    try:
        rendered = await _render_preview(services, found, contact, subject)
    except NotFound as exc:
        status, error = 404, str(exc)
    except InvalidInput as exc:
        status, error = 422, str(exc)
    return page(
        request,
        "email_templates/preview.html",
        status=status,
        active="templates",
        title=f"Preview {found.name}",
        template=found,
        contact=contact,
        subject=subject,
        width=width,
        widths=WIDTHS,
        rendered=rendered,
        preview_error=error,
        **context,
    )


@get("/templates/{template_id:int}/preview", **allow("marketing"))
async def preview_page(
    request: Request[Any, Any, Any], services: Services, template_id: FromPath[int]
) -> Response[str]:
    """The template rendered for a contact (or the sample one) at desktop or mobile width."""
    query = {k: str(request.query_params.get(k, "")) for k in ("contact", "subject", "width")}
    return await _preview_page(request, services, template_id, query=query)


@post("/templates/{template_id:int}/test", **allow("marketing"))
async def test_send(
    request: Request[Any, Any, Any], services: Services, template_id: FromPath[int], data: Form
) -> Response[str]:
    """Send the template once to any address, as a transactional message, "[Test] " subject."""
    to = data.get("to", "").strip()
    sender = data.get("from", "").strip() or services.mail_sender
    subject = data.get("subject", "").strip() or "Test"
    query = {"contact": data.get("contact", ""), "subject": subject, "width": data.get("width", "")}
    wanted = MessageRequest(
        template=template_id, to=to, from_address=sender, subject=f"[Test] {subject}"
    )
    settings = await transactional_settings(request.app, services)
    try:
        outcome = await send_message(
            services.db, services.mailer, settings, wanted, now=services.clock()
        )
    except NotFound as exc:
        return _not_found(request, exc)
    except (InvalidInput, DeliveryRefused) as exc:
        temporary = isinstance(exc, DeliveryRefused) and exc.temporary
        message = "the queue cannot take the message now; try again" if temporary else str(exc)
        return await _preview_page(
            request, services, template_id, query=query, status=503 if temporary else 422,
            send_error=message, send_to=to, send_from=sender,
        )  # fmt: skip
    return await _preview_page(
        request, services, template_id, query=query,
        sent=f"Test sent to {to} (message {outcome.id}).", send_to=to, send_from=sender,
    )  # fmt: skip


ROUTES = [
    template_list,
    new_template,
    create_template,
    edit_template,
    save_template,
    remove_template,
    preview_page,
    test_send,
]
