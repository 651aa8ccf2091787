"""Template rows on both databases: add, update, read, list, delete, preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.contacts import upsert_contact
from courriel.marketing.templates.preview import preview_template
from courriel.marketing.templates.service import (
    add_template,
    delete_template,
    get_template,
    get_template_by_name,
    list_templates,
    template_to_dict,
    update_template,
)
from courriel.marketing.types import ContactData
from courriel.storage.db import Database
from courriel.storage.models.campaigns import campaign_variants, campaigns

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MJML = (
    "<mjml><mj-body><mj-section><mj-column>\n"
    "<mj-text>Hello {{ contact.first_name | default('there') }} from {{ contact.city }}</mj-text>\n"
    "</mj-column></mj-section></mj-body></mjml>\n"
)


async def test_add_get_list_update(database: Database) -> None:
    async with database.write() as conn:
        made = await add_template(conn, name=" Welcome ", kind="mjml", source=MJML, now=T0)
        other = await add_template(conn, name="Plain", kind="html", source="<p>x</p>", now=T0)
    assert made.name == "Welcome" and made.kind == "mjml" and made.source == MJML
    assert "{{ contact.first_name | default('there') }}" in made.html and "<mj-" not in made.html
    async with database.read() as conn:
        assert await get_template(conn, made.id) == made
        assert await get_template_by_name(conn, "Welcome") == made
        assert [t.id for t in await list_templates(conn)] == [made.id, other.id]
        assert [t.id for t in await list_templates(conn, after=made.id, limit=1)] == [other.id]
    later = T0 + timedelta(hours=1)
    async with database.write() as conn:
        updated = await update_template(conn, other.id, source="<p>{{ shop.name }}</p>", now=later)
    assert updated.kind == "html" and updated.html == "<p>{{ shop.name }}</p>"
    async with database.read() as conn:
        stored = await get_template(conn, other.id)
    assert stored.updated_at == later and stored.created_at == T0
    assert template_to_dict(stored)["source"] == "<p>{{ shop.name }}</p>"
    assert "source" not in template_to_dict(stored, with_source=False)


async def test_refusals_write_nothing(database: Database) -> None:
    async with database.write() as conn:
        made = await add_template(conn, name="T", kind="html", source="<p>ok</p>", now=T0)
    with pytest.raises(AlreadyExists):
        async with database.write() as conn:
            await add_template(conn, name="T", kind="html", source="<p>x</p>", now=T0)
    with pytest.raises(InvalidInput) as caught:
        async with database.write() as conn:
            await add_template(conn, name="Bad", kind="html", source="<p>\n{{ x( }}", now=T0)
    assert caught.value.field == "source" and str(caught.value).startswith("line 2, ")
    with pytest.raises(InvalidInput) as caught:
        async with database.write() as conn:
            await update_template(conn, made.id, source="{% if %}", now=T0)
    assert caught.value.field == "source"
    with pytest.raises(InvalidInput):
        async with database.write() as conn:
            await add_template(conn, name="K", kind="txt", source="x", now=T0)
    async with database.read() as conn:
        assert [t.name for t in await list_templates(conn)] == ["T"]
        assert (await get_template(conn, made.id)).source == "<p>ok</p>"
        with pytest.raises(NotFound):
            await get_template_by_name(conn, "Bad")


async def test_delete_refused_while_a_campaign_uses_it(database: Database) -> None:
    async with database.write() as conn:
        used = await add_template(conn, name="Used", kind="html", source="<p>a</p>", now=T0)
        free = await add_template(conn, name="Free", kind="html", source="<p>b</p>", now=T0)
        campaign = await conn.execute(
            insert(campaigns)
            .values(
                name="Spring",
                from_address="shop@shop.example",
                audience=[],
                status="draft",
                created_at=T0,
                updated_at=T0,
            )
            .returning(campaigns.c.id)
        )
        campaign_id = int(campaign.scalar_one())
        await conn.execute(
            insert(campaign_variants).values(
                campaign_id=campaign_id, label="A", subject="Hi", template_id=used.id
            )
        )
    with pytest.raises(InvalidInput) as caught:
        async with database.write() as conn:
            await delete_template(conn, used.id)
    assert caught.value.field == "template" and str(campaign_id) in str(caught.value)
    async with database.write() as conn:
        await delete_template(conn, free.id)
    with pytest.raises(NotFound):
        async with database.write() as conn:
            await delete_template(conn, free.id)
    async with database.read() as conn:
        assert [t.name for t in await list_templates(conn)] == ["Used"]


async def test_preview_with_a_real_contact(database: Database) -> None:
    async with database.write() as conn:
        contact_id = await upsert_contact(
            conn,
            ContactData(email="ann@shop.example", first_name="Ann", city="Lyon"),
            now=T0,
        )
        made = await add_template(conn, name="W", kind="mjml", source=MJML, now=T0)
    async with database.read() as conn:
        by_id = await preview_template(
            conn, made, contact_id=contact_id, subject="{{ contact.email }}"
        )
        by_email = await preview_template(conn, made, email="ann@shop.example")
        sample = await preview_template(conn, made)
        with pytest.raises(NotFound):
            await preview_template(conn, made, email="nobody@shop.example")
    assert "Hello Ann from Lyon" in by_id.text and by_id.subject == "ann@shop.example"
    assert by_email.html == by_id.html
    assert "Hello Jane from Paris" in sample.text
