"""The on-site tracker: tracker sites, the identify/track calls, and their rate limit.

Owns the ``tracker_sites`` and ``browser_ids`` rows, the parsing of the JSON bodies the
storefront snippet (``web/static/tracker.js``) sends, and what each call writes. The web
edge (:mod:`courriel.web.tracker`) only checks the request (site key, origin, size, rate)
and calls :func:`identify` or :func:`track`.

Invariants:
- A site key is public (it is in the storefront's HTML): it allows identify and track for
  its site and nothing else. A site with origins accepts only requests from those origins.
- identify never changes consent: a storefront call is not consent (contacts it creates
  are ``never`` on both channels, existing ones keep their status). It never clears a
  stored field either (empty strings are ignored) and cannot set reserved fields.
- identify only fills what is empty: a profile column or custom attribute that the contact
  has already keeps its value (anyone holding the public site key could otherwise rewrite
  a known customer's name, phone or attributes).
- identify of an address erased on request stores nothing and answers like a success, so
  that a storefront cannot learn who asked to be forgotten.
- Each call is one write transaction. The ``browser_ids`` row is upserted first in both
  calls, which serialises identify and track of one browser on PostgreSQL (the row lock):
  an anonymous event is either seen by identify's re-attribution or written after the
  link, never lost in between.
- Events from a site have the source ``tracker:<site name>`` (site names are at most 56
  characters so that it fits ``events.source``).
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import AlreadyExists, ForgottenAddress, InvalidInput, NotFound
from courriel.marketing.commerce import EventData, append_event, upsert_statement
from courriel.marketing.contacts import only_empty, upsert_contact
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.marketing import browser_ids, events, tracker_sites

__all__ = [
    "MAX_BODY",
    "MAX_PROPERTIES",
    "IdentifyCall",
    "RateLimiter",
    "TrackCall",
    "TrackerSite",
    "add_site",
    "find_site",
    "identify",
    "list_sites",
    "normalize_origin",
    "origin_allowed",
    "parse_identify",
    "parse_track",
    "remove_site",
    "track",
]

MAX_BODY = 8 * 1024  # bytes of one identify/track request body
MAX_PROPERTIES = 4 * 1024  # bytes of an event's properties, as compact JSON
_NAME_MAX = 128  # events.name
_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,55}$")
_BROWSER_ID = re.compile(r"^[0-9a-f]{32}$")  # 128 random bits, hex
_EVENT_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Profile keys that map to contact columns; every other key is a custom attribute.
_PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "country",
    "region",
    "city",
    "postal_code",
    "time_zone",
)
# Keys a storefront may not set: consent, identity, aggregates and bookkeeping.
_RESERVED = frozenset(
    {
        "id",
        "email_status",
        "sms_status",
        "consent",
        "tags",
        "source",
        "attributes",
        "order_count",
        "total_spent_minor",
        "first_order_at",
        "last_order_at",
        "created_at",
        "updated_at",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerSite:
    """A storefront allowed to send identify/track calls."""

    id: int
    name: str
    public_key: str  # goes in the snippet's data-site attribute
    origins: tuple[str, ...]  # serialised origins (RFC 6454 §6.2); empty: any origin
    created_at: datetime

    @property
    def source(self) -> str:
        """The ``events.source`` of this site's events."""
        return f"tracker:{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifyCall:
    """``courriel.identify(profile)`` from one browser."""

    anonymous_id: str  # the browser id (32 hex digits)
    profile: ContactData  # email required; never consent


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackCall:
    """``courriel.track(name, properties)`` from one browser."""

    anonymous_id: str
    name: str  # Klaviyo names ("Viewed Product") or custom, 1 to 128 characters
    properties: dict[str, Any]  # a JSON object of at most MAX_PROPERTIES bytes
    value: float | None  # money value in major units ("value", else properties "$value")
    event_id: str | None  # random per call: a retried request is stored once


# -- sites ------------------------------------------------------------------------------


def normalize_origin(origin: str) -> str:
    """Serialise an origin as browsers send it: ``scheme://host[:port]`` (RFC 6454 §6.2).

    Scheme and host are lower-cased, an internationalised host becomes A-labels, and the
    scheme's default port is dropped.

    Raises:
        InvalidInput: not an http(s) origin (a path, query, user or fragment is refused).
    """
    text = origin.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"invalid origin {origin!r}: {exc}", field="origin") from exc
    host = parts.hostname or ""
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host:
        raise InvalidInput(f"origin must be http(s)://host[:port]: {origin!r}", field="origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidInput(f"origin has more than scheme, host, port: {origin!r}", field="origin")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise InvalidInput(f"invalid host in origin {origin!r}", field="origin") from exc
    scheme = parts.scheme.lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host.lower()}"
    return f"{scheme}://{host.lower()}:{port}"


def origin_allowed(site: TrackerSite, origin: str | None) -> bool:
    """Whether a request with this ``Origin`` header may call ``site``.

    A site without origins accepts any request; one with origins requires a matching
    ``Origin`` (a missing or ``null`` origin does not match).
    """
    if not site.origins:
        return True
    if not origin:
        return False
    try:
        return normalize_origin(origin) in site.origins
    except InvalidInput:
        return False


