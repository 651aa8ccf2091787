"""Suppression by address, domain (and subdomains) and address hash."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from courriel.errors import InvalidInput
from courriel.marketing.suppression import (
    address_hash,
    is_forgotten,
    is_suppressed,
    list_suppressions,
    suppress,
    suppression_to_dict,
    unsuppress,
)
from courriel.storage.db import Database

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_hash_is_sha256_of_the_normalised_address() -> None:
    expected = hashlib.sha256(b"jo@xn--bcher-kva.example").hexdigest()
    assert address_hash(" JO@Bücher.example") == expected


async def test_each_kind_blocks(database: Database) -> None:
    async with database.write() as conn:
        await suppress(conn, kind="address", value="Bad@Example.com", reason="bounce", now=T0)
        await suppress(conn, kind="domain", value="Spam.Example", reason="manual", now=T0)
        await suppress(
            conn,
            kind="hash",
            value=address_hash("gone@example.org").upper(),
            reason="forgotten",
            now=T0,
        )
    async with database.read() as conn:
        assert await is_suppressed(conn, "bad@example.com")
        assert not await is_suppressed(conn, "good@example.com")
        assert await is_suppressed(conn, "anyone@spam.example")
        assert await is_suppressed(conn, "anyone@mx.spam.example")
        assert not await is_suppressed(conn, "anyone@notspam.example")
        assert await is_suppressed(conn, "GONE@example.org")
        assert await is_forgotten(conn, "gone@example.org")
        assert not await is_forgotten(conn, "bad@example.com")


async def test_suppress_is_idempotent_and_removable(database: Database) -> None:
    async with database.write() as conn:
        await suppress(conn, kind="address", value="x@example.com", reason="bounce", now=T0)
        await suppress(conn, kind="address", value="X@example.com", reason="manual", now=T0)
    async with database.read() as conn:
        entries = await list_suppressions(conn)
    assert [(e.kind, e.value, e.reason) for e in entries] == [
        ("address", "x@example.com", "bounce")
    ]
    assert suppression_to_dict(entries[0])["created_at"] == T0.isoformat()
    async with database.write() as conn:
        assert await unsuppress(conn, kind="address", value="x@EXAMPLE.com")
        assert not await unsuppress(conn, kind="address", value="x@example.com")
        assert not await is_suppressed(conn, "x@example.com")


async def test_listing_by_kind_with_cursor(database: Database) -> None:
    async with database.write() as conn:
        for n in range(3):
            await suppress(conn, kind="domain", value=f"d{n}.example", reason="manual", now=T0)
        await suppress(conn, kind="address", value="a@example.com", reason="manual", now=T0)
    async with database.read() as conn:
        first = await list_suppressions(conn, kind="domain", limit=2)
        rest = await list_suppressions(conn, kind="domain", after_id=first[-1].id)
    assert [e.value for e in first + rest] == ["d0.example", "d1.example", "d2.example"]


@pytest.mark.parametrize(
    ("kind", "value", "reason", "field"),
    [
        ("address", "no-at-sign", "manual", "value"),
        ("domain", "bad_domain!", "manual", "value"),
        ("hash", "abc", "manual", "value"),
        ("ip", "1.2.3.4", "manual", "kind"),
        ("address", "a@example.com", "Not A Reason", "reason"),
    ],
)
async def test_bad_entries(
    database: Database, kind: str, value: str, reason: str, field: str
) -> None:
    async with database.write() as conn:
        with pytest.raises(InvalidInput) as caught:
            await suppress(conn, kind=kind, value=value, reason=reason, now=T0)  # type: ignore[arg-type]
    assert caught.value.field == field
