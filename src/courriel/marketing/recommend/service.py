"""Recommendations for templates: one contact, or a page of a campaign's recipients.

Owns the public entry points. A template calls ``recommendations(kind, n)``; the campaign
sender prefetches a page of recipients with :meth:`Recommender.prefetch` (a fixed number of
set-based queries per page) and hands each recipient's ``book.for_contact(id)`` to the
renderer, which calls it synchronously (pure dict lookups, no I/O).

Invariants:
- ``recommend(conn, c, kind, n, now=t) == (await prefetch(conn, [c], [(kind, n)],
  now=t)).for_contact(c)(kind, n)`` (a property test holds one against the other).
- A :class:`Recommender` keeps the shop-wide facts (best sellers, recommendable products,
  categories, co-purchase counts) for ``ttl``; a product that sells out meanwhile may still
  be recommended until they are reloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.marketing.recommend.queries import add_pairs, contact_signals, load_shop, page_signals
from courriel.marketing.recommend.rank import EMPTY, KINDS, Shop, Signals, check_call, rank
from courriel.storage.db import Database

__all__ = [
    "ALL_CALLS",
    "Recommend",
    "RecommendationBook",
    "Recommender",
    "prefetch",
    "recommend",
]

# What a template calls: recommendations(kind, n) -> list of product dicts.
Recommend = Callable[[str, int], list[dict[str, Any]]]
# Prefetch every kind (when the sender cannot tell which ones the template calls).
ALL_CALLS: tuple[tuple[str, int], ...] = tuple((kind, 1) for kind in KINDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecommendationBook:
    """The recommendations of one page of contacts, ready for synchronous lookups."""

    shop: Shop
    signals: Mapping[int, Signals]
    kinds: frozenset[str]  # the kinds whose signals were fetched

    def for_contact(self, contact_id: int | None) -> Recommend:
        """The ``recommendations(kind, n)`` function of one contact.

        A contact outside the page (or None) gets best sellers only. The function raises
        InvalidInput (field ``kind``) for an unknown kind or one not prefetched, and
        (field ``n``) for ``n`` outside 1..50.
        """
        signals = EMPTY if contact_id is None else self.signals.get(contact_id, EMPTY)

        def recommendations(kind: str, n: int) -> list[dict[str, Any]]:
            kind, n = check_call(kind, n)
            if kind != "best_sellers" and kind not in self.kinds:
                raise InvalidInput(f"recommendations({kind!r}) was not prefetched", field="kind")
            return rank(self.shop, signals, kind, n)

        return recommendations


def _kinds(calls: Iterable[tuple[str, int]]) -> frozenset[str]:
    return frozenset(check_call(kind, n)[0] for kind, n in calls)


async def _book(
    conn: AsyncConnection, shop: Shop, contact_ids: Sequence[int], kinds: frozenset[str]
) -> RecommendationBook:
    signals = await page_signals(conn, shop, contact_ids, kinds)
    if "bought_together" in kinds:
        await add_pairs(conn, shop, (p for s in signals.values() for p in s.last_order))
    return RecommendationBook(shop=shop, signals=signals, kinds=kinds)


async def prefetch(
    conn: AsyncConnection,
    contact_ids: Sequence[int],
    calls: Iterable[tuple[str, int]],
    *,
    now: datetime,
) -> RecommendationBook:
    """Recommendations of a page of contacts, shop-wide facts read afresh.

    Args:
        conn: a read (or write) connection.
        contact_ids: the page (any size; duplicates are fine).
        calls: the ``(kind, n)`` calls the template makes; they choose which signals are
            read (``n`` is only checked: the book answers any ``n``).
        now: the time best sellers are counted back from.

    Raises:
        InvalidInput: an unknown kind (``kind``) or a bad ``n`` (``n``) in ``calls``.
    """
    kinds = _kinds(calls)
    return await _book(conn, await load_shop(conn, now=now), contact_ids, kinds)


async def recommend(
    conn: AsyncConnection, contact_id: int | None, kind: str, n: int, *, now: datetime
) -> list[dict[str, Any]]:
    """The ``n`` products of ``kind`` for one contact (previews, transactional mail).

    Product dicts hold ``id, title, url, image_url, price_minor, currency, category``.

    Raises:
        InvalidInput: an unknown kind (``kind``) or ``n`` outside 1..50 (``n``).
    """
    kind, n = check_call(kind, n)
    shop = await load_shop(conn, now=now)
    if contact_id is None:
        return rank(shop, EMPTY, kind, n)
    signals = await contact_signals(conn, shop, contact_id, (kind,))
    if kind == "bought_together":
        await add_pairs(conn, shop, signals.last_order)
    return rank(shop, signals, kind, n)


class Recommender:
    """Recommendations for the length of a campaign: the shop-wide facts are read once
    per ``ttl`` and shared by every page (only the pages' own signals are queried)."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        ttl: timedelta = timedelta(seconds=300),
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl
        self._shop: Shop | None = None
        self._loaded_at: datetime | None = None

    async def _current_shop(self, conn: AsyncConnection) -> Shop:
        now = self._clock()
        if self._shop is None or self._loaded_at is None or now - self._loaded_at >= self._ttl:
            self._shop = await load_shop(conn, now=now)
            self._loaded_at = now
        return self._shop

    async def prefetch(
        self,
        contact_ids: Sequence[int],
        calls: Iterable[tuple[str, int]] = ALL_CALLS,
        *,
        conn: AsyncConnection | None = None,
    ) -> RecommendationBook:
        """A page's recommendations (in ``conn``, else in a read transaction of its own).

        Raises:
            InvalidInput: an unknown kind or a bad ``n`` in ``calls``.
        """
        kinds = _kinds(calls)
        if conn is not None:
            return await _book(conn, await self._current_shop(conn), contact_ids, kinds)
        async with self._db.read() as own:
            return await _book(own, await self._current_shop(own), contact_ids, kinds)

    async def recommend(self, contact_id: int | None, kind: str, n: int) -> list[dict[str, Any]]:
        """One contact's recommendations, with the cached shop-wide facts."""
        book = await self.prefetch([] if contact_id is None else [contact_id], [(kind, n)])
        return book.for_contact(contact_id)(kind, n)
