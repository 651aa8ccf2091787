"""Email addresses and domain names: parsing and normal forms, no I/O.

Normal form (used as the key everywhere in the mail store): the local part as
given (RFC 5321 §2.4: local parts are case-sensitive, but we match them
case-insensitively, as Postfix and Dovecot do, by storing them lower-cased),
and the domain as lower-case A-labels (RFC 5890 IDNA), so ``Ü@Bücher.Example``
and ``ü@xn--bcher-kva.example`` are one address.
"""

from __future__ import annotations

import re

from courriel.errors import AddressError

__all__ = ["is_ascii", "normalize_address", "normalize_domain", "split_address"]

# RFC 5321 §4.5.3.1.1 / §4.5.3.1.2: local part 64 octets, domain 255 octets.
MAX_LOCAL = 64
MAX_DOMAIN = 255
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>()\[\]\\,;:@\"]")


def is_ascii(text: str) -> bool:
    """True when every character is 7-bit ASCII."""
    return text.isascii()


def normalize_domain(domain: str) -> str:
    """Return the domain as lower-case A-labels, without a trailing dot.

    Raises:
        AddressError: empty, too long, or not a valid host name.
    """
    name = domain.strip().rstrip(".")
    if not name:
        raise AddressError("empty domain")
    if name.startswith("[") and name.endswith("]"):
        # RFC 5321 §4.1.3 address literals are not routable to mailboxes here.
        raise AddressError("address literals are not accepted as domains")
    try:
        ascii_name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as exc:
        raise AddressError(f"invalid internationalised domain: {domain!r}") from exc
    ascii_name = ascii_name.lower()
    if len(ascii_name) > MAX_DOMAIN:
        raise AddressError("domain longer than 255 octets")
    labels = ascii_name.split(".")
    if len(labels) < 2 and ascii_name != "localhost":
        raise AddressError(f"domain needs a dot: {domain!r}")
    for label in labels:
        if not _LABEL.match(label):
            raise AddressError(f"invalid domain label {label!r} in {domain!r}")
    return ascii_name


def split_address(address: str) -> tuple[str, str]:
    """Split ``local@domain`` at the last ``@`` (quoted local parts may hold ``@``)."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise AddressError(f"not an address: {address!r}")
    return local, domain


def normalize_address(address: str) -> str:
    """Return the address in normal form (lower-case local part, A-label domain).

    Raises:
        AddressError: when it is not a mailbox address we can store.
    """
    local, domain = split_address(address.strip())
    if len(local.encode("utf-8")) > MAX_LOCAL:
        raise AddressError("local part longer than 64 octets")
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        inner = local[1:-1]
        if any(ord(c) < 32 or c == "\x7f" for c in inner):
            raise AddressError("control character in quoted local part")
    elif (
        _LOCAL_FORBIDDEN.search(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise AddressError(f"invalid local part {local!r}")
    return f"{local.lower()}@{normalize_domain(domain)}"
