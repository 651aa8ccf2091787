"""WooCommerce webhooks: headers, the creation ping, and the mapping of each topic.

Owns reading WooCommerce REST API v3 payloads (the shape its webhooks deliver) into
:mod:`courriel.marketing` records. The pipeline (:mod:`courriel.integrations.webhooks`)
verifies ``X-WC-Webhook-Signature`` (base64 HMAC-SHA256 of the raw body), deduplicates on
``X-WC-Webhook-Delivery-ID`` and reads the topic from ``X-WC-Webhook-Topic``.

Invariants:
- The ping WooCommerce sends when a webhook is saved (form body ``webhook_id=N``, no
  signature, no topic) is answered 200 and changes nothing.
- Order statuses: pending, on-hold and checkout-draft are "placed", processing "paid",
  completed "fulfilled", cancelled, failed and trash "cancelled" (they do not count in the
  aggregates), refunded "refunded". A deleted order becomes "cancelled".
- Product statuses: publish is "active", draft, pending and private "draft", trash "deleted".
- Money is read from WooCommerce's decimal strings exactly (its float ``price`` of a line is
  not used: the unit price is the line's ``subtotal`` over its quantity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from courriel.errors import InvalidInput
from courriel.integrations.apply import (
    Person,
    clean_tags,
    customer_applier,
    delete_customer_applier,
    delete_product_applier,
    order_applier,
    order_cancel_applier,
    person_contact,
    product_applier,
)
from courriel.integrations.payload import (
    Obj,
    child,
    opt_id,
    opt_int,
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
from courriel.integrations.webhooks import Applier, ShopAdapter
from courriel.marketing.commerce import check_currency, to_minor
from courriel.marketing.orders import LineData, OrderData, OrderStatus, RefundData
from courriel.marketing.products import ProductData, ProductStatus

__all__ = ["TOPICS", "WOOCOMMERCE", "is_ping", "map_topic"]

_PING = re.compile(rb"webhook_id=\d{1,20}")

_ORDER_STATUS: Mapping[str, OrderStatus] = {
    "pending": "placed",
    "on-hold": "placed",
    "checkout-draft": "placed",
    "processing": "paid",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "failed": "cancelled",
    "trash": "cancelled",
    "refunded": "refunded",
}
_PRODUCT_STATUS: Mapping[str, ProductStatus] = {
    "publish": "active",
    "future": "draft",
    "draft": "draft",
    "pending": "draft",
    "private": "draft",
    "trash": "deleted",
}


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """The unsigned ping WooCommerce sends when a webhook is saved: ``webhook_id=N``."""
    return "x-wc-webhook-topic" not in headers and bool(_PING.fullmatch(body.strip()))


def _person(obj: Obj, where: str, *, customer_id: str | None) -> Person:
    """The buyer from a customer or an order: its own fields, else its billing address."""
    billing = child(obj, "billing", where)
    here = path(where, "billing")
    own = opt_str(obj, "email", where)
    contact = person_contact(
        own or opt_str(billing, "email", here),
        field=path(where, "email") if own else path(here, "email"),
        first_name=opt_str(obj, "first_name", where) or opt_str(billing, "first_name", here),
        last_name=opt_str(obj, "last_name", where) or opt_str(billing, "last_name", here),
        phone=opt_str(billing, "phone", here),
        country=opt_str(billing, "country", here),
        region=opt_str(billing, "state", here),
        city=opt_str(billing, "city", here),
        postal_code=opt_str(billing, "postcode", here),
    )
    return Person(contact=contact, customer_external_id=customer_id)


def _customer(payload: Obj) -> Applier:
    return customer_applier(_person(payload, "", customer_id=req_id(payload, "id", "")))


def _customer_delete(payload: Obj) -> Applier:
    return delete_customer_applier(req_id(payload, "id", ""))


def _money(obj: Obj, key: str, where: str, currency: str) -> int:
    value = obj.get(key)
    return 0 if value in (None, "") else to_minor(value, currency, field=path(where, key))


def _lines(items: Sequence[Any], currency: str) -> tuple[LineData, ...]:
    lines: list[LineData] = []
    for index, raw in enumerate(items):
        here = f"line_items/{index}"
        item = req_obj(raw, here)
        quantity = req_int(item, "quantity", here)
        if quantity < 0:
            raise InvalidInput("must not be negative", field=path(here, "quantity"))
        subtotal = _money(item, "subtotal", here, currency)
        unit = Decimal(subtotal) / quantity if quantity else Decimal(subtotal)
        lines.append(
            LineData(
                external_id=opt_id(item, "id", here),
                external_product_id=opt_id(item, "product_id", here),
                external_variant_id=opt_id(item, "variation_id", here),
                title=opt_str(item, "name", here, max_length=512) or "(untitled)",
                sku=opt_str(item, "sku", here, max_length=128),
                quantity=quantity,
                price_minor=int(unit.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
            )
        )
    return tuple(lines)


def _refunds(order: Obj, currency: str) -> tuple[RefundData, ...]:
    # An order lists its refunds as {id, reason, total: "-5.00"} (the total is negative).
    when = opt_time(order, "date_modified_gmt", "") or req_time(order, "date_created_gmt", "")
    refunds: list[RefundData] = []
    for index, raw in enumerate(seq(order, "refunds", "")):
        here = f"refunds/{index}"
        refund = req_obj(raw, here)
        amount = abs(_money(refund, "total", here, currency))
        if amount:
            refunds.append(
                RefundData(
                    external_id=req_id(refund, "id", here),
                    amount_minor=amount,
                    created_at=when,
                    reason=opt_str(refund, "reason", here, max_length=1000),
                )
            )
    return tuple(refunds)


def _order_data(order: Obj) -> OrderData:
    currency = check_currency(order.get("currency"))
    raw_status = (opt_str(order, "status", "") or "pending").lower()
    if raw_status not in _ORDER_STATUS:
        raise InvalidInput(f"unknown order status {raw_status!r}", field="status")
    lines = _lines(seq(order, "line_items", ""), currency)
    codes = (
        req_str(req_obj(raw, f"coupon_lines/{i}"), "code", f"coupon_lines/{i}", max_length=255)
        for i, raw in enumerate(seq(order, "coupon_lines", ""))
    )
    status = _ORDER_STATUS[raw_status]
    updated = opt_time(order, "date_modified_gmt", "")
    return OrderData(
        integration_id=None,
        external_id=req_id(order, "id", ""),
        number=opt_str(order, "number", "", max_length=64),
        currency=currency,
        subtotal_minor=sum(line.price_minor * line.quantity for line in lines),
        discount_minor=_money(order, "discount_total", "", currency),
        shipping_minor=_money(order, "shipping_total", "", currency),
        tax_minor=_money(order, "total_tax", "", currency),
        total_minor=to_minor(order.get("total"), currency, field="total"),
        discount_codes=tuple(codes),
        status=status,
        financial_status=raw_status,
        fulfillment_status="fulfilled" if raw_status == "completed" else None,
        placed_at=req_time(order, "date_created_gmt", ""),
        updated_at=updated,
        cancelled_at=updated if status == "cancelled" else None,
        lines=lines,
        refunds=_refunds(order, currency),
    )


def _order(payload: Obj) -> Applier:
    order = _order_data(payload)
    person = _person(payload, "", customer_id=opt_id(payload, "customer_id", ""))
    # The order's own "email" is not a WooCommerce field; the buyer is its billing address.
    return order_applier(person, order)


def _order_delete(payload: Obj) -> Applier:
    return order_cancel_applier(req_id(payload, "id", ""))


def _product(payload: Obj) -> Applier:
    external_id = req_id(payload, "id", "")
    title = req_str(payload, "name", "", max_length=512)
    raw_status = (opt_str(payload, "status", "") or "publish").lower()
    if raw_status not in _PRODUCT_STATUS:
        raise InvalidInput(f"unknown product status {raw_status!r}", field="status")
    names = [
        req_str(req_obj(raw, f"categories/{i}"), "name", f"categories/{i}", max_length=255)
        for i, raw in enumerate(seq(payload, "categories", ""))
    ]
    images = seq(payload, "images", "")
    image_url = opt_str(req_obj(images[0], "images/0"), "src", "images/0") if images else None
    managed = payload.get("manage_stock") is True
    stock = opt_int(payload, "stock_quantity", "") if managed else None
    base = ProductData(
        integration_id=None,
        external_id=external_id,
        title=title,
        url=opt_str(payload, "permalink", ""),
        image_url=image_url,
        stock=stock,
        status=_PRODUCT_STATUS[raw_status],
        categories=clean_tags(names),
    )
    price = payload.get("price")

    def build(currency: str | None) -> ProductData:
        if price in (None, ""):
            return replace(base, currency=currency)
        minor = to_minor(price, currency or "USD", field="price")
        return replace(base, price_minor=minor, currency=currency)

    build(None)  # validates the price now, before anything is written
    return product_applier(build)


def _product_delete(payload: Obj) -> Applier:
    return delete_product_applier(req_id(payload, "id", ""))


TOPICS: Mapping[str, Callable[[Obj], Applier]] = {
    "order.created": _order,
    "order.updated": _order,
    "order.restored": _order,
    "order.deleted": _order_delete,
    "customer.created": _customer,
    "customer.updated": _customer,
    "customer.deleted": _customer_delete,
    "product.created": _product,
    "product.updated": _product,
    "product.restored": _product,
    "product.deleted": _product_delete,
}


def map_topic(
    topic: str, payload: Mapping[str, Any], _headers: Mapping[str, str]
) -> Applier | None:
    """The change a WooCommerce webhook asks for; None for a topic courriel does not handle.

    Raises:
        InvalidInput: a field of the payload is missing or malformed (``field`` is its path).
    """
    mapping = TOPICS.get(topic)
    return None if mapping is None else mapping(payload)


WOOCOMMERCE = ShopAdapter(
    kind="woocommerce",
    signature_header="x-wc-webhook-signature",
    topic_header="x-wc-webhook-topic",
    delivery_header="x-wc-webhook-delivery-id",
    mapper=map_topic,
    is_ping=is_ping,
)
