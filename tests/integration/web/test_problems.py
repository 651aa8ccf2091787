"""Every error leaves the app as RFC 9457 problem JSON; nothing internal is sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import get
from tests.integration.web.conftest import assert_problem

from courriel.errors import AlreadyExists, InvalidInput, NotFound, StorageError
from courriel.web.app import Services, WebServices, create_app


@get("/test/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("secret path /var/lib/courriel and password hunter2")


@get("/test/storage", sync_to_thread=False)
def storage() -> None:
    raise StorageError("database error: connection to 10.0.0.5 refused")


@get("/test/invalid", sync_to_thread=False)
def invalid() -> None:
    raise InvalidInput("must be a country code", field="country")


@get("/test/invalid-whole", sync_to_thread=False)
def invalid_whole() -> None:
    raise InvalidInput("the file is not CSV")


@get("/test/missing", sync_to_thread=False)
def missing() -> None:
    raise NotFound("no list 7")


@get("/test/exists", sync_to_thread=False)
def exists() -> None:
    raise AlreadyExists("list 'News' exists already")


@get("/test/services")
async def uses_services(services: Services) -> dict[str, str]:
    return {"public_url": services.public_url, "sender": services.mail_sender}


@pytest.fixture
async def test_client(services: WebServices) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        services,
        extra_routes=[boom, storage, invalid, invalid_whole, missing, exists, uses_services],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_unexpected_errors_are_generic_and_logged(
    test_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="courriel.web.problems"):
        for path in ("/test/boom", "/test/storage"):
            response = await test_client.get(path)
            problem = assert_problem(response, 500)
            assert problem["detail"] == "internal error"
            assert "hunter2" not in response.text and "10.0.0.5" not in response.text
    logged = [r for r in caplog.records if r.name == "courriel.web.problems"]
    assert len(logged) == 2
    assert logged[0].exc_info is not None and "hunter2" in str(logged[0].exc_info[1])


async def test_domain_errors_map_to_statuses(test_client: httpx.AsyncClient) -> None:
    problem = assert_problem(await test_client.get("/test/invalid"), 422, "country")
    assert problem["errors"] == [{"field": "country", "detail": "must be a country code"}]
    whole = assert_problem(await test_client.get("/test/invalid-whole"), 422)
    assert "field" not in whole and whole["detail"] == "the file is not CSV"
    assert assert_problem(await test_client.get("/test/missing"), 404)["detail"] == "no list 7"
    assert_problem(await test_client.get("/test/exists"), 409)


async def test_services_are_injected(test_client: httpx.AsyncClient) -> None:
    body = (await test_client.get("/test/services")).json()
    assert body == {"public_url": "https://mail.shop.test", "sender": "noreply@mail.shop.test"}


async def test_extra_routes_are_not_mounted_twice(services: WebServices) -> None:
    from courriel.web.routes import ROUTES

    app = create_app(services, extra_routes=list(ROUTES))
    paths = [route.path for route in app.routes]
    assert paths.count("/u/confirm/{token:str}") == 1
