"""Shopify webhooks: headers, signature and the mapping of each topic to commerce changes.

Owns reading Shopify's REST webhook payloads (as its webhook reference publishes them) into
:mod:`courriel.marketing` records. The pipeline (:mod:`courriel.integrations.webhooks`)
verifies ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body), deduplicates on
``X-Shopify-Webhook-Id`` and reads the topic from ``X-Shopify-Topic``.

Invariants:
- Mapping is pure: a payload with a bad field raises InvalidInput naming its path before
  anything is written.
- Money is read from Shopify's decimal strings ("12.50") exactly, into the minor units of
  the order's currency.
- Consent states: subscribed, unsubscribed, pending map as is; not_subscribed (Shopify's
  state for a customer who never opted in), redacted and invalid change nothing, so a
  routine customer update never wipes consent collected elsewhere (a courriel form, an
  import). The method is "shopify".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.errors import InvalidInput
from courriel.integrations.apply import (
    DatedConsent,
    Person,
    checkout_applier,
    clean_tags,
    customer_applier,
    delete_customer_applier,
    delete_product_applier,
    note_applier,
    order_applier,
    person_contact,
    product_applier,
    redact_customer_applier,
    redact_shop_applier,
    refund_applier,
)
from courriel.integrations.payload import (
    Obj,
    child,
    opt_id,
    opt_int,
    opt_obj,
    opt_str,
    opt_time,
    path,
    req_id,
    req_int,
    req_obj,
    req_str,
    req_time,
    seq,
)
from courriel.integrations.webhooks import Applied, Applier, HookContext, ShopAdapter
from courriel.marketing.checkouts import CheckoutData
from courriel.marketing.commerce import check_currency, to_minor
from courriel.marketing.orders import LineData, OrderData, OrderStatus, RefundData
from courriel.marketing.products import ProductData, ProductStatus, VariantData
from courriel.marketing.types import ConsentChange, ConsentStatus

__all__ = ["SHOPIFY", "TOPICS", "map_topic"]

log = logging.getLogger(__name__)

_CONSENT: Mapping[str, ConsentStatus | None] = {
    "subscribed": "subscribed",
    "unsubscribed": "unsubscribed",
    "pending": "pending",
    "not_subscribed": None,
    "redacted": None,
    "invalid": None,
}


def _tags(value: str | None) -> tuple[str, ...]:
    # Shopify sends tags as one comma-separated string.
    return clean_tags(t for t in (value or "").split(","))


def _consent(obj: Obj, key: str, where: str, channel: str) -> DatedConsent | None:
    consent = opt_obj(obj, key, where)
    if consent is None:
        return None
    here = path(where, key)
    state = (opt_str(consent, "state", here) or "").lower()
    if state not in _CONSENT:
        raise InvalidInput(f"unknown consent state {state!r}", field=path(here, "state"))
    status = _CONSENT[state]
    if status is None:
        return None
    level = opt_str(consent, "opt_in_level", here) or "unknown"
    return DatedConsent(
        change=ConsentChange(
            channel="email" if channel == "email" else "sms",
            status=status,
            method="shopify",
            detail=f"shopify {state}, opt_in_level={level}",
        ),
        at=opt_time(consent, "consent_updated_at", here),
    )


def _person(
    customer: Obj | None, where: str, *, email: str | None = None, address: Obj | None = None
) -> Person:
    """The buyer from a customer object (and an order's own email and address)."""
    cust = customer or {}
    addr = address if address is not None else child(cust, "default_address", where)
    addr_where = where if address is not None else path(where, "default_address")
    given = opt_str(cust, "email", where)
    email_field = path(where, "email") if given else "email"
    contact = person_contact(
        given or email,
        field=email_field,
        first_name=opt_str(cust, "first_name", where) or opt_str(addr, "first_name", addr_where),
        last_name=opt_str(cust, "last_name", where) or opt_str(addr, "last_name", addr_where),
        phone=opt_str(cust, "phone", where) or opt_str(addr, "phone", addr_where),
        country=opt_str(addr, "country_code", addr_where),
        region=opt_str(addr, "province", addr_where),
        city=opt_str(addr, "city", addr_where),
        postal_code=opt_str(addr, "zip", addr_where),
    )
    if contact is not None and customer is not None:
        tags = _tags(opt_str(cust, "tags", where))
        contact = replace(contact, tags=tags or None)
    return Person(contact=contact, customer_external_id=opt_id(cust, "id", where))


def _customer(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    person = _person(payload, "")
    consents = tuple(
        c
        for c in (
            _consent(payload, "email_marketing_consent", "", "email"),
            _consent(payload, "sms_marketing_consent", "", "sms"),
        )
        if c is not None
    )
    return customer_applier(
        Person(
            contact=person.contact,
            customer_external_id=req_id(payload, "id", ""),
            consents=consents,
        )
    )


def _customer_delete(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    return delete_customer_applier(req_id(payload, "id", ""))


def _consent_update(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    # customers/email_marketing_consent_update: {customer_id, email_address,
    # email_marketing_consent: {state, opt_in_level, consent_updated_at}}.
    consent = _consent(payload, "email_marketing_consent", "", "email")
    if opt_obj(payload, "email_marketing_consent", "") is None:
        raise InvalidInput("is required", field="email_marketing_consent")
    contact = person_contact(opt_str(payload, "email_address", ""), field="email_address")
    if contact is None:
        return note_applier("consent update without an email address: nothing to record")
    return customer_applier(
        Person(
            contact=contact,
            customer_external_id=opt_id(payload, "customer_id", ""),
            consents=() if consent is None else (consent,),
        )
    )


def _lines(items: Sequence[Any], where: str, currency: str) -> tuple[LineData, ...]:
    lines: list[LineData] = []
    for index, raw in enumerate(items):
        here = path(where, index)
        item = req_obj(raw, here)
        quantity = req_int(item, "quantity", here)
        if quantity < 0:
            raise InvalidInput("must not be negative", field=path(here, "quantity"))
        lines.append(
            LineData(
                external_id=opt_id(item, "id", here),
                external_product_id=opt_id(item, "product_id", here),
                external_variant_id=opt_id(item, "variant_id", here),
                title=opt_str(item, "title", here, max_length=512)
                or opt_str(item, "name", here, max_length=512)
                or "(untitled)",
                sku=opt_str(item, "sku", here, max_length=128),
                quantity=quantity,
                price_minor=to_minor(item.get("price", "0"), currency, field=path(here, "price")),
            )
        )
    return tuple(lines)


def _money(obj: Obj, key: str, where: str, currency: str) -> int:
    value = obj.get(key)
    return 0 if value is None else to_minor(value, currency, field=path(where, key))


def _shipping(order: Obj, currency: str) -> int:
    shop_money = child(child(order, "total_shipping_price_set", ""), "shop_money", "")
    if shop_money.get("amount") is not None:
        where = "total_shipping_price_set/shop_money"
        return to_minor(shop_money["amount"], currency, field=path(where, "amount"))
    return sum(
        _money(req_obj(line, f"shipping_lines/{i}"), "price", f"shipping_lines/{i}", currency)
        for i, line in enumerate(seq(order, "shipping_lines", ""))
    )


def _status(order: Obj) -> OrderStatus:
    financial = (opt_str(order, "financial_status", "") or "").lower()
    if opt_str(order, "cancelled_at", ""):
        return "cancelled"
    if financial == "refunded":
        return "refunded"
    if (opt_str(order, "fulfillment_status", "") or "").lower() == "fulfilled":
        return "fulfilled"
    if financial in ("paid", "partially_refunded", "partially_paid"):
        return "paid"
    return "placed"


def _refund(raw: Any, where: str, currency: str) -> RefundData | None:
    refund = req_obj(raw, where)
    amount = 0
    for index, tx_raw in enumerate(seq(refund, "transactions", where)):
        here = path(path(where, "transactions"), index)
        tx = req_obj(tx_raw, here)
        kind = (opt_str(tx, "kind", here) or "refund").lower()
        status = (opt_str(tx, "status", here) or "success").lower()
        if kind == "refund" and status == "success":
            amount += _money(tx, "amount", here, currency)
    if amount <= 0:
        return None  # a restock or a failed refund moved no money
    return RefundData(
        external_id=req_id(refund, "id", where),
        amount_minor=amount,
        created_at=opt_time(refund, "processed_at", where) or req_time(refund, "created_at", where),
        reason=opt_str(refund, "note", where, max_length=1000),
    )


def _order_data(order: Obj) -> OrderData:
    currency = check_currency(order.get("currency"))
    refunds = (
        _refund(raw, f"refunds/{i}", currency) for i, raw in enumerate(seq(order, "refunds", ""))
    )
    codes = (
        req_str(req_obj(raw, f"discount_codes/{i}"), "code", f"discount_codes/{i}", max_length=255)
        for i, raw in enumerate(seq(order, "discount_codes", ""))
    )
    return OrderData(
        integration_id=None,
        external_id=req_id(order, "id", ""),
        number=opt_str(order, "name", "", max_length=64),
        currency=currency,
        subtotal_minor=_money(order, "subtotal_price", "", currency),
        discount_minor=_money(order, "total_discounts", "", currency),
        shipping_minor=_shipping(order, currency),
        tax_minor=_money(order, "total_tax", "", currency),
        total_minor=to_minor(order.get("total_price"), currency, field="total_price"),
        discount_codes=tuple(codes),
        status=_status(order),
        financial_status=opt_str(order, "financial_status", "", max_length=32),
        fulfillment_status=opt_str(order, "fulfillment_status", "", max_length=32),
        placed_at=opt_time(order, "processed_at", "") or req_time(order, "created_at", ""),
        updated_at=opt_time(order, "updated_at", ""),
        cancelled_at=opt_time(order, "cancelled_at", ""),
        lines=_lines(seq(order, "line_items", ""), "line_items", currency),
        refunds=tuple(r for r in refunds if r is not None),
        checkout_external_id=opt_id(order, "checkout_id", ""),
    )


def _order(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    order = _order_data(payload)
    email = opt_str(payload, "email", "") or opt_str(payload, "contact_email", "")
    customer = opt_obj(payload, "customer", "")
    address = opt_obj(payload, "billing_address", "")
    where = "customer" if customer is not None else ""
    person = _person(customer, where, email=email, address=address)
    return order_applier(person, order)


def _refund_create(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    # refunds/create: {id, order_id, created_at, note, refund_line_items, transactions}.
    transactions = seq(payload, "transactions", "")
    first = req_obj(transactions[0], "transactions/0") if transactions else {}
    currency = check_currency(first.get("currency", "USD"), field="transactions/0/currency")
    refund = _refund(payload, "", currency)
    order_id = req_id(payload, "order_id", "")
    if refund is None:
        return note_applier(f"refund on order {order_id} moved no money")
    return refund_applier(order_id, refund)


def _checkout(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    currency = check_currency(
        payload.get("currency") or payload.get("presentment_currency"), field="currency"
    )
    total = payload.get("total_price")
    checkout = CheckoutData(
        integration_id=None,
        external_id=req_id(payload, "id", ""),
        recovery_url=opt_str(payload, "abandoned_checkout_url", ""),
        currency=currency,
        total_minor=None if total is None else to_minor(total, currency, field="total_price"),
        lines=_lines(seq(payload, "line_items", ""), "line_items", currency),
        created_at=req_time(payload, "created_at", ""),
        completed_at=opt_time(payload, "completed_at", ""),
    )
    customer = opt_obj(payload, "customer", "")
    where = "customer" if customer is not None else ""
    person = _person(
        customer,
        where,
        email=opt_str(payload, "email", ""),
        address=opt_obj(payload, "billing_address", ""),
    )
    return checkout_applier(person, checkout)


def _product_builder(
    payload: Obj, headers: Mapping[str, str]
) -> Callable[[str | None], ProductData]:
    external_id = req_id(payload, "id", "")
    title = req_str(payload, "title", "", max_length=512)
    handle = opt_str(payload, "handle", "")
    domain = headers.get("x-shopify-shop-domain", "").strip()
    url = f"https://{domain}/products/{handle}" if handle and domain else None
    image = opt_obj(payload, "image", "")
    images = seq(payload, "images", "")
    if image is None and images:
        image = req_obj(images[0], "images/0")
    image_url = None if image is None else opt_str(image, "src", "image")
    raw_status = (opt_str(payload, "status", "") or "active").lower()
    statuses: dict[str, ProductStatus] = {
        "active": "active",
        "draft": "draft",
        "archived": "archived",
    }
    if raw_status not in statuses:
        raise InvalidInput(f"unknown product status {raw_status!r}", field="status")
    category = opt_str(payload, "product_type", "", max_length=255)
    categories = tuple(
        sorted({*([category] if category else []), *_tags(opt_str(payload, "tags", ""))})
    )
    variants_raw = [req_obj(v, f"variants/{i}") for i, v in enumerate(seq(payload, "variants", ""))]

    def build(currency: str | None) -> ProductData:
        reading = currency or "USD"  # two decimals when the shop's currency is not known yet
        variants = tuple(_variant(v, f"variants/{i}", reading) for i, v in enumerate(variants_raw))
        prices = [v.price_minor for v in variants if v.price_minor is not None]
        return ProductData(
            integration_id=None,
            external_id=external_id,
            title=title,
            url=url,
            image_url=image_url,
            price_minor=min(prices) if prices else None,
            currency=currency,
            status=statuses[raw_status],
            categories=categories,
            variants=variants,
        )

    build(None)  # validates every field now, before anything is written
    return build


def _variant(variant: Obj, where: str, currency: str) -> VariantData:
    tracked = opt_str(variant, "inventory_management", where) is not None
    price = variant.get("price")
    return VariantData(
        external_id=req_id(variant, "id", where),
        title=opt_str(variant, "title", where, max_length=512) or "Default Title",
        sku=opt_str(variant, "sku", where, max_length=128),
        price_minor=None
        if price is None
        else to_minor(price, currency, field=path(where, "price")),
        stock=opt_int(variant, "inventory_quantity", where) if tracked else None,
    )


def _product(payload: Obj, headers: Mapping[str, str]) -> Applier:
    return product_applier(_product_builder(payload, headers))


def _product_delete(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    return delete_product_applier(req_id(payload, "id", ""))


def _data_request(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    # customers/data_request: {shop_id, shop_domain, orders_requested, customer: {id, email,
    # phone}, data_request: {id}}. Sending the data to the merchant is the operator's job.
    customer = child(payload, "customer", "")
    request_id = opt_id(child(payload, "data_request", ""), "id", "data_request")
    customer_id = opt_id(customer, "id", "customer")
    detail = (
        f"data request {request_id} for customer {customer_id}: "
        "export it with `courriel contacts export-data EMAIL` and send it to the shop"
    )
    note = note_applier(detail)

    async def apply(conn: AsyncConnection, ctx: HookContext) -> Applied:
        applied = await note(conn, ctx)
        # The operator's to-do; the address stays out of the log (it is in the shop).
        log.warning("%s: %s", ctx.source, detail)
        return applied

    return apply


def _customer_redact(payload: Obj, _headers: Mapping[str, str]) -> Applier:
    # customers/redact: {shop_id, shop_domain, customer: {id, email, phone}, orders_to_redact}.
    customer = req_obj(payload.get("customer"), "customer")
    email = opt_str(customer, "email", "customer")
    if email is not None:
        person_contact(email, field="customer/email")
    orders = tuple(
        req_id({"id": raw}, "id", f"orders_to_redact/{i}")
        for i, raw in enumerate(seq(payload, "orders_to_redact", ""))
    )
    return redact_customer_applier(email, opt_id(customer, "id", "customer"), orders)


def _shop_redact(_payload: Obj, _headers: Mapping[str, str]) -> Applier:
    return redact_shop_applier()


TOPICS: Mapping[str, Callable[[Obj, Mapping[str, str]], Applier]] = {
    "customers/create": _customer,
    "customers/update": _customer,
    "customers/delete": _customer_delete,
    "customers/email_marketing_consent_update": _consent_update,
    "orders/create": _order,
    "orders/updated": _order,
    "orders/paid": _order,
    "orders/fulfilled": _order,
    "orders/cancelled": _order,
    "refunds/create": _refund_create,
    "checkouts/create": _checkout,
    "checkouts/update": _checkout,
    "products/create": _product,
    "products/update": _product,
    "products/delete": _product_delete,
    "customers/data_request": _data_request,
    "customers/redact": _customer_redact,
    "shop/redact": _shop_redact,
}


def map_topic(topic: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Applier | None:
    """The change a Shopify webhook asks for; None for a topic courriel does not handle.

    Raises:
        InvalidInput: a field of the payload is missing or malformed (``field`` is its path).
    """
    mapping = TOPICS.get(topic)
    return None if mapping is None else mapping(payload, headers)


SHOPIFY = ShopAdapter(
    kind="shopify",
    signature_header="x-shopify-hmac-sha256",
    topic_header="x-shopify-topic",
    delivery_header="x-shopify-webhook-id",
    mapper=map_topic,
)
