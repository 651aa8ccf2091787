"""API keys (marketing.apikeys) and the Bearer guard, on both databases."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from tests.integration.web.conftest import Clock, MakeKey, assert_problem

from courriel.errors import AlreadyExists, InvalidInput, NotFound
from courriel.marketing.apikeys import create_key, list_keys, revoke_key, verify_key
from courriel.storage.db import Database


async def test_key_lifecycle(database: Database, clock: Clock) -> None:
    info, secret = await create_key(
        database, "shop-sync", ["contacts:read", "events:write"], now=clock()
    )
    assert secret.startswith("ck_") and len(secret) == 46
    assert info.prefix == secret[:10]
    assert info.scopes == {"contacts:read", "events:write"}
    found = await verify_key(database, secret, now=clock())
    assert found is not None and found.id == info.id
    assert found.allows("contacts:read") and not found.allows("contacts:write")
    listed = await list_keys(database)
    assert [(k.name, k.last_used_at) for k in listed] == [("shop-sync", clock())]
    # Used again within a minute: the time of use is not rewritten.
    clock.advance(timedelta(seconds=30))
    await verify_key(database, secret, now=clock())
    assert (await list_keys(database))[0].last_used_at == clock() - timedelta(seconds=30)
    clock.advance(timedelta(minutes=1))
    await verify_key(database, secret, now=clock())
    assert (await list_keys(database))[0].last_used_at == clock()

    assert await verify_key(database, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert await verify_key(database, "not-a-key") is None
    assert await revoke_key(database, "shop-sync", now=clock()) is True
    assert await revoke_key(database, "shop-sync", now=clock()) is False
    assert await verify_key(database, secret) is None
    with pytest.raises(NotFound):
        await revoke_key(database, "other")


async def test_key_errors(database: Database) -> None:
    await create_key(database, "a", ["*"])
    with pytest.raises(AlreadyExists):
        await create_key(database, "a", ["*"])
    for name in ("", "-x", "has space", "x" * 65):
        with pytest.raises(InvalidInput) as bad_name:
            await create_key(database, name, ["*"])
        assert bad_name.value.field == "name"
    for scopes in ([], ["contacts:delete"], [" "]):
        with pytest.raises(InvalidInput) as bad_scope:
            await create_key(database, "b", scopes)
        assert bad_scope.value.field == "scopes"
    info, _ = await create_key(database, "c", ["contacts:read, lists:read"])
    assert info.scopes == {"contacts:read", "lists:read"}


async def test_missing_and_malformed_credentials(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a b"},
    ):
        response = await client.get("/api/v1/contacts", headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_and_revoked_key(
    client: httpx.AsyncClient, database: Database, make_key: MakeKey
) -> None:
    wrong = await client.get("/api/v1/contacts", headers={"Authorization": "Bearer ck_nope"})
    assert_problem(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    headers = await make_key("contacts:read", name="soon-revoked")
    # RFC 9110 §11.1: the scheme name is case-insensitive.
    token = headers["Authorization"].split(" ", 1)[1]
    lower = await client.get("/api/v1/contacts", headers={"Authorization": f"bearer {token}"})
    assert lower.status_code == 200
    await revoke_key(database, "soon-revoked")
    assert_problem(await client.get("/api/v1/contacts", headers=headers), 401)


async def test_each_scope_guards_its_routes(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    routes = [
        ("GET", "/api/v1/contacts", "contacts:read"),
        ("PUT", "/api/v1/contacts", "contacts:write"),
        ("GET", "/api/v1/lists", "lists:read"),
        ("POST", "/api/v1/lists", "lists:write"),
        ("POST", "/api/v1/events", "events:write"),
        ("GET", "/api/v1/suppression", "suppression:read"),
        ("POST", "/api/v1/suppression", "suppression:write"),
    ]
    other = await make_key("orders:read")
    for method, path, scope in routes:
        denied = await client.request(method, path, headers=other, json={})
        problem = assert_problem(denied, 403)
        assert scope in problem["detail"]
        assert f'scope="{scope}"' in denied.headers["www-authenticate"]
        allowed = await client.request(method, path, headers=await make_key(scope), json={})
        assert allowed.status_code not in (401, 403), (path, allowed.text)


async def test_unknown_route_and_method_are_problems(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert_problem(await client.get("/api/v1/nothing", headers=auth), 404)
    assert_problem(await client.patch("/api/v1/contacts", headers=auth), 405)


async def test_body_too_large(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    big = b'{"email": "a@shop.test", "first_name": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.put(
        "/api/v1/contacts", content=big, headers={**auth, "content-type": "application/json"}
    )
    assert_problem(response, 413)
