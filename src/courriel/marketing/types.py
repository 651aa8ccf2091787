"""Boundary dataclasses of the marketing contacts core.

Owns the values that cross between the contact services and their callers (API, CLI,
integrations, segments): what a caller asks to store (:class:`ContactData`,
:class:`ConsentChange`) and what it reads back (:class:`Contact`, :class:`ConsentRecord`,
:class:`MailingList`).

Invariants:
- In :class:`ContactData`, ``None`` means "leave the stored value unchanged"; attributes
  are merged key by key and tags are added, never removed, by an upsert.
- Values read back are normalised (see :mod:`courriel.marketing.contacts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "CHANNELS",
    "CONSENT_STATUSES",
    "Channel",
    "ConsentChange",
    "ConsentRecord",
    "ConsentStatus",
    "Contact",
    "ContactData",
    "MailingList",
    "OutgoingMail",
]

Channel = Literal["email", "sms"]
ConsentStatus = Literal["subscribed", "unsubscribed", "pending", "never"]
CHANNELS: tuple[Channel, ...] = ("email", "sms")
CONSENT_STATUSES: tuple[ConsentStatus, ...] = ("subscribed", "unsubscribed", "pending", "never")


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactData:
    """What a caller wants stored about a person; ``None`` leaves a field unchanged."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None  # any format phonenumbers reads; stored as E.164
    country: str | None = None  # ISO 3166-1 alpha-2, any case
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None  # IANA name, e.g. "Europe/Paris"
    attributes: Mapping[str, Any] | None = None  # merged key by key into the stored object
    tags: tuple[str, ...] | None = None  # added to the stored tags
    source: str | None = None  # kept from the first upsert that gives one


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """A stored contact with its consent and order aggregates."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    country: str | None
    region: str | None
    city: str | None
    postal_code: str | None
    time_zone: str | None
    attributes: dict[str, Any]
    tags: tuple[str, ...]  # sorted
    source: str | None
    email_status: str
    sms_status: str
    order_count: int
    total_spent_minor: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentChange:
    """A consent decision to record for one channel, with its proof."""

    channel: Channel
    status: ConsentStatus
    method: str  # import | api | shopify | form | double_opt_in | unsubscribe_link …
    ip: str | None = None
    detail: str | None = None  # e.g. the list, the user agent, the source record


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRecord:
    """One row of consent proof, as exported."""

    channel: str
    status: str
    recorded_at: datetime
    method: str
    ip: str | None
    detail: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MailingList:
    """A list contacts subscribe to."""

    id: int
    name: str
    double_opt_in: bool
    created_at: datetime
    subscribed: int = 0  # members with status "subscribed"
    pending: int = 0  # members waiting for their confirmation


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMail:
    """A message to hand to :class:`courriel.marketing.ports.Mailer` after commit."""

    sender: str
    recipient: str
    message: bytes  # complete RFC 5322 message, CRLF line ends
    transactional: bool = True
