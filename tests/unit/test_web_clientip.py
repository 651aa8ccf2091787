"""The client address behind reverse proxies (web.clientip) and the http.trusted_proxies key."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.config import load_config, parse_network
from courriel.errors import ConfigError, InvalidInput
from courriel.web.clientip import ProxyTrust, resolve_client

PROXIES = ProxyTrust.parse(["10.0.0.0/8", "2001:db8::1"])


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # The proxy appended the visitor; what the visitor sent before it is ignored.
        ("10.0.0.7", ["198.51.100.66, 203.0.113.9"], "203.0.113.9"),
        # Two trusted proxies in a row.
        ("10.0.0.7", ["203.0.113.9, 10.1.1.1"], "203.0.113.9"),
        # Several header lines are one list, in order.
        ("10.0.0.7", ["198.51.100.66", "203.0.113.9"], "203.0.113.9"),
        # Hops with ports, IPv6 hops, an IPv6 proxy.
        ("10.0.0.7", ["203.0.113.9:4711"], "203.0.113.9"),
        ("10.0.0.7", ["[2001:db8::9]:443"], "2001:db8::9"),
        ("2001:db8::1", ["2001:db8::9"], "2001:db8::9"),
        # A dual-stack socket shows an IPv4 proxy as ::ffff:a.b.c.d.
        ("::ffff:10.0.0.7", ["203.0.113.9"], "203.0.113.9"),
        # Every hop trusted: the client is itself inside a trusted network.
        ("10.0.0.7", ["10.2.2.2, 10.1.1.1"], "10.2.2.2"),
        # A hop that is not an address stops at the last trusted one.
        ("10.0.0.7", ["203.0.113.9, unknown"], "10.0.0.7"),
        ("10.0.0.7", ["garbage, 10.1.1.1"], "10.1.1.1"),
        # A trusted proxy that sent no header is the client.
        ("10.0.0.7", [], "10.0.0.7"),
        # An untrusted peer's header is ignored, however it is written.
        ("203.0.113.9", ["198.51.100.66"], "203.0.113.9"),
        ("203.0.113.9", ["10.0.0.7, 198.51.100.66"], "203.0.113.9"),
        # A peer that is no IP address (a test client, a socket path) is never trusted.
        ("testclient", ["198.51.100.66"], "testclient"),
        (None, ["198.51.100.66"], None),
    ],
)
def test_rightmost_untrusted_hop(peer: str | None, headers: list[str], expected: str) -> None:
    assert resolve_client(peer, headers, PROXIES) == expected


def test_no_trusted_proxy_means_the_peer() -> None:
    assert resolve_client("127.0.0.1", ["198.51.100.66"], ProxyTrust()) == "127.0.0.1"


def test_parse_network() -> None:
    assert str(parse_network(" 192.0.2.7 ")) == "192.0.2.7/32"
    assert str(parse_network("fd00::/8")) == "fd00::/8"
    with pytest.raises(InvalidInput, match=r"did you mean 10\.0\.0\.0/8"):
        parse_network("10.0.0.1/8")
    for bad in ("proxy.example", "10.0.0.0/33", ""):
        with pytest.raises(InvalidInput, match="expected an IP or a CIDR"):
            parse_network(bad)


def test_config_key(tmp_path: Path) -> None:
    assert load_config(tmp_path, environ={}).config.http.trusted_proxies == ()
    environ = {"COURRIEL_HTTP__TRUSTED_PROXIES": "10.0.0.0/8, ::1"}
    loaded = load_config(tmp_path, environ=environ).config.http.trusted_proxies
    assert loaded == ("10.0.0.0/8", "::1")
    trust = ProxyTrust.parse(loaded)
    assert (trust.v4, trust.v6) == ((parse_network("10.0.0.0/8"),), (parse_network("::1"),))
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, {"http.trusted_proxies": "10.0.0.0/8,nginx"}, environ={})
    [problem] = excinfo.value.problems
    assert (problem.key, problem.value) == ("http.trusted_proxies", "10.0.0.0/8,nginx")
    assert "bad network 'nginx'" in problem.message
