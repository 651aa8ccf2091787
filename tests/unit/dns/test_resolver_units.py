"""Name handling, name-server parsing and MemoryResolver semantics."""

from __future__ import annotations

import pytest

from courriel.dns import MemoryResolver, MxRecord
from courriel.dns.memory import parse_rdata
from courriel.dns.resolver import parse_nameserver, to_query_name
from courriel.errors import DnsError, InvalidInput

ZONE = {
    ("example.test", "MX"): ["20 mx2.example.test.", "10 mx1.example.test"],
    ("example.test", "TXT"): ["v=spf1 ip4:127.0.0.1 -all", '"a" "b"'],
    ("mx1.example.test", "A"): ["127.0.0.2"],
    ("mx1.example.test", "AAAA"): ["::1"],
    ("www.example.test", "CNAME"): ["mx1.example.test."],
    ("loop1.test", "CNAME"): ["loop2.test."],
    ("loop2.test", "CNAME"): ["loop1.test."],
    ("null.test", "MX"): ["0 ."],
    ("xn--bcher-kva.test", "A"): ["127.0.0.9"],
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Example.TEST.", "example.test"),
        ("bücher.test", "xn--bcher-kva.test"),
        ("XN--BCHER-KVA.test", "xn--bcher-kva.test"),
        ("localhost", "localhost"),
    ],
)
def test_to_query_name(name: str, expected: str) -> None:
    assert to_query_name(name) == expected


@pytest.mark.parametrize("name", ["", ".", "a..b", "x" * 64 + ".test", ("a" * 60 + ".") * 5])
def test_to_query_name_refuses_impossible_names(name: str) -> None:
    with pytest.raises(DnsError) as info:
        to_query_name(name)
    assert info.value.temporary is False


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
    ],
)
def test_parse_nameserver(entry: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(entry) == expected


@pytest.mark.parametrize("entry", ["ns.example.test", "127.0.0.1:x", "127.0.0.1:0", "[::1", ""])
def test_parse_nameserver_refuses(entry: str) -> None:
    with pytest.raises(InvalidInput):
        parse_nameserver(entry)


def test_long_txt_value_is_split_in_255_octet_strings() -> None:
    rdata = parse_rdata("TXT", "x" * 600)
    assert [len(s) for s in rdata.strings] == [255, 255, 90]  # type: ignore[attr-defined]


def test_bad_rdata_is_reported() -> None:
    with pytest.raises(DnsError):
        parse_rdata("A", "not-an-address")


async def test_memory_mx_sorted_and_null_mx() -> None:
    resolver = MemoryResolver(ZONE)
    assert await resolver.mx("EXAMPLE.test") == [
        MxRecord(preference=10, host="mx1.example.test"),
        MxRecord(preference=20, host="mx2.example.test"),
    ]
    assert await resolver.mx("null.test") == [MxRecord(preference=0, host="")]


async def test_memory_addresses_txt_cname_idna() -> None:
    resolver = MemoryResolver(ZONE)
    assert await resolver.addresses("mx1.example.test") == ["127.0.0.2", "::1"]
    assert await resolver.addresses("www.example.test") == ["127.0.0.2", "::1"]
    assert await resolver.addresses("bücher.test") == ["127.0.0.9"]
    assert await resolver.txt("example.test") == ["v=spf1 ip4:127.0.0.1 -all", "ab"]
    assert resolver.queries[:2] == [("mx1.example.test", "A"), ("mx1.example.test", "AAAA")]


async def test_memory_nodata_nxdomain_and_loops() -> None:
    resolver = MemoryResolver(ZONE)
    assert await resolver.mx("mx1.example.test") == []
    with pytest.raises(DnsError) as nx:
        await resolver.mx("nowhere.test")
    assert nx.value.temporary is False
    with pytest.raises(DnsError) as loop:
        await resolver.addresses("loop1.test")
    assert loop.value.temporary is True


async def test_memory_failures_are_raised() -> None:
    failure = DnsError("SERVFAIL", temporary=True)
    resolver = MemoryResolver(ZONE, failures={("Example.test", "mx"): failure})
    with pytest.raises(DnsError) as info:
        await resolver.mx("example.test")
    assert info.value is failure


async def test_memory_addresses_keep_one_family_when_the_other_fails() -> None:
    failure = DnsError("SERVFAIL", temporary=True)
    resolver = MemoryResolver(ZONE, failures={("mx1.example.test", "AAAA"): failure})
    assert await resolver.addresses("mx1.example.test") == ["127.0.0.2"]
    only_a = MemoryResolver({("h.test", "AAAA"): ["::1"]}, failures={("h.test", "A"): failure})
    assert await only_a.addresses("h.test") == ["::1"]
    nothing = MemoryResolver({("h.test", "TXT"): ["x"]}, failures={("h.test", "A"): failure})
    with pytest.raises(DnsError) as info:
        await nothing.addresses("h.test")
    assert info.value is failure
