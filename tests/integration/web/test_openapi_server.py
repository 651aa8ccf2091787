"""The OpenAPI document, and the uvicorn HttpServer over a real socket."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from courriel.web.api.v1 import ROUTES
from courriel.web.app import WebServices, create_app
from courriel.web.server import HttpServer


def _api_paths() -> set[str]:
    paths: set[str] = set()
    for handler in ROUTES:
        for path in handler.paths:  # type: ignore[union-attr]
            paths.add(re.sub(r"\{(\w+):\w+\}", r"{\1}", path))
    return paths


async def test_openapi_document_lists_every_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"] == {"title": "courriel API", "version": "1"}
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    expected = _api_paths()
    assert len(expected) >= 10
    assert expected <= set(document["paths"]), expected - set(document["paths"])
    for path in expected:
        for operation in document["paths"][path].values():
            assert operation["security"] == [{"bearer": []}], path
    # Public pages are not part of the API document.
    assert not any(path.startswith("/u/") for path in document["paths"])
    # The upsert body is described with its fields.
    put = document["paths"]["/api/v1/contacts"]["put"]
    assert "requestBody" in put


async def test_http_server_answers_over_a_socket(
    services: WebServices, auth: dict[str, str]
) -> None:
    server = HttpServer(create_app(services))
    host, port = await server.start("127.0.0.1", 0)
    assert host == "127.0.0.1" and port > 0 and server.port == port
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            made = await http.put("/api/v1/contacts", json={"email": "s@shop.test"}, headers=auth)
            assert made.status_code == 201, made.text
            missing = await http.get("/api/v1/contacts")
            assert missing.status_code == 401
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert "date" in missing.headers
            assert "server" not in missing.headers
    finally:
        await server.stop(1.0)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/api/v1/openapi.json")


async def test_busy_port_is_an_os_error(services: WebServices) -> None:
    first = HttpServer(create_app(services))
    _, port = await first.start("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await HttpServer(create_app(services)).start("127.0.0.1", port)
    finally:
        await first.stop(0)
