"""Values the configuration holds: host names, listening addresses, name servers, networks.

Owns the parsers the loader applies to a ``str`` field by its ``kind`` (see
:mod:`courriel.config.schema`) and that the composition root and the web edge reuse. Each
raises :class:`~courriel.errors.InvalidInput` with a message naming the bad value.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from courriel.errors import InvalidInput

__all__ = [
    "ListenAddress",
    "default_hostname",
    "is_hostname",
    "parse_listen",
    "parse_nameserver",
    "parse_network",
]

# RFC 1123 §2.1: labels of letters, digits and hyphens (not at either end), at most 63
# octets each, 253 in all (without the trailing dot).
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)


def is_hostname(name: str) -> bool:
    """Tell whether ``name`` is a syntactically valid DNS host name (RFC 1123 §2.1).

    Args:
        name: the candidate, without a trailing dot.

    Returns:
        True when every label is 1-63 letters, digits or inner hyphens and the
        whole is at most 253 characters.
    """
    if not name or len(name) > 253:
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def default_hostname() -> str:
    """Compute the default ``server.hostname``: this machine's FQDN, lower-cased.

    Returns:
        ``socket.getfqdn()`` in lower case when it is a valid name with a dot,
        else ``localhost``.
    """
    name = socket.getfqdn().lower().rstrip(".")
    if "." in name and is_hostname(name) and not name.endswith(".localdomain"):
        return name
    return "localhost"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenAddress:
    """A parsed ``listen.*`` value. ``port`` 0 asks the system for a free port."""

    host: str  # an IP literal (IPv6 without brackets) or a host name
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _parse_port(text: str, value: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise InvalidInput(f"bad port in {value!r}; expected 0-65535")
    return int(text)


def parse_listen(value: str) -> ListenAddress | None:
    """Parse a ``listen.*`` value: ``host:port``, ``[ipv6]:port`` or ``""`` (disabled).

    Args:
        value: the configured text.

    Returns:
        The address, or None when the listener is disabled.

    Raises:
        InvalidInput: the text is not a valid ``host:port``.
    """
    value = value.strip()
    if not value:
        return None
    if value.startswith("["):
        inner, sep, port = value[1:].partition("]:")
        if not sep:
            raise InvalidInput(f"bad address {value!r}; expected [ipv6]:port")
        try:
            ipaddress.IPv6Address(inner)
        except ValueError as exc:
            raise InvalidInput(f"bad IPv6 address in {value!r}") from exc
        return ListenAddress(host=inner, port=_parse_port(port, value))
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise InvalidInput(f"bad address {value!r}; expected host:port such as 0.0.0.0:25")
    if ":" in host:
        raise InvalidInput(f"bad address {value!r}; write IPv6 addresses as [::1]:25")
    if not _is_ip(host) and not is_hostname(host):
        raise InvalidInput(f"bad host in {value!r}; expected an IP address or a host name")
    return ListenAddress(host=host, port=_parse_port(port, value))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_nameserver(value: str) -> tuple[str, int]:
    """Parse a ``dns.nameservers`` item: ``ip``, ``ip:port``, ``ipv6`` or ``[ipv6]:port``.

    Args:
        value: one item of the list.

    Returns:
        ``(ip, port)``, the port being 53 (the DNS port) when not given.

    Raises:
        InvalidInput: the item is not an IP address with an optional port.
    """
    value = value.strip()
    if _is_ip(value):
        return value, 53
    if value.startswith("["):
        address = parse_listen(value)
    else:
        host, sep, port = value.rpartition(":")
        address = ListenAddress(host=host, port=_parse_port(port, value)) if sep else None
    if address is None or not _is_ip(address.host) or address.port == 0:
        raise InvalidInput(f"bad name server {value!r}; expected ip or ip:port")
    return address.host, address.port


def parse_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse an ``http.trusted_proxies`` item: an IP address or a CIDR network.

    Raises:
        InvalidInput: neither, or a network with host bits set (``10.0.0.1/8``).
    """
    try:
        return ipaddress.ip_network(value.strip())
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidInput(
            f"bad network {value!r}; expected an IP or a CIDR like 10.0.0.0/8"
        ) from None
    raise InvalidInput(f"host bits set in {value!r}; did you mean {loose}?")
