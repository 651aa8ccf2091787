"""Appliers shared by the shop mappings: people, orders, refunds, checkouts, products, privacy.

Owns turning the typed records a mapping read from a payload (:class:`Person`,
:class:`courriel.marketing.orders.OrderData`, …) into commerce writes inside the webhook's
transaction (a :data:`courriel.integrations.webhooks.Applier`). The mappings stay pure:
they read and validate the payload, and hand over what to write.

Invariants:
- A person who asked to be forgotten (a ``hash`` suppression) is never re-created from a
  shop's data: their customer, order and checkout webhooks are ignored.
- Optional contact fields a shop fills carelessly (a phone that is not a number, a region
  too long) are dropped, not fatal; a bad email address is a 422 naming its field.
- Contacts and events written here carry the integration's source (``"shopify:NAME"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.integrations.webhooks import Applied, Applier, HookContext
from courriel.marketing.checkouts import CheckoutData, upsert_checkout
from courriel.marketing.commerce import (
    CustomerData,
    delete_customer,
    refresh_order_aggregates,
    upsert_customer,
)
from courriel.marketing.consent import set_consent
from courriel.marketing.contacts import normalise_fields, upsert_contact
from courriel.marketing.gdpr import forget_in
from courriel.marketing.normalise import normalise_email, normalise_tags
from courriel.marketing.orders import (
    OrderData,
    RefundData,
    apply_refund,
    find_order,
    upsert_order,
)
from courriel.marketing.products import ProductData, delete_product, upsert_product
from courriel.marketing.suppression import is_forgotten
from courriel.marketing.types import ConsentChange, ContactData
from courriel.storage.models.marketing import (
    checkouts,
    contacts,
    customers,
    events,
    order_lines,
    orders,
    products,
)

__all__ = [
    "DatedConsent",
    "Person",
    "apply_person",
    "checkout_applier",
    "clean_tags",
    "customer_applier",
    "delete_customer_applier",
    "delete_product_applier",
    "note_applier",
    "order_applier",
    "order_cancel_applier",
    "person_contact",
    "product_applier",
    "redact_customer_applier",
    "redact_shop_applier",
    "refund_applier",
]

# Contact fields a bad value of is dropped rather than refused.
_DROPPABLE = frozenset({"phone", "country", "region", "city", "postal_code", "time_zone"})
_FORGOTTEN = "the customer asked to be forgotten: nothing stored"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatedConsent:
    """A consent decision read from a shop, with the time the shop says it was made."""

    change: ConsentChange
    at: datetime | None = None  # None: the time of receipt


@dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    """The buyer a payload names: a contact (if it has an address) and a shop customer."""

    contact: ContactData | None  # None: no email address (a POS sale, a phone-only buyer)
    customer_external_id: str | None = None
    consents: tuple[DatedConsent, ...] = ()


def clean_tags(values: Iterable[str]) -> tuple[str, ...]:
    """The shop's tags that make valid contact tags (1 to 64 printable characters)."""
    kept: list[str] = []
    for value in values:
        try:
            kept.extend(normalise_tags([value]))
        except InvalidInput:
            continue
    return tuple(sorted(set(kept)))


def person_contact(email: str | None, *, field: str, **fields: str | None) -> ContactData | None:
    """A :class:`ContactData` for ``email`` whose optional fields are known to be valid.

    Args:
        email: the address as the shop sent it; None or empty gives None.
        field: the payload path of the address, named when it is malformed.
        **fields: first_name, last_name, phone, country, region, city, postal_code.

    Raises:
        InvalidInput: the address is malformed (``field``), or a name is unusable.
    """
    if email is None or not email.strip():
        return None
    normalise_email(email, field=field)
    data = ContactData(email=email, **fields)  # type: ignore[arg-type]
    for _ in range(len(_DROPPABLE) + 1):
        try:
            normalise_fields(data)
        except InvalidInput as exc:
            if exc.field not in _DROPPABLE or getattr(data, exc.field) is None:
                raise InvalidInput(
                    str(exc), field=f"{field.rpartition('/')[0]}/{exc.field}".lstrip("/")
                ) from exc
            data = replace(data, **{exc.field: None})  # type: ignore[arg-type]
        else:
            return data
    return data  # pragma: no cover - every droppable field is None by now


