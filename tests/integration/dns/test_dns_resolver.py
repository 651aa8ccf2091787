"""DnsResolver against the loopback DnsServer, over UDP and TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from courriel.dns import DnsResolver, MxRecord
from courriel.errors import DnsError
from courriel.testing.dns import DnsServer, ReceivedQuery

BIG_TXT = "v=DKIM1; k=rsa; p=" + "A" * 2000  # larger than any UDP answer we allow: TC then TCP

ZONE = {
    ("example.test", "MX"): ["20 mx2.example.test.", "10 mx1.example.test."],
    ("example.test", "TXT"): ["v=spf1 -all", '"split " "in two"'],
    ("mx1.example.test", "A"): ["127.0.0.2"],
    ("mx1.example.test", "AAAA"): ["::1"],
    ("mx2.example.test", "A"): ["127.0.0.3", "127.0.0.4"],
    ("alias.example.test", "CNAME"): ["mx1.example.test."],
    ("dangling.example.test", "CNAME"): ["gone.example.test."],
    ("null.test", "MX"): ["0 ."],
    ("big.example.test", "TXT"): [BIG_TXT],
    ("xn--bcher-kva.test", "A"): ["127.0.0.9"],
    ("v6only.test", "AAAA"): ["::1"],
}


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    dns_server = DnsServer(ZONE, servfail={"fail.test"}, silent={"silent.test"})
    await dns_server.start()
    yield dns_server
    await dns_server.stop()


@pytest.fixture
def resolver(server: DnsServer) -> DnsResolver:
    return DnsResolver(nameservers=[f"127.0.0.1:{server.port}"], timeout=5)


async def test_mx_records_sorted_by_preference_over_udp(
    server: DnsServer, resolver: DnsResolver
) -> None:
    assert await resolver.mx("Example.TEST.") == [
        MxRecord(preference=10, host="mx1.example.test"),
        MxRecord(preference=20, host="mx2.example.test"),
    ]
    assert server.queries == [ReceivedQuery(name="example.test", rdtype="MX", transport="udp")]


async def test_addresses_a_then_aaaa(resolver: DnsResolver) -> None:
    assert await resolver.addresses("mx1.example.test") == ["127.0.0.2", "::1"]
    # The records of one RRset have no order (RFC 1035 §3.6): compare as a set.
    assert sorted(await resolver.addresses("mx2.example.test")) == ["127.0.0.3", "127.0.0.4"]
    assert await resolver.addresses("v6only.test") == ["::1"]


async def test_cname_is_followed(resolver: DnsResolver) -> None:
    assert await resolver.addresses("alias.example.test") == ["127.0.0.2", "::1"]


async def test_cname_to_a_missing_name_is_nxdomain(resolver: DnsResolver) -> None:
    with pytest.raises(DnsError) as info:
        await resolver.addresses("dangling.example.test")
    assert info.value.temporary is False


async def test_txt_strings_are_joined(resolver: DnsResolver) -> None:
    assert sorted(await resolver.txt("example.test")) == ["split in two", "v=spf1 -all"]


async def test_large_answer_is_truncated_over_udp_and_fetched_over_tcp(
    server: DnsServer, resolver: DnsResolver
) -> None:
    assert await resolver.txt("big.example.test") == [BIG_TXT]
    transports = [q.transport for q in server.queries if q.name == "big.example.test"]
    assert transports == ["udp", "tcp"]


async def test_null_mx_is_an_empty_host(resolver: DnsResolver) -> None:
    assert await resolver.mx("null.test") == [MxRecord(preference=0, host="")]


async def test_nodata_is_an_empty_list(resolver: DnsResolver) -> None:
    assert await resolver.mx("mx1.example.test") == []
    assert await resolver.txt("mx1.example.test") == []
    assert await resolver.addresses("example.test") == []


async def test_nxdomain_is_permanent(resolver: DnsResolver) -> None:
    for lookup in (resolver.mx, resolver.addresses, resolver.txt):
        with pytest.raises(DnsError) as info:
            await lookup("nowhere.test")
        assert info.value.temporary is False
        assert "NXDOMAIN" in str(info.value)


async def test_servfail_is_temporary(resolver: DnsResolver) -> None:
    for lookup in (resolver.mx, resolver.addresses, resolver.txt):
        with pytest.raises(DnsError) as info:
            await lookup("fail.test")
        assert info.value.temporary is True


async def test_no_reply_is_a_temporary_timeout(server: DnsServer) -> None:
    impatient = DnsResolver(nameservers=[f"127.0.0.1:{server.port}"], timeout=0.2)
    with pytest.raises(DnsError) as info:
        await impatient.mx("silent.test")
    assert info.value.temporary is True
    assert "timed out" in str(info.value)


async def test_u_labels_are_asked_as_a_labels(server: DnsServer, resolver: DnsResolver) -> None:
    assert await resolver.addresses("BÜCHER.test") == ["127.0.0.9"]
    assert server.queries[0].name == "xn--bcher-kva.test"


async def test_zone_changes_are_seen_by_later_queries(server: DnsServer) -> None:
    zone: dict[tuple[str, str], list[str]] = {("later.test", "A"): ["127.0.0.5"]}
    async with DnsServer(zone) as port:
        resolver = DnsResolver(nameservers=[f"127.0.0.1:{port}"], timeout=5)
        assert await resolver.addresses("later.test") == ["127.0.0.5"]
        zone[("later.test", "A")] = ["127.0.0.6"]
        assert await resolver.addresses("later.test") == ["127.0.0.6"]


async def test_unreachable_server_is_temporary() -> None:
    # Bind a server to learn a free port, stop it, then ask the closed port.
    dns_server = DnsServer({})
    port = await dns_server.start()
    await dns_server.stop()
    resolver = DnsResolver(nameservers=[f"127.0.0.1:{port}"], timeout=0.5)
    with pytest.raises(DnsError) as info:
        await resolver.mx("example.test")
    assert info.value.temporary is True
