"""The shop webhook pipeline: verify → parse → dedupe → map → apply, with a receipt.

Owns what every shop's webhook goes through, whatever the shop: the body size cap, the
integration lookup, the HMAC check, JSON parsing, deduplication on the delivery id, and
applying the mapped change in one write transaction together with its receipt row. The
shop modules (:mod:`courriel.integrations.shopify`, :mod:`.woocommerce`) only say where
their headers are and how a topic's payload maps to commerce changes (a :class:`ShopAdapter`).

Invariants:
- Nothing is written for a request that fails the signature (401): not even a receipt.
- A delivery id seen before with status ``applied`` or ``ignored`` is answered 200 and
  changes nothing; a ``rejected`` one is tried again (the shop retries after a fix).
- A change and its receipt commit together or not at all; a change that fails leaves only
  a ``rejected`` receipt written afterwards in its own transaction.
- One log line per webhook: integration, topic, delivery id, HTTP status and outcome
  (and the field at fault). Never the secret, never the body.
- The answer never depends on anything but the request and the stored state: handlers
  get an injected ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.integrations.registry import Integration, Kind, load_integration
from courriel.marketing.campaigns.attribution import DEFAULT_WINDOW
from courriel.marketing.commerce import upsert_statement
from courriel.storage.db import Database
from courriel.storage.models.marketing import webhook_receipts

__all__ = [
    "MAX_BODY",
    "Applied",
    "Applier",
    "HookContext",
    "Mapper",
    "ShopAdapter",
    "WebhookOutcome",
    "handle_webhook",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

MAX_BODY = 2 * 1024 * 1024
_MAX_DELIVERY_ID = 128
_MAX_TOPIC = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class HookContext:
    """What an applier knows besides the payload."""

    integration_id: int
    source: str  # "shopify:NAME": the source of the events and contacts written
    headers: Mapping[str, str]  # lower-case names (e.g. the shop's domain)
    now: datetime
    # tracking.attribution_window: how long after a campaign click an order counts for it.
    attribution_window: timedelta = DEFAULT_WINDOW


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What applying a webhook did, recorded in its receipt."""

    status: Literal["applied", "ignored"]
    detail: str = ""


Applier = Callable[[AsyncConnection, HookContext], Awaitable[Applied]]
# (topic, payload, lower-cased headers) → the change to apply, or None for an unknown topic.
# Raises InvalidInput (→ 422) for a known topic whose payload has a bad field.
Mapper = Callable[[str, Mapping[str, Any], Mapping[str, str]], Applier | None]


def _never_ping(_headers: Mapping[str, str], _body: bytes) -> bool:
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopAdapter:
    """How one kind of shop sends webhooks (header names are lower case)."""

    kind: Kind
    signature_header: str
    topic_header: str
    delivery_header: str
    mapper: Mapper
    is_ping: Callable[[Mapping[str, str], bytes], bool] = field(default=_never_ping)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookOutcome:
    """The answer to a webhook: an HTTP status and what happened.

    ``result`` is one of applied, ignored, duplicate, ping, rejected, unauthorized,
    not_found, too_large; ``field`` names the bad payload field of a 422.
    """

    status: int
    result: str
    detail: str
    field: str | None = None


def sign(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, body)): the signature Shopify and WooCommerce send."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(secret: str, body: bytes, presented: str | None) -> bool:
    """True when ``presented`` is the body's signature (compared in constant time)."""
    if not presented:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), presented.strip().encode())


@dataclass(slots=True)
class _Request:
    adapter: ShopAdapter
    name: str
    headers: dict[str, str]
    body: bytes
    now: datetime
    attribution_window: timedelta = DEFAULT_WINDOW
    topic: str = "-"
    delivery_id: str = "-"


async def handle_webhook(
    db: Database,
    adapter: ShopAdapter,
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    attribution_window: timedelta = DEFAULT_WINDOW,
) -> WebhookOutcome:
    """Run one webhook through the pipeline and say how to answer it.

    Args:
        db: the database.
        adapter: the kind of shop the URL names.
        name: the integration's name from the URL.
        headers: the request headers (any case).
        body: the raw request body, as signed.
        now: the time of receipt.
        attribution_window: ``tracking.attribution_window``, for the orders it stores.

    Returns:
        The outcome; client errors are outcomes, never exceptions.

    Raises:
        StorageError: the database failed (the shop will retry).
    """
    request = _Request(
        adapter=adapter,
        name=name,
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        now=now,
        attribution_window=attribution_window,
    )
    outcome = await _run(db, request)
    # The name, topic and delivery id come from the request, signed or not: written
    # escaped (one log line each, never a forged second one from a CR/LF in a URL).
    line = "webhook %s:%s topic=%s delivery=%s status=%d %s"
    args: list[object] = [adapter.kind] + [
        _printable(v) for v in (name, request.topic, request.delivery_id)
    ]
    args += [outcome.status, outcome.result]
    if outcome.field:
        line += " field=%s"
        args.append(_printable(outcome.field))
    log.log(logging.INFO if outcome.status < 500 else logging.ERROR, line, *args)
    return outcome


