"""/api/v1/products, /api/v1/orders and /api/v1/segments on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from tests.integration.web.conftest import MakeKey, assert_problem

from courriel.integrations.registry import add_integration
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.orders import LineData, OrderData, upsert_order
from courriel.marketing.products import ProductData, VariantData, upsert_product
from courriel.marketing.types import ContactData
from courriel.storage.db import Database

WHEN = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


async def _seed_shop(database: Database) -> tuple[int, list[int], list[int]]:
    shop = await add_integration(database, "shopify", "shop", "s3cret", now=WHEN)
    async with database.write() as conn:
        contact_id = await upsert_contact(conn, ContactData(email="o@shop.test"), now=WHEN)
        other_id = await upsert_contact(conn, ContactData(email="p@shop.test"), now=WHEN)
        product_ids = [
            await upsert_product(
                conn,
                ProductData(
                    integration_id=shop.id,
                    external_id=f"p{i}",
                    title=f"Shoe {i}",
                    price_minor=4500 + i,
                    currency="EUR",
                    categories=("shoes", f"size-{i}"),
                    variants=(VariantData(external_id=f"v{i}", title="42", sku=f"S{i}"),),
                ),
                now=WHEN,
            )
            for i in range(3)
        ]
        order_ids = []
        for n, who in enumerate((contact_id, other_id, contact_id)):
            order_ids.append(
                await upsert_order(
                    conn,
                    OrderData(
                        integration_id=shop.id,
                        external_id=f"o{n}",
                        number=f"#100{n}",
                        contact_id=who,
                        currency="EUR",
                        total_minor=9000,
                        discount_codes=("WELCOME",),
                        status="paid",
                        placed_at=WHEN,
                        lines=(
                            LineData(
                                external_product_id="p0",
                                title="Shoe 0",
                                quantity=2,
                                price_minor=4500,
                            ),
                        ),
                    ),
                    source="test",
                    now=WHEN,
                )
            )
    return contact_id, product_ids, order_ids


async def test_products(
    client: httpx.AsyncClient, auth: dict[str, str], database: Database
) -> None:
    _, product_ids, _ = await _seed_shop(database)
    first = (await client.get("/api/v1/products?limit=2", headers=auth)).json()
    rest = (await client.get(f"/api/v1/products?after={first['next']}", headers=auth)).json()
    listed = first["data"] + rest["data"]
    assert [p["id"] for p in listed] == product_ids
    assert rest["next"] is None
    assert listed[1]["categories"] == ["shoes", "size-1"]
    assert listed[1]["price_minor"] == 4501 and listed[1]["currency"] == "EUR"
    assert listed[1]["integration"] == "shop"
    one = (await client.get(f"/api/v1/products/{product_ids[2]}", headers=auth)).json()
    assert one["title"] == "Shoe 2"
    assert [(v["external_id"], v["sku"]) for v in one["variants"]] == [("v2", "S2")]
    assert_problem(await client.get("/api/v1/products/999", headers=auth), 404)
    assert_problem(await client.get("/api/v1/products/x", headers=auth), 404)


async def test_orders(client: httpx.AsyncClient, auth: dict[str, str], database: Database) -> None:
    contact_id, product_ids, order_ids = await _seed_shop(database)
    mine = (await client.get("/api/v1/orders?contact=o@shop.test", headers=auth)).json()
    assert [o["id"] for o in mine["data"]] == [order_ids[0], order_ids[2]]
    assert mine["data"][0]["contact_id"] == contact_id
    by_id = (await client.get(f"/api/v1/orders?contact={contact_id}", headers=auth)).json()
    assert by_id["data"] == mine["data"]
    everything = (await client.get("/api/v1/orders?limit=2", headers=auth)).json()
    assert len(everything["data"]) == 2 and everything["next"] == str(order_ids[1])
    one = (await client.get(f"/api/v1/orders/{order_ids[1]}", headers=auth)).json()
    assert (one["number"], one["total_minor"], one["discount_codes"]) == (
        "#1001",
        9000,
        ["WELCOME"],
    )
    assert [(line["title"], line["quantity"], line["product_id"]) for line in one["lines"]] == [
        ("Shoe 0", 2, product_ids[0])
    ]
    assert_problem(await client.get("/api/v1/orders/999", headers=auth), 404)
    assert_problem(await client.get("/api/v1/orders?contact=nobody@shop.test", headers=auth), 404)
    assert_problem(await client.get("/api/v1/orders?contact=nobody", headers=auth), 422, "contact")


async def test_segments(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for i in range(5):
        tags = ["vip"] if i % 2 == 0 else []
        await client.put(
            "/api/v1/contacts", json={"email": f"s{i}@shop.test", "tags": tags}, headers=auth
        )
    vip = {"kind": "all", "conditions": [{"kind": "tag", "tag": "vip"}]}
    counted = await client.post("/api/v1/segments/count", json={"definition": vip}, headers=auth)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"count": 3}
    made = await client.post(
        "/api/v1/segments", json={"name": "VIP", "definition": vip}, headers=auth
    )
    assert made.status_code == 201, made.text
    segment = made.json()
    assert segment["name"] == "VIP"
    assert_problem(
        await client.post(
            "/api/v1/segments", json={"name": "VIP", "definition": vip}, headers=auth
        ),
        409,
    )
    sid = segment["id"]
    assert (await client.get(f"/api/v1/segments/{sid}/count", headers=auth)).json() == {"count": 3}
    first = (await client.get(f"/api/v1/segments/{sid}/members?limit=2", headers=auth)).json()
    rest = (
        await client.get(f"/api/v1/segments/{sid}/members?after={first['next']}", headers=auth)
    ).json()
    members = first["data"] + rest["data"]
    assert len(members) == 3 and members == sorted(members)
    assert rest["next"] is None
    listed = (await client.get("/api/v1/segments", headers=auth)).json()
    assert [s["name"] for s in listed["data"]] == ["VIP"]
    renamed = await client.patch(f"/api/v1/segments/{sid}", json={"name": "Best"}, headers=auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Best"
    assert (await client.get(f"/api/v1/segments/{sid}", headers=auth)).json()["name"] == "Best"
    assert (await client.delete(f"/api/v1/segments/{sid}", headers=auth)).status_code == 204
    assert_problem(await client.get(f"/api/v1/segments/{sid}", headers=auth), 404)
    assert_problem(await client.get(f"/api/v1/segments/{sid}/count", headers=auth), 404)


async def test_segment_errors_name_the_path(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    bad = {"kind": "all", "conditions": [{"kind": "tag", "tag": "x"}, {"kind": "teleport"}]}
    problem = assert_problem(
        await client.post("/api/v1/segments/count", json={"definition": bad}, headers=auth),
        422,
        "definition/conditions/1/kind",
    )
    assert "teleport" in problem["detail"]
    assert_problem(
        await client.post("/api/v1/segments", json={"name": "B", "definition": bad}, headers=auth),
        422,
        "definition/conditions/1/kind",
    )
    assert_problem(
        await client.post(
            "/api/v1/segments",
            json={"name": " ", "definition": {"kind": "all", "conditions": []}},
            headers=auth,
        ),
        422,
        "name",
    )
    assert_problem(
        await client.post("/api/v1/segments", json={"name": "C"}, headers=auth), 422, "definition"
    )


async def test_shop_scopes(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    lists_only = await make_key("lists:read")
    for path in ("/api/v1/products", "/api/v1/orders", "/api/v1/segments"):
        assert_problem(await client.get(path, headers=lists_only), 403)