async def apply_person(
    conn: AsyncConnection, ctx: HookContext, person: Person
) -> tuple[int | None, int | None] | None:
    """Store the person: contact, shop customer, consent.

    Returns:
        ``(contact_id, customer_id)`` (either None when absent), or None when the person
        asked to be forgotten (nothing is written).
    """
    if person.contact is None:
        return None, None
    if await is_forgotten(conn, person.contact.email):
        return None
    contact = replace(person.contact, source=ctx.source)
    customer_id: int | None = None
    if person.customer_external_id is not None:
        ref = await upsert_customer(
            conn,
            CustomerData(
                integration_id=ctx.integration_id,
                external_id=person.customer_external_id,
                contact=contact,
            ),
            now=ctx.now,
        )
        contact_id, customer_id = ref.contact_id, ref.customer_id
    else:
        contact_id = await upsert_contact(conn, contact, now=ctx.now)
    for consent in person.consents:
        await set_consent(conn, contact_id, consent.change, now=consent.at or ctx.now)
    return contact_id, customer_id


def customer_applier(person: Person) -> Applier:
    """Store a shop customer and its contact (a customer without email is ignored)."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        if person.contact is None:
            return Applied(status="ignored", detail="customer without an email address")
        ids = await apply_person(conn, ctx, person)
        if ids is None:
            return Applied(status="ignored", detail=_FORGOTTEN)
        return Applied(status="applied", detail=f"contact {ids[0]}")

    return apply


def delete_customer_applier(external_id: str) -> Applier:
    """Drop the shop's customer record; the contact and its history stay."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        if await delete_customer(conn, ctx.integration_id, external_id):
            return Applied(status="applied", detail=f"customer {external_id} unlinked")
        return Applied(status="ignored", detail=f"customer {external_id} was not known")

    return apply


def order_applier(person: Person, order: OrderData) -> Applier:
    """Store an order (its integration and contact filled in here) and its events."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        ids = await apply_person(conn, ctx, person)
        if ids is None:
            return Applied(status="ignored", detail=_FORGOTTEN)
        stored = replace(
            order, integration_id=ctx.integration_id, contact_id=ids[0], customer_id=ids[1]
        )
        order_id = await upsert_order(
            conn,
            stored,
            source=ctx.source,
            now=ctx.now,
            attribution_window=ctx.attribution_window,
        )
        return Applied(status="applied", detail=f"order {order_id} {stored.status}")

    return apply


def order_cancel_applier(external_id: str) -> Applier:
    """Take a deleted order out of the aggregates: it becomes ``cancelled``."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        order_id = await find_order(conn, ctx.integration_id, external_id)
        if order_id is None:
            return Applied(status="ignored", detail=f"order {external_id} was not known")
        row = (await conn.execute(select(orders.c.contact_id).where(orders.c.id == order_id))).one()
        await conn.execute(
            orders.update()
            .where(orders.c.id == order_id)
            # updated_at stays the shop's: a restore (with its own later time) applies.
            .values(status="cancelled", cancelled_at=ctx.now)
        )
        if row.contact_id is not None:
            await refresh_order_aggregates(conn, int(row.contact_id))
        return Applied(status="applied", detail=f"order {order_id} deleted by the shop")

    return apply


def refund_applier(order_external_id: str, refund: RefundData) -> Applier:
    """Count a refund on a known order (an unknown order brings its refunds itself)."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        order_id = await find_order(conn, ctx.integration_id, order_external_id)
        if order_id is None:
            return Applied(
                status="ignored",
                detail=f"order {order_external_id} not known yet (its refunds come with it)",
            )
        if not await apply_refund(conn, order_id, refund, source=ctx.source):
            return Applied(status="ignored", detail=f"refund {refund.external_id} counted before")
        contact_id = (
            await conn.execute(select(orders.c.contact_id).where(orders.c.id == order_id))
        ).scalar_one()
        if contact_id is not None:
            await refresh_order_aggregates(conn, int(contact_id))
        return Applied(status="applied", detail=f"refund {refund.external_id} on order {order_id}")

    return apply


def checkout_applier(person: Person, checkout: CheckoutData) -> Applier:
    """Store a checkout with its recovery link and its "Started Checkout" event."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        ids = await apply_person(conn, ctx, person)
        if ids is None:
            return Applied(status="ignored", detail=_FORGOTTEN)
        stored = replace(checkout, integration_id=ctx.integration_id, contact_id=ids[0])
        checkout_id = await upsert_checkout(conn, stored, source=ctx.source, now=ctx.now)
        return Applied(status="applied", detail=f"checkout {checkout_id}")

    return apply


