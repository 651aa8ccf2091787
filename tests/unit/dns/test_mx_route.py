"""MX routing rules (RFC 5321 §5.1, RFC 7505) with the in-memory resolver."""

from __future__ import annotations

import random

import pytest

from courriel.delivery.mx import NULL_MX_MESSAGE, MxTarget, Route, relay_route, resolve_route
from courriel.dns import MemoryResolver
from courriel.errors import DnsError

TEMP = DnsError("SERVFAIL", temporary=True)

ZONE = {
    ("shop.test", "MX"): [
        "20 backup.shop.test.",
        "10 a.shop.test.",
        "10 b.shop.test.",
        "10 c.shop.test.",
    ],
    ("a.shop.test", "A"): ["127.0.0.2"],
    ("b.shop.test", "A"): ["127.0.0.3"],
    ("b.shop.test", "AAAA"): ["::1"],
    ("c.shop.test", "AAAA"): ["::2"],
    ("backup.shop.test", "A"): ["127.0.0.4"],
    ("plain.test", "A"): ["127.0.0.5"],
    ("plain.test", "AAAA"): ["::5"],
    ("v6.test", "AAAA"): ["::6"],
    ("empty.test", "TXT"): ["v=spf1 -all"],
    ("null.test", "MX"): ["0 ."],
    ("mixed-null.test", "MX"): ["0 .", "10 a.shop.test."],
    ("xn--bcher-kva.test", "MX"): ["10 mx.xn--bcher-kva.test."],
    ("mx.xn--bcher-kva.test", "A"): ["127.0.0.9"],
    ("literal.test", "MX"): ["10 127.0.0.7."],
    ("alias.test", "MX"): ["10 mail.alias.test."],
    ("mail.alias.test", "CNAME"): ["a.shop.test."],
    ("twice.test", "MX"): ["30 a.shop.test.", "10 a.shop.test."],
    ("broken.test", "MX"): ["10 gone.test.", "20 noaddr.test."],
    ("noaddr.test", "TXT"): ["x"],
    ("flaky.test", "MX"): ["10 down.flaky.test.", "20 a.shop.test."],
    ("down.flaky.test", "A"): ["127.0.0.8"],
    ("allflaky.test", "MX"): ["10 down.flaky.test.", "20 gone.test."],
    ("loop.test", "MX"): ["10 other.test.", "20 mail.courriel.test.", "30 a.shop.test."],
    ("other.test", "A"): ["127.0.0.10"],
    ("mail.courriel.test", "A"): ["127.0.0.1"],
    ("relay.test", "A"): ["127.0.0.11"],
}


def resolver(failures: dict[tuple[str, str], DnsError] | None = None) -> MemoryResolver:
    return MemoryResolver(ZONE, failures=failures or {})


def hosts(route: Route) -> list[str]:
    return [target.host for target in route.hosts]


async def test_mx_hosts_by_preference_with_addresses() -> None:
    route = await resolve_route(resolver(), "shop.test", rng=random.Random(1))
    assert route.domain == "shop.test"
    assert route.port == 25
    assert sorted(hosts(route)[:3]) == ["a.shop.test", "b.shop.test", "c.shop.test"]
    assert route.hosts[3] == MxTarget(
        host="backup.shop.test", preference=20, addresses=("127.0.0.4",)
    )
    by_host = {t.host: t for t in route.hosts}
    assert by_host["b.shop.test"].addresses == ("127.0.0.3", "::1")
    assert by_host["c.shop.test"].addresses == ("::2",)
    assert {t.preference for t in route.hosts[:3]} == {10}


async def test_equal_preferences_are_shuffled_by_the_injected_rng() -> None:
    orders = set()
    for seed in range(30):
        route = await resolve_route(resolver(), "shop.test", rng=random.Random(seed))
        assert hosts(route)[3] == "backup.shop.test"  # never shuffled across preferences
        orders.add(tuple(hosts(route)[:3]))
    assert len(orders) > 1
    first = await resolve_route(resolver(), "shop.test", rng=random.Random(7))
    again = await resolve_route(resolver(), "shop.test", rng=random.Random(7))
    assert hosts(first) == hosts(again)


async def test_no_mx_uses_the_domain_itself_as_implicit_mx() -> None:
    route = await resolve_route(resolver(), "plain.test")
    assert route.hosts == (
        MxTarget(host="plain.test", preference=0, addresses=("127.0.0.5", "::5")),
    )


async def test_no_mx_and_only_aaaa() -> None:
    route = await resolve_route(resolver(), "v6.test")
    assert route.hosts == (MxTarget(host="v6.test", preference=0, addresses=("::6",)),)


