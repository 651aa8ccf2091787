"""DKIM keys per local domain, the signer built from them, and the DNS records to publish.

Owns: creating a domain's RSA-2048 and Ed25519 keys (RFC 6376, RFC 8463) in ``dkim_keys``,
loading its active keys into a :class:`DkimSigner`, the records ``courriel domain dns``
prints (MX, SPF, DKIM, DMARC, autoconfig/autodiscover), and checking them against DNS.

Invariants:
- Private keys stay inside this module, :class:`DkimSigner` and the render processes of
  a large campaign (:func:`signing_pems`): :class:`DkimKey` carries only the public part,
  so listing keys never exposes a secret.
- Selectors are named by creation date, ``c<YYYYMMDD>r`` (RSA) and ``c<YYYYMMDD>e``
  (Ed25519), so a later rotation adds new selectors without touching the published ones.
- Key generation and PEM parsing (RSA takes tens of milliseconds) run in a thread, off the
  event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from courriel.dns.resolver import Resolver
from courriel.errors import DnsError, NotFound
from courriel.mail import dkim
from courriel.mail.address import normalize_domain
from courriel.mail.dkimsigner import DkimSigner, SigningKey
from courriel.storage.db import Database
from courriel.storage.models import dkim_keys, domains, utcnow

__all__ = [
    "CheckStatus",
    "DkimKey",
    "DkimSigner",
    "DnsRecord",
    "RecordCheck",
    "check_records",
    "dns_records",
    "ensure_keys",
    "list_keys",
    "load_signer",
    "signing_pems",
]

CheckStatus = Literal["OK", "MISSING", "DIFFERENT", "ERROR"]
_SUFFIX: dict[dkim.Algorithm, str] = {"rsa-sha256": "r", "ed25519-sha256": "e"}
# RFC 1035 §3.3.14: a TXT record is a sequence of character-strings of at most 255 octets.
_TXT_STRING = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimKey:
    """The public side of one DKIM key of a domain."""

    domain: str  # lower-case A-labels
    selector: str  # e.g. "c20261127r"
    algorithm: dkim.Algorithm
    public_key: str  # base64, the p= value of the DNS record
    active: bool  # used for signing
    created_at: datetime


async def _domain_id(conn: AsyncConnection, domain: str) -> int:
    value = await conn.scalar(select(domains.c.id).where(domains.c.name == domain))
    if value is None:
        raise NotFound(f"domain {domain} does not exist")
    return int(value)


def _to_key(domain: str, row: Row[Any]) -> DkimKey:
    algorithm: dkim.Algorithm = "rsa-sha256" if row.algorithm == "rsa-sha256" else "ed25519-sha256"
    return DkimKey(
        domain=domain,
        selector=row.selector,
        algorithm=algorithm,
        public_key=row.public_key,
        active=bool(row.active),
        created_at=row.created_at,
    )


async def list_keys(db: Database, domain: str) -> list[DkimKey]:
    """Every DKIM key of a local domain (active or not), by selector.

    Raises:
        AddressError: not a domain name. NotFound: not a local domain.
    """
    name = normalize_domain(domain)
    async with db.read() as conn:
        did = await _domain_id(conn, name)
        rows = (
            await conn.execute(
                select(dkim_keys).where(dkim_keys.c.domain_id == did).order_by(dkim_keys.c.selector)
            )
        ).all()
    return [_to_key(name, row) for row in rows]


def _new_keys() -> list[dkim.PrivateKey]:
    return [dkim.generate_rsa(2048), dkim.generate_ed25519()]


async def ensure_keys(db: Database, domain: str, *, today: date) -> list[DkimKey]:
    """Give a local domain its RSA-2048 and Ed25519 keys unless it has active keys.

    Args:
        today: the creation date that names the selectors (``c20261127r``, ``c20261127e``);
            a selector taken already gets a counter (``c20261127r2``).

    Returns:
        The keys created, RSA first; empty when the domain had active keys already.

    Raises:
        AddressError: not a domain name. NotFound: not a local domain.
    """
    name = normalize_domain(domain)
    if any(k.active for k in await list_keys(db, name)):
        return []
    private = await asyncio.to_thread(_new_keys)
    now = utcnow()
    created: list[DkimKey] = []
    async with db.write() as conn:
        did = await _domain_id(conn, name)
        rows = (
            await conn.execute(
                select(dkim_keys.c.selector, dkim_keys.c.active).where(dkim_keys.c.domain_id == did)
            )
        ).all()
        if any(row.active for row in rows):
            return []  # another process created them meanwhile
        taken = {row.selector for row in rows}
        for key in private:
            algorithm = dkim.algorithm_of(key)
            selector = _free_selector(f"c{today:%Y%m%d}{_SUFFIX[algorithm]}", taken)
            taken.add(selector)
            public = dkim.public_key_record(key)
            await conn.execute(
                insert(dkim_keys).values(
                    domain_id=did,
                    selector=selector,
                    algorithm=algorithm,
                    private_key=dkim.key_to_pem(key),
                    public_key=public,
                    active=True,
                    created_at=now,
                )
            )
            created.append(
                DkimKey(
                    domain=name,
                    selector=selector,
                    algorithm=algorithm,
                    public_key=public,
                    active=True,
                    created_at=now,
                )
            )
    return created


def _free_selector(base: str, taken: set[str]) -> str:
    selector, counter = base, 1
    while selector in taken:
        counter += 1
        selector = f"{base}{counter}"
    return selector


async def load_signer(db: Database, domain: str) -> DkimSigner | None:
    """The signer of a local domain's active keys, or None when it has none.

    The keys are parsed here, once: keep the signer (per domain) rather than calling
    this for every message.

    Raises:
        AddressError: not a domain name. NotFound: not a local domain.
        InvalidInput: a stored key does not parse.
    """
    name, stored = await signing_pems(db, domain)
    if not stored:
        return None
    # Parsing an RSA PEM checks the key (~40 ms): off the event loop, like generation.
    keys = await asyncio.to_thread(_parse_keys, stored)
    return DkimSigner(name, keys)


async def signing_pems(db: Database, domain: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A local domain's normalised name and its active keys as (selector, PEM) pairs.

    For a process that builds its own :class:`DkimSigner` (a campaign's render
    processes); the PEM text is a secret: never log it.

    Raises:
        AddressError: not a domain name. NotFound: not a local domain.
    """
    name = normalize_domain(domain)
    async with db.read() as conn:
        did = await _domain_id(conn, name)
        rows = (
            await conn.execute(
                select(dkim_keys.c.selector, dkim_keys.c.private_key).where(
                    dkim_keys.c.domain_id == did, dkim_keys.c.active.is_(True)
                )
            )
        ).all()
    return name, tuple((r.selector, r.private_key) for r in rows)


