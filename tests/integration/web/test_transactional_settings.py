"""The settings of a transactional send from the web (API and dashboard test send alike):
built from the app's services, the VERP key read once per app (both engines)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import update

from courriel.marketing.campaigns.feedback import VERP_KEY_NAME
from courriel.marketing.campaigns.tokens import Ref
from courriel.storage.models import secrets
from courriel.storage.secrets import shared_secret
from courriel.web.app import WebServices, create_app
from courriel.web.transactional import transactional_settings


async def test_the_settings_come_from_the_services_and_the_shared_verp_secret(
    services: WebServices,
) -> None:
    services = dataclasses.replace(
        services,
        shop_name="Test shop",
        shop_address="1 Test street",
        open_pixel=False,
        feedback_sender="shop",
    )
    settings = await transactional_settings(create_app(services), services)
    assert settings.verp_key == await shared_secret(services.db, VERP_KEY_NAME)
    assert len(settings.verp_key) == 32
    assert settings.shop == services.template_shop
    assert settings.shop["name"] == "Test shop"
    assert settings.open_pixel is False and settings.feedback_sender == "shop"
    assert settings.links.open_url(Ref("t", 7)).startswith("https://mail.shop.test/o/")


async def test_the_verp_key_is_read_once_per_app(services: WebServices) -> None:
    app = create_app(services)
    first = await transactional_settings(app, services)
    # The row changes under the app (it never does in use): the app keeps what it read,
    # so no send after the first reads the secrets table; a new app reads the row.
    async with services.db.write() as conn:
        await conn.execute(
            update(secrets).where(secrets.c.name == VERP_KEY_NAME).values(value=b"x" * 32)
        )
    assert (await transactional_settings(app, services)).verp_key == first.verp_key
    assert (await transactional_settings(create_app(services), services)).verp_key == b"x" * 32