def _site_from(row: RowMapping) -> TrackerSite:
    return TrackerSite(
        id=int(row["id"]),
        name=row["name"],
        public_key=row["public_key"],
        origins=tuple(row["origins"].split()),
        created_at=row["created_at"],
    )


async def add_site(
    db: Database, name: str, *, origins: tuple[str, ...] = (), now: datetime
) -> TrackerSite:
    """Register a storefront and make its public site key.

    Args:
        db: the database.
        name: 1 to 56 characters of ``a-z 0-9 . _ -`` (lower-cased), unique.
        origins: allowed origins (``https://shop.example``); none allows any origin.
        now: the creation time.

    Raises:
        InvalidInput: a bad name or origin.
        AlreadyExists: a site has this name.
    """
    clean = name.strip().lower()
    if not _SITE_NAME.match(clean):
        raise InvalidInput(
            "site name must be 1 to 56 characters of a-z, 0-9, '.', '_', '-'", field="name"
        )
    allowed = tuple(dict.fromkeys(normalize_origin(o) for o in origins))
    key = "pk_" + secrets.token_hex(16)
    async with db.write() as conn:
        if await _site_row(conn, tracker_sites.c.name == clean) is not None:
            raise AlreadyExists(f"tracker site {clean!r} exists already")
        new_id = (
            await conn.execute(
                tracker_sites.insert()
                .values(name=clean, public_key=key, origins=" ".join(allowed), created_at=now)
                .returning(tracker_sites.c.id)
            )
        ).scalar_one()
    return TrackerSite(id=int(new_id), name=clean, public_key=key, origins=allowed, created_at=now)


async def _site_row(conn: AsyncConnection, condition: Any) -> TrackerSite | None:
    row = (await conn.execute(select(tracker_sites).where(condition))).mappings().first()
    return None if row is None else _site_from(row)


async def list_sites(db: Database) -> list[TrackerSite]:
    """Every tracker site, by name."""
    async with db.read() as conn:
        rows = (await conn.execute(select(tracker_sites).order_by(tracker_sites.c.name))).mappings()
        return [_site_from(row) for row in rows]


async def find_site(db: Database, public_key: str) -> TrackerSite | None:
    """The site of a public key, or None when no site has it."""
    if not public_key or len(public_key) > 64:
        return None
    async with db.read() as conn:
        return await _site_row(conn, tracker_sites.c.public_key == public_key)


async def remove_site(db: Database, name: str) -> None:
    """Delete a site: its key stops working at once (its events stay).

    Raises:
        NotFound: no site has this name.
    """
    async with db.write() as conn:
        result = await conn.execute(
            delete(tracker_sites).where(tracker_sites.c.name == name.strip().lower())
        )
        if result.rowcount == 0:
            raise NotFound(f"no tracker site {name!r}")


# -- request bodies ---------------------------------------------------------------------


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON value")


def _decode(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise InvalidInput(f"body larger than {MAX_BODY} bytes", field=None)
    try:
        # NaN and Infinity are not JSON, though Python's reader takes them.
        value = json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"body is not JSON: {exc}", field=None) from exc
    if not isinstance(value, dict):
        raise InvalidInput("body must be a JSON object", field=None)
    return value


def _browser_id(body: Mapping[str, Any]) -> str:
    value = body.get("anonymous_id")
    if not isinstance(value, str) or not _BROWSER_ID.match(value):
        raise InvalidInput("anonymous_id must be 32 lower-case hex digits", field="anonymous_id")
    return value


def parse_identify(body: bytes) -> IdentifyCall:
    """Read an identify body: ``{"anonymous_id": …, "profile": {"email": …, …}}``.

    Profile keys among the contact's columns set them (empty strings and nulls are
    ignored: a storefront never clears a stored value); other keys are custom attributes.

    Raises:
        InvalidInput: malformed JSON, a missing email, a reserved or non-text field.
    """
    data = _decode(body)
    anonymous_id = _browser_id(data)
    profile = data.get("profile")
    if not isinstance(profile, dict):
        raise InvalidInput("profile must be a JSON object", field="profile")
    email = profile.get("email")
    if not isinstance(email, str) or not email.strip():
        raise InvalidInput("profile.email is required", field="profile/email")
    fields: dict[str, Any] = {}  # contact columns, all strings
    attributes: dict[str, Any] = {}
    for key, value in profile.items():
        if key == "email" or value is None or value == "":
            continue
        if key in _RESERVED:
            raise InvalidInput(f"{key} cannot be set by the tracker", field=f"profile/{key}")
        if key in _PROFILE_FIELDS:
            if not isinstance(value, str):
                raise InvalidInput(f"{key} must be a string", field=f"profile/{key}")
            fields[key] = value
        else:
            attributes[key] = value
    contact = ContactData(email=email, attributes=attributes or None, source="tracker", **fields)
    return IdentifyCall(anonymous_id=anonymous_id, profile=contact)


