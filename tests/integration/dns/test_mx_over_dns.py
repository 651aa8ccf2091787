"""resolve_route through DnsResolver and the loopback DnsServer, as the delivery worker uses it."""

from __future__ import annotations

import random

import pytest

from courriel.delivery.mx import NULL_MX_MESSAGE, MxTarget, resolve_route
from courriel.dns import DnsResolver
from courriel.errors import DnsError
from courriel.testing.dns import DnsServer

ZONE = {
    ("shop.test", "MX"): ["10 mx1.shop.test.", "20 mx2.shop.test."],
    ("mx1.shop.test", "A"): ["127.0.0.2"],
    ("mx2.shop.test", "A"): ["127.0.0.3"],
    ("plain.test", "A"): ["127.0.0.4"],
    ("null.test", "MX"): ["0 ."],
    ("xn--bcher-kva.test", "MX"): ["10 mx1.shop.test."],
    ("half.test", "MX"): ["10 mx.broken.test.", "20 mx2.shop.test."],
}


async def test_routes_over_the_wire() -> None:
    async with DnsServer(ZONE, servfail={"mx.broken.test", "down.test"}) as port:
        resolver = DnsResolver(nameservers=[f"127.0.0.1:{port}"], timeout=5)
        route = await resolve_route(resolver, "shop.test", rng=random.Random(0))
        assert route.hosts == (
            MxTarget(host="mx1.shop.test", preference=10, addresses=("127.0.0.2",)),
            MxTarget(host="mx2.shop.test", preference=20, addresses=("127.0.0.3",)),
        )
        implicit = await resolve_route(resolver, "plain.test")
        assert implicit.hosts == (
            MxTarget(host="plain.test", preference=0, addresses=("127.0.0.4",)),
        )
        idna = await resolve_route(resolver, "bücher.test")
        assert [t.host for t in idna.hosts] == ["mx1.shop.test"]
        # SERVFAIL for one MX host: the other one is used.
        half = await resolve_route(resolver, "half.test")
        assert [t.host for t in half.hosts] == ["mx2.shop.test"]

        with pytest.raises(DnsError) as null:
            await resolve_route(resolver, "null.test")
        assert (null.value.temporary, str(null.value)) == (False, NULL_MX_MESSAGE)
        with pytest.raises(DnsError) as missing:
            await resolve_route(resolver, "nowhere.test")
        assert missing.value.temporary is False
        with pytest.raises(DnsError) as down:
            await resolve_route(resolver, "down.test")
        assert down.value.temporary is True
