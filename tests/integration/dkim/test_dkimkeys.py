"""Per-domain DKIM keys in the database, the signer built from them, and the DNS records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import dkim as dkimpy
import pytest
from sqlalchemy import update

from courriel.delivery import dkimkeys
from courriel.dns.memory import MemoryResolver
from courriel.errors import DnsError, NotFound
from courriel.mail import dkim
from courriel.mailstore.domains import add_domain
from courriel.storage.db import Database
from courriel.storage.models import dkim_keys

DOMAIN = "shop.test"
HOST = "mail.shop.test"
TODAY = date(2026, 11, 27)
MESSAGE = (
    b"From: Shop <news@shop.test>\r\n"
    b"To: buyer@remote.test\r\n"
    b"Subject: Your order\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <order-1@shop.test>\r\n"
    b"\r\n"
    b"Thank you.\r\n"
)


def dns_from(records: list[dkimkeys.DnsRecord]) -> Callable[..., bytes | None]:
    txt = {f"{r.name}.".encode(): r.value.encode() for r in records if r.type == "TXT"}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.get(name)

    return dnsfunc


def verifies(message: bytes, idx: int, records: list[dkimkeys.DnsRecord]) -> bool:
    try:
        return bool(dkimpy.DKIM(message).verify(idx=idx, dnsfunc=dns_from(records)))
    except dkimpy.DKIMException:
        return False


async def test_ensure_keys_creates_rsa_and_ed25519_once(database: Database) -> None:
    await add_domain(database, DOMAIN)
    created = await dkimkeys.ensure_keys(database, "SHOP.test", today=TODAY)
    assert [(k.selector, k.algorithm) for k in created] == [
        ("c20261127r", "rsa-sha256"),
        ("c20261127e", "ed25519-sha256"),
    ]
    assert await dkimkeys.ensure_keys(database, DOMAIN, today=date(2026, 12, 1)) == []
    listed = await dkimkeys.list_keys(database, DOMAIN)
    assert {k.selector for k in listed} == {"c20261127r", "c20261127e"}
    assert all(k.active and k.domain == DOMAIN for k in listed)


async def test_unknown_domain_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound):
        await dkimkeys.ensure_keys(database, "nowhere.test", today=TODAY)
    with pytest.raises(NotFound):
        await dkimkeys.load_signer(database, "nowhere.test")


async def test_a_taken_selector_gets_a_counter(database: Database) -> None:
    await add_domain(database, DOMAIN)
    await dkimkeys.ensure_keys(database, DOMAIN, today=TODAY)
    async with database.write() as conn:
        await conn.execute(update(dkim_keys).values(active=False))
    assert await dkimkeys.load_signer(database, DOMAIN) is None
    again = await dkimkeys.ensure_keys(database, DOMAIN, today=TODAY)
    assert [k.selector for k in again] == ["c20261127r2", "c20261127e2"]


async def test_signer_signatures_verify_with_dkimpy(database: Database) -> None:
    await add_domain(database, DOMAIN)
    assert await dkimkeys.load_signer(database, DOMAIN) is None
    await dkimkeys.ensure_keys(database, DOMAIN, today=TODAY)
    signer = await dkimkeys.load_signer(database, DOMAIN)
    assert signer is not None and signer.domain == DOMAIN
    assert signer.selectors == ("c20261127r", "c20261127e")

    header, body = dkim.split_message(MESSAGE)
    hasher = dkim.BodyHasher()
    hasher.update(body)
    fields = signer.signatures(header, hasher.digest(), 1_764_201_600)
    assert fields.count(b"DKIM-Signature:") == 2
    assert fields.index(b"a=rsa-sha256") < fields.index(b"a=ed25519-sha256")

    records = await dkimkeys.dns_records(database, DOMAIN, hostname=HOST)
    signed = fields + MESSAGE
    # dkimpy verifies the signature at index 0 (RSA) and 1 (Ed25519) separately.
    assert verifies(signed, 0, records) and verifies(signed, 1, records)
    tampered = signed.replace(b"Thank you.", b"Pay here.")
    assert not verifies(tampered, 0, records) and not verifies(tampered, 1, records)


async def test_dns_records_and_zone_lines(database: Database) -> None:
    await add_domain(database, DOMAIN)
    keys = await dkimkeys.ensure_keys(database, DOMAIN, today=TODAY)
    records = await dkimkeys.dns_records(database, DOMAIN, hostname="Mail.Shop.TEST")
    by_name = {(r.name, r.type): r.value for r in records}
    assert by_name[(DOMAIN, "MX")] == f"10 {HOST}"
    assert by_name[(DOMAIN, "TXT")] == "v=spf1 mx -all"
    assert by_name[("_dmarc.shop.test", "TXT")] == "v=DMARC1; p=quarantine"
    assert by_name[("c20261127r._domainkey.shop.test", "TXT")] == (
        f"v=DKIM1; k=rsa; p={keys[0].public_key}"
    )
    assert by_name[("c20261127e._domainkey.shop.test", "TXT")] == (
        f"v=DKIM1; k=ed25519; p={keys[1].public_key}"
    )
    assert by_name[("autoconfig.shop.test", "CNAME")] == HOST
    assert by_name[("autodiscover.shop.test", "CNAME")] == HOST

    lines = {r.name: r.zone_line() for r in records if r.type != "TXT" or "_domainkey" in r.name}
    assert lines["autoconfig.shop.test"] == f"autoconfig.shop.test.\tIN\tCNAME\t{HOST}."
    rsa_line = lines["c20261127r._domainkey.shop.test"]
    strings = rsa_line.split("\t")[-1]
    # RFC 1035 §3.3.14: character-strings of at most 255 octets, joined back by readers.
    parts = [p.strip('"') for p in strings.split('" "')]
    assert len(parts) == 2 and all(len(p) <= 255 for p in parts)
    assert "".join(parts) == f"v=DKIM1; k=rsa; p={keys[0].public_key}"


def test_zone_line_quotes_txt() -> None:
    record = dkimkeys.DnsRecord(name="x.test", type="TXT", value='say "hi" \\ there')
    assert record.zone_line() == 'x.test.\tIN\tTXT\t"say \\"hi\\" \\\\ there"'


async def test_check_records_against_memory_resolver(database: Database) -> None:
    await add_domain(database, DOMAIN)
    await dkimkeys.ensure_keys(database, DOMAIN, today=TODAY)
    records = await dkimkeys.dns_records(database, DOMAIN, hostname=HOST)
    rsa_value = next(r.value for r in records if r.name.startswith("c20261127r."))
    zone = {
        (DOMAIN, "MX"): [f"20 {HOST}."],
        (DOMAIN, "TXT"): ["google-site-verification=x", "v=spf1  MX   -all"],
        ("c20261127r._domainkey.shop.test", "TXT"): [rsa_value.replace("; ", ";") + "; t=s"],
        ("c20261127e._domainkey.shop.test", "TXT"): ["v=DKIM1; k=ed25519; p=AAAA"],
        ("autoconfig.shop.test", "CNAME"): [f"{HOST}."],
        ("autodiscover.shop.test", "A"): ["192.0.2.9"],
        (HOST, "A"): ["192.0.2.1"],
    }
    failures = {("_dmarc.shop.test", "TXT"): DnsError("servfail", temporary=True)}
    checks = await dkimkeys.check_records(MemoryResolver(zone, failures), records)
    status = {(c.record.name, c.record.type): c.status for c in checks}
    assert status == {
        (DOMAIN, "MX"): "OK",
        (DOMAIN, "TXT"): "OK",
        ("c20261127r._domainkey.shop.test", "TXT"): "OK",
        ("c20261127e._domainkey.shop.test", "TXT"): "DIFFERENT",
        ("_dmarc.shop.test", "TXT"): "ERROR",
        ("autoconfig.shop.test", "CNAME"): "OK",
        ("autodiscover.shop.test", "CNAME"): "DIFFERENT",
    }
    different = next(c for c in checks if c.status == "DIFFERENT" and c.record.type == "TXT")
    assert different.found == ("v=DKIM1; k=ed25519; p=AAAA",)

    empty = await dkimkeys.check_records(MemoryResolver({(HOST, "A"): ["192.0.2.1"]}), records)
    assert {c.status for c in empty} == {"MISSING"}
