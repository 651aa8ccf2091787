"""Consent per channel, with append-only proof.

Owns the ``consents`` rows and the ``contacts.email_status`` / ``sms_status`` columns.
Functions take an open ``AsyncConnection`` and run inside the caller's write transaction.

Invariants:
- The status column of a channel always equals the status of the latest proof row of that
  channel (or "never" when there is none); both change in the same transaction.
- Proof rows are never updated nor deleted, except with the contact (GDPR erasure).
- Recording the status a channel already has adds no row (replayed webhooks and repeated
  imports do not bloat the proof).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput, NotFound
from courriel.marketing.types import (
    CHANNELS,
    CONSENT_STATUSES,
    ConsentChange,
    ConsentRecord,
)
from courriel.storage.models.marketing import consents, contacts

__all__ = ["check_change", "consent_history", "consent_record_to_dict", "set_consent"]

_STATUS_COLUMN = {"email": contacts.c.email_status, "sms": contacts.c.sms_status}


def check_change(change: ConsentChange) -> ConsentChange:
    """``change`` with its values checked (and the IP address in canonical form).

    Raises:
        InvalidInput: unknown channel or status, a method of 0 or more than 32 characters,
            an IP address that does not parse, a detail over 2,000 characters.
    """
    if change.channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    if change.status not in CONSENT_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(CONSENT_STATUSES)}", field="status")
    if not isinstance(change.method, str) or not 1 <= len(change.method) <= 32:
        raise InvalidInput("method has 1 to 32 characters", field="method")
    ip = change.ip
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip.strip()))
        except ValueError as exc:
            raise InvalidInput(f"not an IP address: {change.ip!r}", field="ip") from exc
    if change.detail is not None and len(change.detail) > 2000:
        raise InvalidInput("detail longer than 2000 characters", field="detail")
    if ip == change.ip:
        return change
    return ConsentChange(
        channel=change.channel,
        status=change.status,
        method=change.method,
        ip=ip,
        detail=change.detail,
    )


async def set_consent(
    conn: AsyncConnection, contact_id: int, change: ConsentChange, *, now: datetime
) -> bool:
    """Record a consent decision: a proof row and the contact's status column.

    Args:
        conn: a connection inside the caller's write transaction.
        contact_id: the contact.
        change: the channel, new status and its proof (method, IP, detail).
        now: the time of the decision.

    Returns:
        True when the status changed; False (and no proof row) when it already was ``status``.

    Raises:
        NotFound: no such contact.
        InvalidInput: a malformed change (see :func:`check_change`).
    """
    change = check_change(change)
    column = _STATUS_COLUMN[change.channel]
    current = (
        await conn.execute(select(column).where(contacts.c.id == contact_id))
    ).scalar_one_or_none()
    if current is None:
        raise NotFound(f"no contact {contact_id}")
    if current == change.status:
        return False
    await conn.execute(
        insert(consents).values(
            contact_id=contact_id,
            channel=change.channel,
            status=change.status,
            method=change.method,
            ip=change.ip,
            detail=change.detail,
            recorded_at=now,
        )
    )
    await conn.execute(
        update(contacts)
        .where(contacts.c.id == contact_id)
        .values({column.name: change.status, "updated_at": now})
    )
    return True


async def consent_history(conn: AsyncConnection, contact_id: int) -> list[ConsentRecord]:
    """Every proof row of the contact, oldest first (the exportable consent proof)."""
    result = await conn.execute(
        select(consents)
        .where(consents.c.contact_id == contact_id)
        .order_by(consents.c.recorded_at, consents.c.id)
    )
    return [
        ConsentRecord(
            channel=row["channel"],
            status=row["status"],
            recorded_at=row["recorded_at"],
            method=row["method"],
            ip=row["ip"],
            detail=row["detail"],
        )
        for row in result.mappings()
    ]


def consent_record_to_dict(record: ConsentRecord) -> dict[str, Any]:
    """The proof record as a JSON-able dict."""
    return {
        "channel": record.channel,
        "status": record.status,
        "recorded_at": record.recorded_at.isoformat(),
        "method": record.method,
        "ip": record.ip,
        "detail": record.detail,
    }