async def _shop_currency(conn: AsyncConnection, integration_id: int) -> str | None:
    # Product payloads carry prices without their currency: it is the shop's, which its
    # latest order (or checkout) states.
    for table, time in ((orders, orders.c.placed_at), (checkouts, checkouts.c.created_at)):
        found = (
            await conn.execute(
                select(table.c.currency)
                .where(table.c.integration_id == integration_id, table.c.currency.is_not(None))
                .order_by(time.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if found is not None:
            return str(found)
    return None


def product_applier(build: Callable[[str | None], ProductData]) -> Applier:
    """Store a product; ``build(currency)`` makes its record once the shop's currency is known.

    Without any order yet the currency is unknown: prices are then read with two decimals
    and the currency is left empty.
    """

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        data = build(await _shop_currency(conn, ctx.integration_id))
        data = replace(data, integration_id=ctx.integration_id)
        product_id = await upsert_product(conn, data, now=ctx.now)
        return Applied(status="applied", detail=f"product {product_id}")

    return apply


def delete_product_applier(external_id: str) -> Applier:
    """Mark a product deleted (order lines keep their link)."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        if await delete_product(conn, ctx.integration_id, external_id, now=ctx.now):
            return Applied(status="applied", detail=f"product {external_id} deleted")
        return Applied(status="ignored", detail=f"product {external_id} was not known")

    return apply


def note_applier(detail: str) -> Applier:
    """Write nothing but the receipt (with ``detail``)."""

    async def apply(_conn: AsyncConnection, _ctx: HookContext) -> Applied:
        return Applied(status="applied", detail=detail)

    return apply


async def _customer_email(
    conn: AsyncConnection, integration_id: int, external_id: str
) -> str | None:
    found = (
        await conn.execute(
            select(contacts.c.email)
            .join(customers, customers.c.contact_id == contacts.c.id)
            .where(
                customers.c.integration_id == integration_id,
                customers.c.external_id == external_id,
            )
        )
    ).scalar_one_or_none()
    return None if found is None else str(found)


async def _delete_orders(conn: AsyncConnection, order_ids: Iterable[int]) -> None:
    ids = list(order_ids)
    if ids:
        await conn.execute(delete(order_lines).where(order_lines.c.order_id.in_(ids)))
        await conn.execute(delete(orders).where(orders.c.id.in_(ids)))


def redact_customer_applier(
    email: str | None, customer_external_id: str | None, order_external_ids: tuple[str, ...]
) -> Applier:
    """Erase a customer on the shop's request (GDPR): the person and the named orders."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        address = email
        if address is None and customer_external_id is not None:
            address = await _customer_email(conn, ctx.integration_id, customer_external_id)
        erased = address is not None and await forget_in(conn, address, now=ctx.now)
        if order_external_ids:
            found = await conn.execute(
                select(orders.c.id).where(
                    orders.c.integration_id == ctx.integration_id,
                    orders.c.external_id.in_(order_external_ids),
                )
            )
            await _delete_orders(conn, (int(i) for i in found.scalars()))
            for external_id in order_external_ids:
                # Events of a guest order have no contact: they go by their key. The prefix
                # is compared, not matched as a LIKE pattern: "_" and "%" in a shop's id are
                # literal, and SQLite's LIKE would also ignore ASCII case.
                prefix = f"order:{external_id}:"
                await conn.execute(
                    delete(events).where(
                        events.c.source == ctx.source,
                        func.substr(events.c.unique_key, 1, len(prefix)) == prefix,
                    )
                )
        what = "person erased" if erased else "no contact held; address suppressed"
        if address is None:
            what = "no contact held for this customer"
        return Applied(status="applied", detail=f"redact customer {customer_external_id}: {what}")

    return apply


def redact_shop_applier() -> Applier:
    """Erase everything the shop brought: its people (GDPR), orders, checkouts, products."""

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        linked = select(customers.c.contact_id).where(
            customers.c.integration_id == ctx.integration_id
        )
        emails = (
            await conn.execute(
                select(contacts.c.email).where(
                    or_(contacts.c.id.in_(linked), contacts.c.source == ctx.source)
                )
            )
        ).scalars()
        erased = 0
        for address in list(emails):
            erased += await forget_in(conn, str(address), now=ctx.now)
        left = await conn.execute(
            select(orders.c.id).where(orders.c.integration_id == ctx.integration_id)
        )
        await _delete_orders(conn, (int(i) for i in left.scalars()))
        await conn.execute(delete(events).where(events.c.source == ctx.source))
        for table in (checkouts, customers, products):
            await conn.execute(delete(table).where(table.c.integration_id == ctx.integration_id))
        return Applied(status="applied", detail=f"shop data erased ({erased} people)")

    return apply