def _parse_keys(stored: Sequence[tuple[str, str]]) -> list[SigningKey]:
    return [SigningKey.from_pem(selector, pem) for selector, pem in stored]


# --- the records to publish ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsRecord:
    """One DNS record to publish; names are absolute, without the final dot."""

    name: str
    type: Literal["MX", "TXT", "CNAME"]
    value: str  # MX "10 host", CNAME "host", TXT the text (unquoted, unsplit)

    def zone_line(self) -> str:
        """The record in zone-file syntax (RFC 1035 §5.1); TXT split in 255-octet strings."""
        if self.type == "TXT":
            data = self.value.encode("utf-8")
            chunks = [data[i : i + _TXT_STRING] for i in range(0, len(data), _TXT_STRING)]
            rdata = " ".join(_quote(c.decode("utf-8", "replace")) for c in chunks or [b""])
        else:
            rdata = f"{self.value}."
        return f"{self.name}.\tIN\t{self.type}\t{rdata}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def dns_records(db: Database, domain: str, *, hostname: str) -> list[DnsRecord]:
    """The records a local domain needs in DNS for mail sent and received here.

    Args:
        hostname: this server's name (``server.hostname``): the MX, and the target of the
            autoconfig/autodiscover names.

    Raises:
        AddressError: not a domain name. NotFound: not a local domain.
    """
    name = normalize_domain(domain)
    host = normalize_domain(hostname)
    records = [
        DnsRecord(name=name, type="MX", value=f"10 {host}"),
        # RFC 7208 §5.4: "mx" authorizes the hosts of our MX records, which are us;
        # "-all" fails everyone else.
        DnsRecord(name=name, type="TXT", value="v=spf1 mx -all"),
    ]
    for key in await list_keys(db, name):
        if key.active:
            records.append(
                DnsRecord(
                    name=f"{key.selector}._domainkey.{name}",
                    type="TXT",
                    value=dkim.txt_record(key.algorithm, key.public_key),
                )
            )
    # RFC 7489 §6.3: p=quarantine while reports are watched; no rua= until a mailbox
    # for aggregate reports exists (reports to a missing address would bounce).
    records.append(DnsRecord(name=f"_dmarc.{name}", type="TXT", value="v=DMARC1; p=quarantine"))
    # The names Thunderbird (autoconfig) and Outlook (autodiscover) ask for settings.
    for label in ("autoconfig", "autodiscover"):
        records.append(DnsRecord(name=f"{label}.{name}", type="CNAME", value=host))
    return records


