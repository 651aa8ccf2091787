"""``/api/v1/messages``: transactional mail (issue 6 §8), one template to one recipient.

Owns the HTTP side: the request body, the ``Idempotency-Key`` header
(draft-ietf-httpapi-idempotency-key-header), status codes and the settings a send is built
with. What a send does is :mod:`courriel.marketing.campaigns.transactional`'s business.

Status codes: 202 for a message queued now, 200 for a replay of a key already used with
the same body (the first request's id and current status), 422 for a bad or missing field,
a suppressed recipient, a template that fails to render, or a key reused with another body
(draft §2.7), 409 while the key's first request is still being sent (draft §2.6), 404 for an
unknown template, 503 when the queue cannot take the message now (retry with the same key).

Settings: :func:`courriel.web.transactional.transactional_settings` (shop.*,
tracking.open_pixel, the Feedback-ID sender and the VERP key, read once per app), the same
function the dashboard's test send calls.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.types import ControllerRouterHandler

from courriel.errors import DeliveryRefused, InvalidInput
from courriel.marketing.campaigns.transactional import MessageRequest, get_message, send_message
from courriel.web.app import Services
from courriel.web.auth import requires
from courriel.web.problems import problem
from courriel.web.transactional import transactional_settings

__all__ = ["ROUTES", "MessageIn"]

_TAG = "messages"
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_RETRY_AFTER = "30"  # seconds, after a temporary refusal of the queue


class MessageIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A message to send."""

    template: str | int  # a template's name or id
    to: str
    from_address: str = msgspec.field(name="from")  # at one of courriel's domains
    subject: str | None = None  # Jinja, like the template; required (templates have none)
    data: dict[str, Any] = msgspec.field(default_factory=dict)  # the template's ``data``
    from_name: str | None = None
    reply_to: str | None = None
    idempotency_key: str | None = None  # or the Idempotency-Key header


def _header_key(value: str | None) -> str | None:
    # draft-ietf-httpapi-idempotency-key-header §2.1: the field value is a Structured
    # Field sf-string, "quoted" with \" and \\ escapes; a bare token is accepted as well.
    if value is None:
        return None
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = _ESCAPE.sub(r"\1", text[1:-1])
    return text


def _key(body: str | None, header: str | None) -> str | None:
    from_header = _header_key(header)
    if body is not None and from_header is not None and body != from_header:
        raise InvalidInput(
            "the Idempotency-Key header and the body's idempotency_key differ",
            field="idempotency_key",
        )
    return body if body is not None else from_header


@post(
    "/api/v1/messages",
    summary="Send a transactional message (idempotent with an Idempotency-Key)",
    tags=[_TAG],
    status_code=202,
    **requires("messages:write"),
)
async def create(
    request: Request[Any, Any, Any],
    services: Services,
    data: JSONBody[MessageIn],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key", description="A unique key per message (an sf-string)."
        ),
    ] = None,
) -> Response[dict[str, Any]]:
    """Send a transactional message (idempotent with an Idempotency-Key)."""
    wanted = MessageRequest(
        template=data.template,
        to=data.to,
        from_address=data.from_address,
        data=data.data,
        subject=data.subject,
        from_name=data.from_name,
        reply_to=data.reply_to,
        idempotency_key=_key(data.idempotency_key, idempotency_key),
    )
    settings = await transactional_settings(request.app, services)
    try:
        outcome = await send_message(
            services.db, services.mailer, settings, wanted, now=services.clock()
        )
    except DeliveryRefused as exc:
        if not exc.temporary:
            raise InvalidInput("the recipient's address was refused", field="to") from None
        detail = "the queue cannot take the message now; retry with the same idempotency key"
        return problem(503, detail, headers={"Retry-After": _RETRY_AFTER})
    return Response(
        {"id": outcome.id, "status": outcome.status},
        status_code=200 if outcome.replay else 202,
        headers={"Location": f"/api/v1/messages/{outcome.id}"},
    )


@get(
    "/api/v1/messages/{message_id:int}",
    summary="A transactional message's status, first open and first click",
    tags=[_TAG],
    **requires("messages:read"),
)
async def show(services: Services, message_id: FromPath[int]) -> dict[str, Any]:
    """A transactional message's status, first open and first click."""
    async with services.db.read() as conn:
        found = await get_message(conn, message_id)
    return found.to_dict()


ROUTES: list[ControllerRouterHandler] = [create, show]
