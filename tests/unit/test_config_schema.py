"""The config schema: documented defaults, listen and name-server parsing, helpers."""

from __future__ import annotations

import dataclasses
import ipaddress
import typing
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.config import (
    Config,
    ListenAddress,
    ListenSection,
    ServerSection,
    default_hostname,
    is_hostname,
    parse_listen,
    parse_nameserver,
)
from courriel.errors import InvalidInput


def test_every_key_is_documented_typed_and_frozen() -> None:
    config = Config()
    for section_field in dataclasses.fields(Config):
        section = getattr(config, section_field.name)
        cls = type(section)
        assert cls.__doc__, cls
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            assert field.metadata.get("doc"), f"{section_field.name}.{field.name} has no doc"
            assert field.name in hints
            assert field.default is not dataclasses.MISSING
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, dataclasses.fields(cls)[0].name, None)


def test_defaults_match_the_design() -> None:
    config = Config()
    assert config.server.max_message_size == 50 * 1024 * 1024
    # RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted.
    assert config.server.max_recipients >= 100
    assert config.listen.smtp == "0.0.0.0:25"
    assert config.listen.http == "127.0.0.1:8025"
    assert config.smtp.command_timeout == timedelta(minutes=5)
    assert config.pop3.idle_timeout >= timedelta(minutes=10)
    assert config.delivery.retry_schedule[0] == timedelta(minutes=5)
    assert config.delivery.retry_schedule[-1] == timedelta(days=1)
    assert config.delivery.expire_after == timedelta(days=5)
    assert config.database.blob_store == "fs"
    assert config.log.level == "info"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("0.0.0.0:25", "0.0.0.0", 25),
        ("127.0.0.1:0", "127.0.0.1", 0),
        ("[::1]:587", "::1", 587),
        ("[::]:993", "::", 993),
        ("localhost:8025", "localhost", 8025),
        (" 10.0.0.1:65535 ", "10.0.0.1", 65535),
    ],
)
def test_parse_listen_accepts_host_port(text: str, host: str, port: int) -> None:
    assert parse_listen(text) == ListenAddress(host=host, port=port)


def test_parse_listen_empty_means_disabled() -> None:
    assert parse_listen("") is None
    assert parse_listen("  ") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("25", "expected host:port"),
        (":25", "expected host:port"),
        ("0.0.0.0:99999", "bad port"),
        ("0.0.0.0:-1", "bad port"),
        ("0.0.0.0:smtp", "bad port"),
        ("::1:25", "IPv6"),
        ("[::1]25", r"\[ipv6\]:port"),
        ("[nonsense]:25", "bad IPv6"),
        ("bad_host!:25", "bad host"),
    ],
)
def test_parse_listen_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_listen(text)


@given(
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    st.integers(min_value=0, max_value=65535),
)
def test_listen_address_text_round_trips(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    address = ListenAddress(host=str(ip), port=port)
    assert parse_listen(str(address)) == address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["ns.example.test", "ns.example.test:53", "127.0.0.1:0", ""])
def test_parse_nameserver_rejects_names_and_port_zero(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_nameserver(text)


def test_listen_addresses_lists_enabled_listeners() -> None:
    listen = ListenSection(smtp="127.0.0.1:0", imap="", http="[::1]:8025")
    addresses = listen.addresses()
    assert addresses["smtp"] == ListenAddress(host="127.0.0.1", port=0)
    assert addresses["http"] == ListenAddress(host="::1", port=8025)
    assert "imap" not in addresses
    assert addresses["pop3s"].port == 995


def test_smtp_banner_defaults_to_hostname() -> None:
    config = Config(server=ServerSection(hostname="mx.example.test"))
    assert config.smtp_banner == "mx.example.test ESMTP courriel"
    custom = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp, banner="hi"))
    assert custom.smtp_banner == "hi"


def test_default_hostname_is_a_valid_lowercase_name() -> None:
    name = default_hostname()
    assert name == name.lower()
    assert is_hostname(name)
    assert name == "localhost" or "." in name


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("mail.example.test", True),
        ("localhost", True),
        ("a-b.c", True),
        ("-a.test", False),
        ("a-.test", False),
        ("a..test", False),
        ("a" * 64 + ".test", False),
        ("under_score.test", False),
        ("", False),
    ],
)
def test_is_hostname(name: str, valid: bool) -> None:
    assert is_hostname(name) is valid
