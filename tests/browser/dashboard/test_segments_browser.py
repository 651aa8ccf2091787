"""Building a segment in Chromium: conditions added in the builder, the live count, saving."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.dashboard.conftest import Dashboard

from courriel.marketing.contacts import upsert_contact
from courriel.marketing.types import ContactData

PEOPLE = [
    ContactData(email="ann@shop.test", first_name="Ann", country="FR", tags=("vip",)),
    ContactData(email="bob@shop.test", first_name="Bob", country="FR", tags=("vip",)),
    ContactData(email="cid@shop.test", first_name="Cid", country="FR"),
    ContactData(email="dee@shop.test", first_name="Dee", country="BE", tags=("vip",)),
    ContactData(email="eve@shop.test", first_name="Eve"),
]


async def _seed(dashboard: Dashboard) -> None:
    async with dashboard.services.db.write() as conn:
        for person in PEOPLE:
            await upsert_contact(conn, person, now=dashboard.services.clock())


async def _count_is(page: Any, count: int) -> None:
    await page.locator(f"#preview [data-count='{count}']").wait_for(timeout=10_000)


async def test_build_a_segment_watch_its_count_and_save_it(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/segments/new")
    await _count_is(page, 5)  # "all of" nothing: everyone

    await page.get_by_label("New condition").select_option("location")
    await page.get_by_role("button", name="Add condition").click()
    # An empty "is one of" cannot be counted: the parser's path is shown and outlined.
    await page.locator("#preview [data-field='conditions/0/value']").wait_for()
    await page.locator(".condition.invalid").wait_for()
    await page.get_by_label("Values (comma-separated)").fill("FR")
    await _count_is(page, 3)

    await page.get_by_label("New condition").select_option("tag")
    await page.get_by_role("button", name="Add condition").click()
    await page.get_by_label("Tag", exact=True).fill("vip")
    await _count_is(page, 2)
    members = page.locator("#preview tbody tr")
    assert await members.count() == 2
    assert "ann@shop.test" in await page.locator("#preview").inner_text()
    json_view = json.loads(await page.locator("#definition-json").input_value())
    assert json_view == {
        "kind": "all",
        "conditions": [
            {"kind": "location", "field": "country", "op": "in", "value": ["FR"]},
            {"kind": "tag", "tag": "vip", "present": True},
        ],
    }
    await shot(page, "segment-builder")

    await page.get_by_label("Name", exact=True).fill("French VIPs")
    await page.get_by_role("button", name="Save segment").click()
    await page.get_by_text("Segment saved.").wait_for()
    await page.get_by_role("link", name="French VIPs").wait_for()
    await page.get_by_role("button", name="Count the contacts of French VIPs").click()
    await page.locator(".segment-count strong", has_text="2").wait_for()


async def test_the_builder_fits_a_phone_and_a_viewer_only_previews(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "viewer", width=375)
    await page.goto(f"{dashboard.url}/segments/new")
    await page.get_by_label("New condition").select_option("event")
    await page.get_by_role("button", name="Add condition").click()
    await page.get_by_label("Happened").select_option("zero")
    await _count_is(page, 5)  # nobody viewed a product
    assert await page.get_by_role("button", name="Save segment").count() == 0
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert not overflow, "the builder scrolls sideways on a 375 px screen"
    await shot(page, "segment-builder-phone")


async def test_every_condition_kind_builds_a_tree_the_parser_accepts(
    browser: Any, dashboard: Dashboard, shot: Any
) -> None:
    await _seed(dashboard)
    page = await dashboard.page(browser, "marketer")
    await page.goto(f"{dashboard.url}/segments/new")
    await page.get_by_label("Contacts where").select_option("any")
    kinds = ["profile", "attribute", "location", "consent", "list", "tag", "order", "bought"]
    kinds += ["event", "engagement"]
    for kind in kinds:
        await page.locator("#seg-root-add-kind").select_option(kind)
        await page.locator("#seg-root-add").click()
    conditions = page.locator(".condition")
    assert await conditions.count() == len(kinds)
    # The defaults that need a value from the user: fill them in.
    await conditions.nth(0).get_by_label("Value").fill("shop.test")
    await conditions.nth(1).get_by_label("Attribute key").fill("plan")
    await conditions.nth(1).get_by_label("Value").fill("gold")
    await conditions.nth(2).get_by_label("Values (comma-separated)").fill("BE, LU")
    await conditions.nth(4).get_by_label("List name").fill("Newsletter")
    await conditions.nth(5).get_by_label("Tag", exact=True).fill("vip")
    await conditions.nth(7).get_by_label("Category").fill("Shoes")
    await conditions.nth(8).get_by_role("button", name="Add a property filter").click()
    await page.locator(".filter").get_by_label("Property").fill("Categories")
    # A "not" group around one more condition, nested in the root.
    await page.locator("#seg-root-add-group").click()
    group = page.locator("#seg-conditions-10-group")
    await group.select_option("not")
    await page.locator("#seg-conditions-10-add-kind").select_option("tag")
    await page.locator("#seg-conditions-10-add").click()
    await page.locator("#seg-conditions-10-condition-tag").fill("blocked")
    # Contains "shop.test" matches every seeded address.
    await _count_is(page, 5)
    tree = json.loads(await page.locator("#definition-json").input_value())
    assert [c["kind"] for c in tree["conditions"]] == [*kinds, "not"]
    assert tree["conditions"][10] == {
        "kind": "not",
        "condition": {"kind": "tag", "tag": "blocked", "present": True},
    }
    await shot(page, "segment-every-kind")
    await page.get_by_label("Name", exact=True).fill("Everything")
    await page.get_by_role("button", name="Save segment").click()
    await page.get_by_text("Segment saved.").wait_for()