# --- checking them against DNS ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCheck:
    """What DNS says about one expected record."""

    record: DnsRecord
    status: CheckStatus
    found: tuple[str, ...] = ()  # the relevant values DNS returned (for DIFFERENT)
    detail: str = ""  # the reason for ERROR


async def check_records(resolver: Resolver, records: Sequence[DnsRecord]) -> list[RecordCheck]:
    """Ask DNS for each record and compare.

    MX: OK when an MX of the domain names the expected host. TXT: the records of the
    same kind (``v=spf1``, ``v=DMARC1``, ``v=DKIM1``) are compared, SPF by terms, DMARC
    by tags, DKIM by key. CNAME: the resolver port has no CNAME query, so the name must
    resolve to the same addresses as its target. A temporary DNS failure is ERROR.
    """
    return [await _check(resolver, record) for record in records]


async def _check(resolver: Resolver, record: DnsRecord) -> RecordCheck:
    try:
        if record.type == "MX":
            found = tuple(f"{m.preference} {m.host}" for m in await resolver.mx(record.name))
            expected = record.value.split()[1].lower()
            ok = any(value.split()[1:] == [expected] for value in found)
        elif record.type == "TXT":
            found, ok = await _check_txt(resolver, record)
        else:
            found = tuple(sorted(set(await resolver.addresses(record.name))))
            target = set(await resolver.addresses(record.value))
            ok = bool(found) and set(found) == target
    except DnsError as exc:
        if exc.temporary:
            return RecordCheck(record=record, status="ERROR", detail=str(exc))
        found, ok = (), False  # NXDOMAIN: nothing there
    if ok:
        return RecordCheck(record=record, status="OK", found=found)
    return RecordCheck(record=record, status="DIFFERENT" if found else "MISSING", found=found)


async def _check_txt(resolver: Resolver, record: DnsRecord) -> tuple[tuple[str, ...], bool]:
    kind = _first_term(record.value)  # "v=spf1", "v=dmarc1", "v=dkim1"
    texts = await resolver.txt(record.name)
    found = tuple(t for t in texts if _first_term(t) == kind)
    want = _normal_txt(record.value)
    return found, any(_normal_txt(text) == want for text in found)


def _first_term(text: str) -> str:
    stripped = text.strip()
    return stripped.split(";")[0].split()[0].lower() if stripped else ""


def _normal_txt(text: str) -> tuple[str, ...]:
    if _first_term(text) == "v=spf1":
        # RFC 7208 §4.6.1: terms are separated by spaces; names are case-insensitive.
        return tuple(text.lower().split())
    # RFC 6376 §3.2 and RFC 7489 §6.4: tag=value lists, WSP around tags ignored; the
    # order of tags does not matter. Base64 values (p=) may hold FWS.
    tags: dict[str, str] = {}
    for part in text.split(";"):
        tag, _, value = part.partition("=")
        if tag.strip():
            tags[tag.strip().lower()] = "".join(value.split())
    if tags.get("v", "").lower() == "dkim1":
        # RFC 6376 §3.6.1: what matters is the key and its type (k= defaults to rsa);
        # other tags (t=, h=, n=) are the publisher's choice.
        return (tags.get("k", "rsa").lower(), tags.get("p", ""))
    return tuple(sorted(f"{tag}={value}" for tag, value in tags.items()))