async def _run(db: Database, request: _Request) -> WebhookOutcome:
    adapter, headers = request.adapter, request.headers
    if len(request.body) > MAX_BODY:
        return WebhookOutcome(status=413, result="too_large", detail="body larger than 2 MB")
    async with db.read() as conn:
        integration = await load_integration(conn, request.name)
    if integration is None or integration.kind != adapter.kind:
        return WebhookOutcome(status=404, result="not_found", detail="no such integration")
    if adapter.is_ping(headers, request.body):
        return WebhookOutcome(status=200, result="ping", detail="webhook ping acknowledged")
    if not verify_signature(
        integration.secret, request.body, headers.get(adapter.signature_header)
    ):
        return WebhookOutcome(
            status=401, result="unauthorized", detail="missing or bad webhook signature"
        )
    problem = _read_headers(request)
    if problem is not None:
        return problem
    try:
        payload = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return await _reject(db, integration, request, 400, "malformed JSON")
    if not isinstance(payload, dict):
        return await _reject(db, integration, request, 400, "malformed JSON: not an object")
    try:
        applier = adapter.mapper(request.topic, payload, headers)
    except InvalidInput as exc:
        return await _reject(db, integration, request, 422, str(exc), field=exc.field)
    if applier is None:
        return await _reject(db, integration, request, 400, f"unknown topic {request.topic!r}")
    return await _apply(db, integration, request, applier)


def _read_headers(request: _Request) -> WebhookOutcome | None:
    adapter, headers = request.adapter, request.headers
    delivery_id = headers.get(adapter.delivery_header, "").strip()
    topic = headers.get(adapter.topic_header, "").strip().lower()
    for header, value, limit in (
        (adapter.delivery_header, delivery_id, _MAX_DELIVERY_ID),
        (adapter.topic_header, topic, _MAX_TOPIC),
    ):
        if not value or len(value) > limit or not value.isprintable():
            return WebhookOutcome(
                status=400,
                result="bad_request",
                detail=f"missing or bad {header} header",
                field=header,
            )
    request.delivery_id, request.topic = delivery_id, topic
    return None


async def _apply(
    db: Database, integration: Integration, request: _Request, applier: Applier
) -> WebhookOutcome:
    context = HookContext(
        integration_id=integration.id,
        source=integration.source,
        headers=request.headers,
        now=request.now,
        attribution_window=request.attribution_window,
    )
    try:
        async with db.write() as conn:
            if not await _claim(conn, integration.id, request):
                return WebhookOutcome(
                    status=200, result="duplicate", detail="delivery seen before: nothing changed"
                )
            applied = await applier(conn, context)
            await _record(conn, integration.id, request, applied.status, applied.detail)
    except InvalidInput as exc:
        return await _reject(db, integration, request, 422, str(exc), field=exc.field)
    return WebhookOutcome(status=200, result=applied.status, detail=applied.detail)


async def _claim(conn: AsyncConnection, integration_id: int, request: _Request) -> bool:
    """Insert this delivery's receipt; False when it was applied or ignored before.

    On PostgreSQL a concurrent delivery of the same id waits here for the first one's
    transaction, then sees its receipt.
    """
    stmt = (
        upsert_statement(conn, webhook_receipts)
        .values(
            integration_id=integration_id,
            delivery_id=request.delivery_id,
            topic=request.topic,
            status="applied",
            detail="",
            received_at=request.now,
        )
        .on_conflict_do_nothing(index_elements=["integration_id", "delivery_id"])
        .returning(webhook_receipts.c.id)
    )
    if (await conn.execute(stmt)).scalar_one_or_none() is not None:
        return True
    status = (
        await conn.execute(
            select(webhook_receipts.c.status).where(
                webhook_receipts.c.integration_id == integration_id,
                webhook_receipts.c.delivery_id == request.delivery_id,
            )
        )
    ).scalar_one()
    return bool(status == "rejected")


async def _record(
    conn: AsyncConnection, integration_id: int, request: _Request, status: str, detail: str
) -> None:
    await conn.execute(
        update(webhook_receipts)
        .where(
            webhook_receipts.c.integration_id == integration_id,
            webhook_receipts.c.delivery_id == request.delivery_id,
        )
        .values(topic=request.topic, status=status, detail=detail[:2000], received_at=request.now)
    )


async def _reject(
    db: Database,
    integration: Integration,
    request: _Request,
    status: int,
    detail: str,
    *,
    field: str | None = None,
) -> WebhookOutcome:
    # A signed request that cannot be applied leaves a "rejected" receipt (the dashboard
    # lists it), unless the same delivery was applied before: then it stays applied.
    async with db.write() as conn:
        if await _claim(conn, integration.id, request):
            what = detail if field is None else f"{field}: {detail}"
            await _record(conn, integration.id, request, "rejected", what)
    return WebhookOutcome(status=status, result="rejected", detail=detail, field=field)


def _printable(value: str) -> str:
    """``value`` for a log line: as is when printable ASCII, else its escaped repr."""
    return value if value.isascii() and value.isprintable() else repr(value)
