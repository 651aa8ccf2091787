"""``/server/queue``: the outbound queue, a message's attempts, retry now, drop (owner).

Calls what ``courriel queue list|show|retry|drop`` calls (:mod:`courriel.delivery.queue`
and :mod:`courriel.delivery.queue_admin`).

States shown (per recipient): *queued* (no attempt yet), *deferred* (queued again after a
temporary failure), *failed* (given up, bounced), by the queue's one rule
(:func:`courriel.delivery.queue.recipient_state`). Delivered recipients stay with their
message until the whole message leaves the queue. The filters keep a message when one of
its recipients matches both the state and the recipient domain.

Invariants:
- Retry and drop are POSTs (CSRF-checked by the guard); drop asks for confirmation in the
  browser and is logged as a WARNING by ``drop_message``, as from the CLI.
- A page load reads one page of :data:`LIMIT` messages, filtered in SQL and keyset-paged
  by message id (:func:`~courriel.delivery.queue.queue_page`), never the whole queue:
  during a large send it holds hundreds of thousands of recipients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from courriel.delivery import queue as outbound
from courriel.delivery.queue import RECIPIENT_STATES, QueueEntry, QueueRecipient
from courriel.delivery.queue_admin import drop_message, retry_due, show_message
from courriel.web.app import Services
from courriel.web.dashboard.ids import parse_cursor
from courriel.web.dashboard.render import page
from courriel.web.dashboard.server_common import guarded, need

__all__ = ["LIMIT", "ROUTES"]

LIMIT = 100  # messages per page


def _state_of(recipient: QueueRecipient) -> str:
    return recipient.state


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    entry: QueueEntry
    states: tuple[str, ...]  # each recipient's state, in recipient order
    next_attempt: datetime | None  # the earliest of the recipients still queued
    attempts: int
    last_reply: str


def _row(entry: QueueEntry) -> _Row:
    queued = [r for r in entry.recipients if r.status == "queued"]
    replies = [r.last_reply for r in entry.recipients if r.last_reply]
    return _Row(
        entry=entry,
        states=tuple(r.state for r in entry.recipients),
        next_attempt=min((r.next_attempt_at for r in queued), default=None),
        attempts=max((r.attempts for r in entry.recipients), default=0),
        last_reply=replies[-1] if replies else "",
    )


@get("/server/queue", **guarded("server"))
async def queue_page(request: Request[Any, Any, Any], services: Services) -> Response[str]:
    """One page of queued messages, filtered by recipient state and recipient domain."""
    state = request.query_params.get("state", "")
    state = state if state in RECIPIENT_STATES else ""
    domain = request.query_params.get("domain", "").strip().lower()[:255]
    after = parse_cursor(request.query_params.get("after"))
    if after is None:
        return page(
            request,
            "error.html",
            status=422,
            active="queue",
            title="Bad link",
            message="This page link is not valid: start again from the queue.",
        )
    found = await outbound.queue_page(
        services.db, state=state, domain=domain, after_id=after, limit=LIMIT
    )
    kept = {k: v for k, v in (("state", state), ("domain", domain)) if v}
    first = "/server/queue" + (f"?{urlencode(kept)}" if kept else "")
    following = None
    if found.following is not None:
        following = "/server/queue?" + urlencode({**kept, "after": found.following})
    dropped = request.query_params.get("dropped", "")
    return page(
        request,
        "server/queue.html",
        active="queue",
        title="Queue",
        rows=[_row(e) for e in found.entries],
        first=first if after > 0 else "",
        following=following,
        state=state,
        states=RECIPIENT_STATES,
        domain=domain,
        done=f"Message {dropped} dropped." if dropped.isdigit() else "",
    )


@get("/server/queue/{message_id:int}", **guarded("server"))
async def message_page(
    request: Request[Any, Any, Any], services: Services, message_id: FromPath[int]
) -> Response[str]:
    """One queued message: its recipients and every delivery attempt."""
    detail = await show_message(services.db, message_id)
    retried = request.query_params.get("retried", "")
    return page(
        request,
        "server/queue_message.html",
        active="queue",
        title=f"Queued message {message_id}",
        detail=detail,
        state_of=_state_of,
        done=f"{retried} recipient(s) due now." if retried.isdigit() else "",
    )


@post("/server/queue/{message_id:int}/retry", **guarded("server"))
async def retry(services: Services, message_id: FromPath[int]) -> Response[Any]:
    """Make the message's queued recipients due now (not those a worker is sending)."""
    count = await retry_due(services.db, message_id=message_id, now=services.clock())
    return Redirect(path=f"/server/queue/{message_id}?retried={count}", status_code=303)


@post("/server/queue/{message_id:int}/drop", **guarded("server"))
async def drop(services: Services, message_id: FromPath[int]) -> Response[Any]:
    """Delete the message without delivering it (logged as a WARNING)."""
    await drop_message(services.db, need(services.blobs, "blob store"), message_id)
    return Redirect(path=f"/server/queue?dropped={message_id}", status_code=303)


ROUTES = [queue_page, message_page, retry, drop]
