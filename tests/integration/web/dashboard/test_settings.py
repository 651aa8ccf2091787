"""The settings page: API keys made (shown once) and revoked, dashboard users; owner only."""

from __future__ import annotations

import re

import pytest
from tests.integration.web.dashboard.conftest import PASSWORD, Users, log_in

from courriel.marketing.apikeys import verify_key
from courriel.web.dashboard.admins import list_admins


@pytest.mark.parametrize("role", ["viewer", "marketer"])
async def test_only_owners_open_settings(users: Users, role: str) -> None:
    browser = await users.login(role)
    assert (await browser.get("/settings")).status_code == 403
    refused = await browser.post("/settings/keys", {"name": "k", "all_scopes": "1"})
    assert refused.status_code == 403
    assert (await browser.post("/settings/users", {"email": "x@shop.test"})).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "marketer"])
async def test_other_roles_cannot_revoke_keys_or_change_users(users: Users, role: str) -> None:
    """The role change is the privilege-escalation route: refused, and nothing changes."""
    owner = await users.login("owner")
    made = await owner.post("/settings/keys", {"name": "shop-sync", "all_scopes": "1"})
    secret = re.search(r'<code id="new-key">(ck_[^<]+)</code>', made.text)
    assert secret
    browser = await users.login(role)
    revoke = await browser.post("/settings/keys/shop-sync/revoke")
    assert revoke.status_code == 403 and "your role cannot open this page" in revoke.text
    assert await verify_key(users.services.db, secret.group(1)) is not None
    promote = await browser.post("/settings/users/role", {"email": browser.email, "role": "owner"})
    assert promote.status_code == 403
    demote = await browser.post("/settings/users/role", {"email": owner.email, "role": "viewer"})
    assert demote.status_code == 403
    remove = await browser.post("/settings/users/remove", {"email": owner.email})
    assert remove.status_code == 403
    roles = {u.email: u.role for u in await list_admins(users.services.db)}
    assert roles == {owner.email: "owner", browser.email: role}


async def test_an_api_key_is_shown_once_and_can_be_revoked(users: Users) -> None:
    owner = await users.login("owner")
    made = await owner.post(
        "/settings/keys", {"name": "shop-sync", "scopes": ["contacts:read", "events:write"]}
    )
    assert made.status_code == 200
    secret = re.search(r'<code id="new-key">(ck_[^<]+)</code>', made.text)
    assert secret
    info = await verify_key(users.services.db, secret.group(1))
    assert info is not None and info.scopes == {"contacts:read", "events:write"}
    again = await owner.get("/settings")
    assert secret.group(1) not in again.text and "shop-sync" in again.text
    duplicate = await owner.post("/settings/keys", {"name": "shop-sync", "all_scopes": "1"})
    assert duplicate.status_code == 422
    assert (await owner.post("/settings/keys/shop-sync/revoke")).status_code == 200
    assert await verify_key(users.services.db, secret.group(1)) is None
    assert "was revoked already" in (await owner.post("/settings/keys/shop-sync/revoke")).text
    missing = await owner.post("/settings/keys/nope/revoke")
    assert missing.status_code == 404 and "no API key" in missing.text


async def test_owner_manages_dashboard_users(users: Users) -> None:
    owner = await users.login("owner")
    added = await owner.post(
        "/settings/users", {"email": "Ann@shop.test", "password": PASSWORD, "role": "viewer"}
    )
    assert added.status_code == 200 and "ann@shop.test added (viewer)" in added.text
    short = await owner.post(
        "/settings/users", {"email": "bo@shop.test", "password": "short", "role": "viewer"}
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    client = users.client()
    assert (await log_in(client, "ann@shop.test")).status_code == 303
    assert (await client.get("/settings")).status_code == 403
    promoted = await owner.post("/settings/users/role", {"email": "ann@shop.test", "role": "owner"})
    assert "is now owner" in promoted.text
    assert (await client.get("/settings")).status_code == 200
    itself = await owner.post("/settings/users/remove", {"email": owner.email})
    assert itself.status_code == 422
    removed = await owner.post("/settings/users/remove", {"email": "ann@shop.test"})
    assert removed.status_code == 200
    assert (await client.get("/settings")).status_code == 303  # sessions ended with the user


async def test_the_last_owner_cannot_be_demoted(users: Users) -> None:
    owner = await users.login("owner")
    refused = await owner.post("/settings/users/role", {"email": owner.email, "role": "viewer"})
    assert refused.status_code == 422 and "last owner" in refused.text
