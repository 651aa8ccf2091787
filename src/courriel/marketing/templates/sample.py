"""Sample data for trial renders and previews: a contact, a shop, products.

Owns what a template is rendered with when it is saved (every variable filled, so a
mistake that any real contact would hit shows up at once) and the products a preview
shows in place of real recommendations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from courriel.marketing.templates.render import RenderContext

__all__ = ["SAMPLE_CONTACT", "SAMPLE_SHOP", "sample_context", "sample_products"]

SAMPLE_CONTACT: Mapping[str, Any] = {
    "email": "jane.doe@example.test",
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "+33612345678",
    "country": "FR",
    "region": "Île-de-France",
    "city": "Paris",
    "postal_code": "75011",
    "time_zone": "Europe/Paris",
    "attributes": {},
    "tags": ("customer",),
}
SAMPLE_SHOP: Mapping[str, Any] = {
    "name": "Example Shop",
    "url": "https://shop.example",
    "address": "1 rue de l'Exemple, 75011 Paris, France",
    "currency": "EUR",
}
_CATEGORIES = ("Shoes", "Bags", "Hats")


def sample_products(kind: str, n: int) -> Sequence[Mapping[str, Any]]:
    """``n`` made-up products (ids 1…n) standing in for ``recommendations(kind, n)``."""
    return [
        {
            "id": i,
            "title": f"Sample product {i}",
            "url": f"https://shop.example/products/sample-{i}",
            "image_url": f"https://shop.example/images/sample-{i}.jpg",
            "price_minor": 1000 + 250 * i,
            "currency": "EUR",
            "category": _CATEGORIES[i % len(_CATEGORIES)],
        }
        for i in range(1, n + 1)
    ]


def sample_context(
    *,
    contact: Mapping[str, Any] | None = None,
    shop: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    public_url: str = "https://mail.example",
) -> RenderContext:
    """A render context of sample data; ``contact``/``shop``/``data`` replace the samples."""
    base = public_url.rstrip("/")
    return RenderContext(
        contact=contact if contact is not None else SAMPLE_CONTACT,
        shop=shop if shop is not None else SAMPLE_SHOP,
        unsubscribe_url=f"{base}/u/sample",
        preferences_url=f"{base}/p/sample",
        view_in_browser_url=f"{base}/v/sample",
        recommendations=sample_products,
        data=data or {},
    )