def parse_track(body: bytes) -> TrackCall:
    """Read a track body: ``{"anonymous_id", "event", "properties", "value"?, "event_id"?}``.

    Raises:
        InvalidInput: malformed JSON, an empty or long name, properties that are not an
            object or exceed MAX_PROPERTIES bytes, a value that is not a finite number.
    """
    data = _decode(body)
    anonymous_id = _browser_id(data)
    name = data.get("event")
    if not isinstance(name, str) or not name.strip() or len(name) > _NAME_MAX:
        raise InvalidInput(f"event must be 1 to {_NAME_MAX} characters", field="event")
    properties = data.get("properties", {})
    if not isinstance(properties, dict):
        raise InvalidInput("properties must be a JSON object", field="properties")
    size = len(json.dumps(properties, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PROPERTIES:
        raise InvalidInput(f"properties larger than {MAX_PROPERTIES} bytes", field="properties")
    event_id = data.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not _EVENT_ID.match(event_id)):
        raise InvalidInput("event_id must be 1 to 64 of A-Z a-z 0-9 _ -", field="event_id")
    return TrackCall(
        anonymous_id=anonymous_id,
        name=name.strip(),
        properties=properties,
        value=_value(data.get("value", properties.get("$value"))),
        event_id=event_id,
    )


def _value(raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise InvalidInput("value must be a finite number", field="value")
    return float(raw)


# -- the calls --------------------------------------------------------------------------


async def _link_browser(
    conn: AsyncConnection, anonymous_id: str, contact_id: int | None, now: datetime
) -> int | None:
    """Upsert the browser's row (setting its contact when given); returns its contact."""
    stmt = upsert_statement(conn, browser_ids).values(
        anonymous_id=anonymous_id, contact_id=contact_id, first_seen=now, last_seen=now
    )
    excluded = stmt.excluded
    changes: dict[str, Any] = {"last_seen": excluded.last_seen}
    if contact_id is not None:
        changes["contact_id"] = excluded.contact_id
    stmt = stmt.on_conflict_do_update(index_elements=["anonymous_id"], set_=changes)
    found = (await conn.execute(stmt.returning(browser_ids.c.contact_id))).scalar_one()
    return None if found is None else int(found)


async def identify(db: Database, call: IdentifyCall, *, now: datetime) -> int:
    """Upsert the contact, link the browser to it, and give it the browser's past events.

    Only empty fields and absent attributes of an existing contact are filled in.

    Returns:
        How many anonymous events of the browser were re-attributed to the contact (0,
        with nothing stored, when the address was erased on request).

    Raises:
        InvalidInput: a malformed profile field (``field`` is ``profile/<name>``).
    """
    async with db.write() as conn:
        try:
            profile = await only_empty(conn, call.profile, columns=_PROFILE_FIELDS)
            contact_id = await upsert_contact(conn, profile, now=now)
        except ForgottenAddress:
            # GDPR: the same answer as a success, and nothing written (no browser row).
            return 0
        except InvalidInput as exc:
            # The contacts core names its own fields; the caller sent them in "profile".
            field = f"profile/{exc.field}" if exc.field else "profile"
            raise InvalidInput(str(exc), field=field) from exc
        await _link_browser(conn, call.anonymous_id, contact_id, now)
        result = await conn.execute(
            update(events)
            .where(events.c.anonymous_id == call.anonymous_id, events.c.contact_id.is_(None))
            .values(contact_id=contact_id)
        )
        return int(result.rowcount or 0)


async def track(db: Database, site: TrackerSite, call: TrackCall, *, now: datetime) -> int | None:
    """Append the event, with the browser's contact when it has been identified.

    Returns:
        The new event's id, or None when the same ``event_id`` was stored already.
    """
    async with db.write() as conn:
        contact_id = await _link_browser(conn, call.anonymous_id, None, now)
        return await append_event(
            conn,
            EventData(
                name=call.name,
                properties=call.properties,
                occurred_at=now,
                value=call.value,
                source=site.source,
                unique_key=call.event_id,
                contact_id=contact_id,
                anonymous_id=call.anonymous_id,
            ),
        )


# -- rate limit -------------------------------------------------------------------------


class RateLimiter:
    """Token buckets per key (site key + client address), held in memory.

    Each bucket holds up to ``burst`` tokens and refills at ``per_minute`` tokens a
    minute; a request takes one. At most ``max_keys`` buckets are kept: the least recently
    used go first (a forgotten bucket is a full one, which only errs toward allowing).
    """

    def __init__(
        self,
        *,
        per_minute: float = 60.0,
        burst: int = 20,
        clock: Callable[[], float],
        max_keys: int = 65_536,
    ) -> None:
        self.rate = per_minute / 60.0  # tokens a second
        self.burst = float(burst)
        self.clock = clock  # seconds, monotonic in production
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Take a token for ``key``.

        Returns:
            0.0 when the request may proceed, else the seconds until a token is back.
        """
        now = self.clock()
        tokens, stamp = self._buckets.pop(key, (self.burst, now))
        # A clock that went back refills nothing (max with 0).
        tokens = min(self.burst, tokens + max(0.0, now - stamp) * self.rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / self.rate

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
