"""Ids typed into the dashboard's URLs and forms (``?after=``, ``list:3``), read safely.

Owns the one rule: an id is ASCII digits naming a value in 1..2^63-1, the range of the
database's 64-bit signed keys. Anything else names no row, so callers treat it as an
unknown id (a 404 or 422 page), and no out-of-range value ever reaches a query (SQLite
raises OverflowError and asyncpg a DataError on them).
"""

from __future__ import annotations

__all__ = ["MAX_ID", "parse_cursor", "parse_id"]

MAX_ID = 2**63 - 1  # the largest BIGINT (signed 64-bit) key


def parse_id(text: str | None) -> int | None:
    """The id ``text`` names, or None when no row can have it (not 1..2^63-1, not digits)."""
    raw = (text or "").strip()
    # isascii first: str.isdigit() also accepts "²" and other digits int() refuses.
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_ID)):
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def parse_cursor(text: str | None) -> int | None:
    """A keyset cursor (``?after=``): 0 when absent or "0", the id, or None when invalid."""
    if text is None or text.strip() in ("", "0"):
        return 0
    return parse_id(text)
