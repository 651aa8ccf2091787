"""A 500 logs the route template, never the concrete path or query: /u/confirm/{token}
paths carry signed link tokens, and the error log must not collect them."""

from __future__ import annotations

import logging
from typing import Any, cast

import httpx
import pytest
from litestar import get
from litestar.params import FromPath

from courriel.marketing.lists import CONFIRM_PURPOSE
from courriel.web import public
from courriel.web.app import WebServices, create_app


@get("/test/reset/{token:str}", sync_to_thread=False)
def failing(token: FromPath[str]) -> None:
    raise RuntimeError("the handler failed")


def _client(services: WebServices) -> httpx.AsyncClient:
    app = create_app(services, extra_routes=[failing])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=cast(Any, app)), base_url="http://t")


async def test_unexpected_error_logs_the_route_template(
    services: WebServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="courriel.web.problems")
    async with _client(services) as http:
        response = await http.get("/test/reset/SECRET-TOKEN-42", params={"key": "QUERY-SECRET"})
    assert response.status_code == 500
    assert "SECRET" not in response.text
    [record] = [r for r in caplog.records if r.name == "courriel.web.problems"]
    assert record.getMessage() == "unhandled error in GET /test/reset/{token}"
    assert record.exc_info is not None
    assert "SECRET" not in caplog.text


async def test_confirm_link_token_stays_out_of_the_log(
    services: WebServices, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> str:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(public, "confirm_subscription", broken)
    token = services.links.sign(CONFIRM_PURPOSE, {"l": 1, "c": 1})
    caplog.set_level(logging.ERROR, logger="courriel.web.problems")
    async with _client(services) as http:
        response = await http.post(f"/u/confirm/{token}")
    assert response.status_code == 500
    messages = [r.getMessage() for r in caplog.records if r.name == "courriel.web.problems"]
    assert messages == ["unhandled error in POST /u/confirm/{token}"]
    assert token not in caplog.text
