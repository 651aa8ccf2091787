"""Previews: one stored template rendered for a real contact (or the sample one).

Owns :func:`preview_template`, used by ``courriel template preview`` and
``POST /api/v1/templates/{id}/preview``, and :func:`contact_values`, the mapping a
template sees as ``contact`` (the campaign sender builds the same one). Recommendations
in a preview are the sample products: a preview shows the layout, not a live pick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import NotFound
from courriel.marketing.contacts import find_contact_id, get_contact
from courriel.marketing.templates.render import RenderedEmail, Renderer
from courriel.marketing.templates.sample import sample_context
from courriel.marketing.templates.service import Template
from courriel.marketing.types import Contact

__all__ = ["CONTACT_FIELDS", "contact_values", "preview_template"]

CONTACT_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "country",
    "region",
    "city",
    "postal_code",
    "time_zone",
)


def contact_values(contact: Contact) -> dict[str, Any]:
    """What a template sees as ``contact``: names, location, attributes and tags."""
    values: dict[str, Any] = {name: getattr(contact, name) for name in CONTACT_FIELDS}
    values["attributes"] = dict(contact.attributes)
    values["tags"] = tuple(contact.tags)
    return values


async def preview_template(
    conn: AsyncConnection,
    template: Template,
    *,
    contact_id: int | None = None,
    email: str | None = None,
    subject: str = "",
    data: Mapping[str, Any] | None = None,
    shop: Mapping[str, Any] | None = None,
    public_url: str = "https://mail.example",
) -> RenderedEmail:
    """Render ``template`` for a contact (by id or address; the sample one when neither).

    Raises:
        NotFound: no such contact.
        InvalidInput: the template fails for this contact (line and column).
    """
    contact = None
    if email is not None:
        found = await find_contact_id(conn, email)
        if found is None:
            raise NotFound(f"no contact {email!r}")
        contact_id = found
    if contact_id is not None:
        contact = contact_values(await get_contact(conn, contact_id))
    ctx = sample_context(contact=contact, shop=shop, data=data, public_url=public_url)
    return await asyncio.to_thread(lambda: Renderer(template.html, subject).render(ctx))
