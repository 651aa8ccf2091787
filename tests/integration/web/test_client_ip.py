"""The client address behind a reverse proxy (http.trusted_proxies), on both databases:
the consent proof of /u/confirm and the tracker's rate limit use the visitor's address
behind a trusted proxy, and a spoofed X-Forwarded-For from anyone else is ignored."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from tests.integration.web.conftest import Clock

from courriel.integrations.tracker import TrackerSite, add_site
from courriel.testing.mail import RecordingMailer
from courriel.web.app import WebServices, create_app
from courriel.web.clientip import ProxyTrust

PROXY = "10.0.0.7"
VISITOR = "203.0.113.9"
SPOOF = "198.51.100.66"
SHOP = "https://shop.example"


def _app(services: WebServices, *trusted: str) -> Litestar:
    return create_app(replace(services, trusted_proxies=ProxyTrust.parse(trusted)))


def _client(app: Litestar, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=cast(Any, app), client=(peer, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://mail.shop.test")


async def _confirm_link(
    http: httpx.AsyncClient, auth: dict[str, str], mailer: RecordingMailer
) -> str:
    made = await http.post(
        "/api/v1/lists", json={"name": "Weekly", "double_opt_in": True}, headers=auth
    )
    added = await http.post(
        f"/api/v1/lists/{made.json()['id']}/members", json={"email": "v@shop.test"}, headers=auth
    )
    assert added.status_code == 202, added.text
    text = mailer.sent[-1].message.replace(b"=\r\n", b"").decode()
    link = re.search(r"https://mail\.shop\.test(/u/confirm/[A-Za-z0-9_.\-]+)", text)
    assert link is not None, text
    return link.group(1)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "recorded"),
    [
        # No proxy trusted (the default): the header is ignored, the peer is recorded.
        ((), PROXY, f"{SPOOF}, {VISITOR}", PROXY),
        ((), VISITOR, SPOOF, VISITOR),
        # Behind the trusted proxy: the hop it appended, not what the visitor claimed.
        (("10.0.0.0/8",), PROXY, f"{SPOOF}, {VISITOR}", VISITOR),
        # A visitor reaching the server directly cannot spoof an address.
        (("10.0.0.0/8",), VISITOR, SPOOF, VISITOR),
    ],
)
async def test_consent_proof_records_the_client(
    services: WebServices,
    auth: dict[str, str],
    mailer: RecordingMailer,
    trusted: tuple[str, ...],
    peer: str,
    forwarded: str,
    recorded: str,
) -> None:
    app = _app(services, *trusted)
    async with _client(app, "192.0.2.1") as admin:
        path = await _confirm_link(admin, auth, mailer)
    async with _client(app, peer) as person:
        done = await person.post(path, headers={"X-Forwarded-For": forwarded})
    assert done.status_code == 200, done.text
    async with _client(app, "192.0.2.1") as admin:
        proof = await admin.get("/api/v1/contacts/v@shop.test/consent", headers=auth)
    last = proof.json()["data"][-1]
    assert (last["method"], last["ip"]) == ("double_opt_in", recorded)


async def _track(http: httpx.AsyncClient, site: TrackerSite, forwarded: str) -> int:
    body = (
        '{"anonymous_id": "0123456789abcdef0123456789abcdef", "event": "Viewed", "properties": {}}'
    )
    response = await http.post(
        "/t/v1/track",
        params={"site": site.public_key},
        content=body,
        headers={"Origin": SHOP, "Content-Type": "text/plain", "X-Forwarded-For": forwarded},
    )
    return response.status_code


async def _site(services: WebServices, clock: Clock) -> TrackerSite:
    return await add_site(services.db, "shop", origins=(SHOP,), now=clock())


async def test_rate_limit_buckets_behind_a_trusted_proxy(
    services: WebServices, clock: Clock
) -> None:
    site = await _site(services, clock)
    app = _app(services, PROXY)
    async with _client(app, PROXY) as proxy:
        # The burst of one visitor, then refused; the visitor's own spoofed hop is ignored.
        for n in range(20):
            assert await _track(proxy, site, f"{SPOOF}.{n}, {VISITOR}") == 204
        assert await _track(proxy, site, f"{SPOOF}, {VISITOR}") == 429
        # Another visitor behind the same proxy has a bucket of their own.
        assert await _track(proxy, site, "203.0.113.10") == 204


@pytest.mark.parametrize("trusted", [(), (PROXY,)])
async def test_spoofed_header_from_untrusted_peer_gives_no_new_bucket(
    services: WebServices, clock: Clock, trusted: tuple[str, ...]
) -> None:
    site = await _site(services, clock)
    app = _app(services, *trusted)
    async with _client(app, VISITOR) as visitor:
        for n in range(20):
            assert await _track(visitor, site, f"198.51.100.{n}") == 204
        # A fresh made-up address each time: still the same peer, still one bucket.
        assert await _track(visitor, site, "198.51.100.99") == 429