async def test_no_mx_and_no_address_is_permanent() -> None:
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(), "empty.test")
    assert info.value.temporary is False


async def test_null_mx_is_permanent_and_looks_nothing_else_up() -> None:
    dns = resolver()
    with pytest.raises(DnsError) as info:
        await resolve_route(dns, "null.test")
    assert info.value.temporary is False
    assert str(info.value) == NULL_MX_MESSAGE
    assert dns.queries == [("null.test", "MX")]


async def test_null_mx_mixed_with_real_mx_is_ignored() -> None:
    route = await resolve_route(resolver(), "mixed-null.test")
    assert hosts(route) == ["a.shop.test"]


async def test_nxdomain_is_permanent() -> None:
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(), "nowhere.test")
    assert info.value.temporary is False


async def test_temporary_mx_failure_is_temporary() -> None:
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver({("shop.test", "MX"): TEMP}), "shop.test")
    assert info.value.temporary is True


async def test_temporary_failure_of_implicit_mx_lookup_is_temporary() -> None:
    failures = {("plain.test", "A"): TEMP, ("plain.test", "AAAA"): TEMP}
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(failures), "plain.test")
    assert info.value.temporary is True


async def test_idna_domain_is_asked_as_a_labels() -> None:
    dns = resolver()
    route = await resolve_route(dns, "Bücher.test")
    assert route.domain == "xn--bcher-kva.test"
    assert hosts(route) == ["mx.xn--bcher-kva.test"]
    assert dns.queries[0] == ("xn--bcher-kva.test", "MX")


async def test_ip_literal_mx_host_is_used_without_lookup() -> None:
    dns = resolver()
    route = await resolve_route(dns, "literal.test")
    assert route.hosts == (MxTarget(host="127.0.0.7", preference=10, addresses=("127.0.0.7",)),)
    assert dns.queries == [("literal.test", "MX")]


async def test_cname_mx_host_is_followed() -> None:
    route = await resolve_route(resolver(), "alias.test")
    assert route.hosts == (
        MxTarget(host="mail.alias.test", preference=10, addresses=("127.0.0.2",)),
    )


async def test_host_named_twice_is_kept_once_at_best_preference() -> None:
    route = await resolve_route(resolver(), "twice.test")
    assert route.hosts == (MxTarget(host="a.shop.test", preference=10, addresses=("127.0.0.2",)),)


async def test_mx_hosts_without_addresses_are_a_permanent_failure() -> None:
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(), "broken.test")
    assert info.value.temporary is False


async def test_host_failing_temporarily_is_skipped_when_others_resolve() -> None:
    failures = {("down.flaky.test", "A"): TEMP, ("down.flaky.test", "AAAA"): TEMP}
    route = await resolve_route(resolver(failures), "flaky.test")
    assert hosts(route) == ["a.shop.test"]


async def test_all_hosts_failing_with_one_temporary_is_temporary() -> None:
    failures = {("down.flaky.test", "A"): TEMP, ("down.flaky.test", "AAAA"): TEMP}
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(failures), "allflaky.test")
    assert info.value.temporary is True


async def test_own_host_and_worse_mx_are_dropped() -> None:
    route = await resolve_route(resolver(), "loop.test", local_hosts=["MAIL.courriel.test."])
    assert hosts(route) == ["other.test"]


async def test_being_the_best_mx_is_a_permanent_loop() -> None:
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(), "loop.test", local_hosts=["other.test"])
    assert info.value.temporary is False
    assert "loops back" in str(info.value)


async def test_invalid_domain_is_permanent() -> None:
    with pytest.raises(DnsError) as info:
        await resolve_route(resolver(), "a..b")
    assert info.value.temporary is False


async def test_relay_route_by_name_and_port() -> None:
    route = await relay_route(resolver(), "relay.test", 2525)
    assert route == Route(
        domain="relay.test",
        hosts=(MxTarget(host="relay.test", preference=0, addresses=("127.0.0.11",)),),
        port=2525,
    )


@pytest.mark.parametrize(("host", "address"), [("127.0.0.12", "127.0.0.12"), ("[::1]", "::1")])
async def test_relay_route_by_address_needs_no_dns(host: str, address: str) -> None:
    dns = resolver()
    route = await relay_route(dns, host, 587)
    assert route.hosts == (MxTarget(host=address, preference=0, addresses=(address,)),)
    assert route.port == 587
    assert dns.queries == []


@pytest.mark.parametrize("host", ["nowhere.test", "empty.test", "a..b"])
async def test_relay_failures_are_always_temporary(host: str) -> None:
    with pytest.raises(DnsError) as info:
        await relay_route(resolver(), host)
    assert info.value.temporary is True
    assert "relay host" in str(info.value)
