"""Pure ranking of product recommendations: no I/O, only what the queries found.

Owns the rules every kind shares, so that one contact (:func:`..service.recommend`) and a
page of contacts (:func:`..service.prefetch`) give the same lists:
- only products of the :class:`Shop` (active, in stock) are ever returned;
- never a product the contact bought (any order, whatever its status);
- no duplicates, at most ``n``;
- a kind that yields fewer than ``n`` is filled from the shop's best sellers.

Invariants: :class:`Shop` and :class:`Signals` are read-only once built (a campaign shares
one Shop between pages); the product dicts handed out are copies, so a template cannot
change what the next recipient gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from courriel.errors import InvalidInput

__all__ = [
    "KINDS",
    "MAX_N",
    "Shop",
    "Signals",
    "check_call",
    "rank",
]

KINDS = ("best_sellers", "recently_viewed", "bought_together", "same_category")
MAX_N = 50  # the most products one call may ask for


@dataclass(frozen=True, slots=True, kw_only=True)
class Shop:
    """Shop-wide facts, the same for every contact of a campaign."""

    # Recommendable products (active, in stock) by id, as template dicts.
    products: Mapping[int, dict[str, Any]]
    # Categories of every product, whatever its status (a last order's archived product
    # still says what the contact likes), sorted.
    categories: Mapping[int, tuple[str, ...]]
    # Recommendable best sellers, best first: units of the last 30 days, then all time.
    ranking: tuple[int, ...]
    # A product's external id or URL (as "Viewed Product" events name it) -> product id.
    refs: Mapping[str, int]
    # Co-purchases: pairs[p][q] = orders holding both p and q (filled for the products
    # of the last orders seen so far; the caller adds missing keys before ranking).
    pairs: dict[int, dict[int, int]] = field(default_factory=dict)
    # Memo: a basket's recommendable co-purchases, best first (campaign recipients share
    # baskets, and ranking a popular product's partners is the costly part of a lookup).
    together: dict[tuple[int, ...], tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Signals:
    """What one contact did, as far as recommendations care."""

    bought: frozenset[int] = frozenset()  # products of any of the contact's orders
    viewed: tuple[int, ...] = ()  # viewed products, most recent first, each once
    last_order: tuple[int, ...] = ()  # products of the last order that counts, sorted


EMPTY = Signals()


def check_call(kind: object, n: object) -> tuple[str, int]:
    """Validate one ``recommendations(kind, n)`` call.

    Raises:
        InvalidInput: an unknown kind (field ``kind``) or ``n`` outside 1..MAX_N (``n``).
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidInput(
            f"unknown recommendation kind {kind!r} (one of {', '.join(KINDS)})", field="kind"
        )
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_N}", field="n")
    return kind, n


def rank(shop: Shop, signals: Signals, kind: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` products of ``kind`` for a contact (copies of the shop's dicts).

    ``kind`` and ``n`` must have passed :func:`check_call`.
    """
    picked: list[dict[str, Any]] = []
    seen: set[int] = set()
    for product_id in chain(_candidates(shop, signals, kind), shop.ranking):
        if len(picked) == n:
            break
        if product_id in seen or product_id in signals.bought:
            continue
        product = shop.products.get(product_id)
        if product is None:
            continue
        seen.add(product_id)
        picked.append(dict(product))
    return picked


def _candidates(shop: Shop, signals: Signals, kind: str) -> Iterable[int]:
    if kind == "recently_viewed":
        return signals.viewed
    if kind == "bought_together":
        return _bought_together(shop, signals.last_order)
    if kind == "same_category":
        return _same_category(shop, signals)
    return ()


def _bought_together(shop: Shop, basket: tuple[int, ...]) -> tuple[int, ...]:
    """Products by how many orders they shared with the basket's products (summed)."""
    known = shop.together.get(basket)
    if known is not None:
        return known
    scores: dict[int, int] = {}
    for product_id in basket:
        for other, count in shop.pairs.get(product_id, {}).items():
            if other in shop.products:
                scores[other] = scores.get(other, 0) + count
    ranked = tuple(sorted(scores, key=lambda other: (-scores[other], other)))
    shop.together[basket] = ranked
    return ranked


def _same_category(shop: Shop, signals: Signals) -> Iterator[int]:
    """Best sellers sharing a category with the last order or the last viewed product."""
    wanted: set[str] = set()
    for product_id in (*signals.last_order, *signals.viewed[:1]):
        wanted.update(shop.categories.get(product_id, ()))
    if not wanted:
        return iter(())
    return (p for p in shop.ranking if not wanted.isdisjoint(shop.categories.get(p, ())))
