"""The configuration schema: every key courriel reads, typed, with its default and its doc.

This module owns the shape of ``courriel.toml`` (conventions §7: the schema IS the
documentation). One frozen dataclass per ``[section]``; each field is one
``section.key`` with a default and ``metadata["doc"]``, which ``courriel config
defaults`` prints above the key. The section's docstring heads its table.

Field metadata understood by the loader:
    ``doc``   the text printed above the key (required on every field).
    ``kind``  extra validation (parsers in :mod:`courriel.config.values`) for a
              ``str`` field or the items of a list:
              ``listen`` (``host:port`` or empty), ``nameserver`` (``ip`` or
              ``ip:port``), ``network`` (an IP or CIDR), ``hostname``, ``url`` or
              ``path`` (relative to the data folder; the loader makes it absolute).
    ``min``   the smallest value an ``int`` field accepts.

Invariants:
    * Durations are :class:`datetime.timedelta` of whole seconds; lists are tuples.
    * Every default is valid, so an empty ``courriel.toml`` is a working config.
    * ``server.hostname`` defaults to ``""`` here; the loader replaces it with
      :func:`default_hostname` at load time, so a loaded ``Config`` never has it empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, Literal

# The value parsers live in config.values; they are re-exported here, where they were first.
from courriel.config.values import (
    ListenAddress,
    default_hostname,
    is_hostname,
    parse_listen,
    parse_nameserver,
    parse_network,
)

__all__ = [
    "BlobStore",
    "Config",
    "DatabaseSection",
    "DeliverySection",
    "DnsSection",
    "HttpSection",
    "ImapSection",
    "ListenAddress",
    "ListenSection",
    "LogLevel",
    "LogSection",
    "Pop3Section",
    "ServerSection",
    "SmtpSection",
    "TlsSection",
    "default_hostname",
    "is_hostname",
    "parse_listen",
    "parse_nameserver",
    "parse_network",
]

LogLevel = Literal["debug", "info", "warning", "error"]
BlobStore = Literal["fs", "sql"]
RelayTls = Literal["starttls", "tls", "none"]


def _meta(doc: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the documentation of a key and its optional ``kind`` and ``min``."""
    return {"doc": doc, **extra}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSection:
    """Identity and limits of this mail server."""

    hostname: str = field(
        default="",
        metadata=_meta(
            "Name announced in SMTP greetings and used for the self-signed certificate. "
            "Empty: this machine's fully qualified name, lower-cased "
            "(localhost when it has no dot).",
            kind="hostname",
        ),
    )
    max_message_size: int = field(
        default=52428800,
        metadata=_meta(
            "Largest message accepted, in bytes (RFC 1870 SIZE); default 50 MiB.", min=1
        ),
    )
    max_recipients: int = field(
        default=1000,
        metadata=_meta(
            "Most recipients accepted in one SMTP transaction "
            "(RFC 5321 §4.5.3.1.8 requires at least 100).",
            min=100,
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenSection:
    """Listening addresses, each host:port ([::1]:25 for IPv6) or empty to disable."""

    smtp: str = field(
        default="0.0.0.0:25",
        metadata=_meta("SMTP for incoming mail from other servers (MX).", kind="listen"),
    )
    submission: str = field(
        default="0.0.0.0:587",
        metadata=_meta("Message submission with STARTTLS (RFC 6409).", kind="listen"),
    )
    submissions: str = field(
        default="0.0.0.0:465",
        metadata=_meta("Message submission over implicit TLS (RFC 8314 §3.3).", kind="listen"),
    )
    imap: str = field(default="0.0.0.0:143", metadata=_meta("IMAP with STARTTLS.", kind="listen"))
    imaps: str = field(
        default="0.0.0.0:993",
        metadata=_meta("IMAP over implicit TLS (RFC 8314 §3.2).", kind="listen"),
    )
    pop3: str = field(default="0.0.0.0:110", metadata=_meta("POP3 with STLS.", kind="listen"))
    pop3s: str = field(
        default="0.0.0.0:995",
        metadata=_meta("POP3 over implicit TLS (RFC 8314 §3.2).", kind="listen"),
    )
    http: str = field(
        default="127.0.0.1:8025",
        metadata=_meta("HTTP: dashboard, API, tracking, webhooks, autoconfig.", kind="listen"),
    )

    def addresses(self) -> dict[str, ListenAddress]:
        """Return the enabled listeners by key name (``smtp``, ``imaps``...), parsed.

        Raises:
            InvalidInput: a value does not parse (never after ``load_config``).
        """
        parsed = {name: parse_listen(getattr(self, name)) for name in _field_names(self)}
        return {name: address for name, address in parsed.items() if address is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSection:
    """SMTP server sessions (ports 25, 587 and 465)."""

    command_timeout: timedelta = field(
        default=timedelta(minutes=5),
        metadata=_meta(
            "Idle time allowed between commands (RFC 5321 §4.5.3.2.7: at least 5 minutes)."
        ),
    )
    data_timeout: timedelta = field(
        default=timedelta(minutes=10),
        metadata=_meta(
            "Time allowed while receiving message data "
            "(RFC 5321 §4.5.3.2.5: 3 minutes per block; "
            "§4.5.3.2.6: 10 minutes after the final dot)."
        ),
    )
    max_connections: int = field(
        default=500, metadata=_meta("Most SMTP connections served at once.", min=1)
    )
    banner: str = field(
        default="", metadata=_meta('Text of the 220 greeting. Empty: "<hostname> ESMTP courriel".')
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapSection:
    """IMAP server sessions (ports 143 and 993)."""

    idle_timeout: timedelta = field(
        default=timedelta(minutes=30),
        metadata=_meta(
            "Idle time before the server closes a session outside IDLE "
            "(RFC 9051 §5.4: at least 30 minutes)."
        ),
    )
    idle_keepalive: timedelta = field(
        default=timedelta(minutes=2),
        metadata=_meta('Time between "* OK Still here" lines sent to a client in IDLE.'),
    )
    max_connections: int = field(
        default=500, metadata=_meta("Most IMAP connections served at once.", min=1)
    )
    max_line: int = field(
        default=65536,
        metadata=_meta("Longest command line in octets, literals excluded.", min=1024),
    )
    cache_size: int = field(
        default=64 * 1024 * 1024,
        metadata=_meta(
            "Octets of parsed messages kept in memory for FETCH and SEARCH, shared by sessions.",
            min=0,
        ),
    )
    changes_retention: timedelta = field(
        default=timedelta(days=30),
        metadata=_meta(
            "How long the change feed keeps its rows (appends, flag changes, expunges). "
            "A QRESYNC client (RFC 7162) or a session older than this gets a full "
            "resynchronisation instead of the exact changes."
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pop3Section:
    """POP3 server sessions (ports 110 and 995)."""

    idle_timeout: timedelta = field(
        default=timedelta(minutes=10),
        metadata=_meta(
            "Idle time before the server closes a session (RFC 1939 §3: at least 10 minutes)."
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSection:
    """Certificate for STARTTLS and implicit TLS. Set both keys or neither."""

    cert: str = field(
        default="",
        metadata=_meta(
            "PEM certificate chain, relative to the data folder unless absolute. "
            "Empty: a self-signed certificate for server.hostname in <data>/tls/.",
            kind="path",
        ),
    )
    key: str = field(
        default="",
        metadata=_meta("PEM private key of tls.cert; same rules as tls.cert.", kind="path"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseSection:
    """Where accounts, messages, queues and marketing data live."""

    url: str = field(
        default="",
        metadata=_meta(
            "SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/courriel. "
            "Empty: the SQLite file <data>/courriel.db."
        ),
    )
    blob_store: BlobStore = field(
        default="fs",
        metadata=_meta(
            "Where message bodies go: fs (files in <data>/blobs) or sql (in the database, "
            "for several nodes sharing PostgreSQL)."
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSection:
    """DNS resolution for MX lookups, SPF, DKIM and DMARC."""

    nameservers: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            "Name servers to ask, each ip or ip:port (e.g. 127.0.0.1:5353). "
            "Empty: the system resolver.",
            kind="nameserver",
        ),
    )
    timeout: timedelta = field(
        default=timedelta(seconds=5), metadata=_meta("Time allowed for one DNS query.")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverySection:
    """Outbound delivery queue."""

    retry_schedule: tuple[timedelta, ...] = field(
        default=(
            timedelta(minutes=5),
            timedelta(minutes=15),
            timedelta(hours=1),
            timedelta(hours=4),
            timedelta(hours=12),
            timedelta(days=1),
        ),
        metadata=_meta(
            "Delays between attempts after a temporary failure; the last one repeats. "
            "RFC 5321 §4.5.4.1 advises 30 minutes or more; short first delays pass greylisting."
        ),
    )
    expire_after: timedelta = field(
        default=timedelta(days=5),
        metadata=_meta(
            "Give up and bounce after this long in the queue (RFC 5321 §4.5.4.1: 4-5 days)."
        ),
    )
    delay_warning_after: timedelta | None = field(
        default=None,
        metadata=_meta(
            "Send the sender one delay notice (RFC 3464 action=delayed) when a message is "
            "still queued after this long; empty: never."
        ),
    )
    max_connections_per_domain: int = field(
        default=10,
        metadata=_meta("Most simultaneous connections to one destination domain.", min=1),
    )
    max_messages_per_connection: int = field(
        default=100,
        metadata=_meta("Messages sent over one connection before it is closed.", min=1),
    )
    connection_cache_time: timedelta | None = field(
        default=timedelta(seconds=2),
        metadata=_meta(
            "How long a connection with nothing more to send stays open for the next "
            "delivery round to the same host (as Postfix's connection cache); empty: "
            "close it at once."
        ),
    )
    claim_lease: timedelta = field(
        default=timedelta(minutes=15),
        metadata=_meta(
            "How long a worker owns the recipients it claimed; after that (a crashed node) "
            "another worker takes them back. Longer than one delivery round can take."
        ),
    )
    mx_port: int = field(
        default=25,
        metadata=_meta(
            "Port of remote MX hosts (RFC 5321 §4.5.4: 25); change only in lab or test setups.",
            min=1,
            max=65535,
        ),
    )
    relay_host: str = field(
        default="",
        metadata=_meta(
            "Smarthost: send all outbound mail through this host instead of MX lookups "
            "(for networks that block port 25); empty: deliver directly."
        ),
    )
    relay_port: int = field(
        default=587,
        metadata=_meta("Port of relay_host.", min=1, max=65535),
    )
    relay_user: str = field(
        default="", metadata=_meta("User name for AUTH at relay_host; empty: no AUTH.")
    )
    relay_password: str = field(
        default="", metadata=_meta("Password for AUTH at relay_host (never logged).")
    )
    relay_tls: RelayTls = field(
        default="starttls",
        metadata=_meta(
            "TLS to relay_host: starttls (required), tls (implicit TLS, port 465) or none."
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSection:
    """The HTTP server and the links it puts in mail."""

    public_url: str = field(
        default="http://localhost:8025",
        metadata=_meta(
            "Base URL of every link put in mail (tracking, unsubscribe) and of the dashboard.",
            kind="url",
        ),
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            "Reverse proxies (IPs, CIDRs) whose X-Forwarded-For is believed: the client is "
            "the rightmost hop not listed. Empty: trust none. See docs/operations.md.",
            kind="network",
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopSection:
    """The shop that campaigns speak for (template data and the CAN-SPAM footer)."""

    name: str = field(default="", metadata=_meta("The shop's name, shown in mail footers."))
    url: str = field(default="", metadata=_meta("The storefront's address."))
    address: str = field(
        default="",
        metadata=_meta(
            "Postal address printed in every campaign's footer (CAN-SPAM requires one); a "
            "campaign cannot be sent while it is empty."
        ),
    )
    currency: str = field(
        default="EUR", metadata=_meta("ISO 4217 code of money shown in templates.")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignsSection:
    """How campaigns are sent."""

    concurrency: int = field(
        default=64,
        metadata=_meta("Messages a sending campaign has in flight at once.", min=1),
    )
    batch: int = field(
        default=500,
        metadata=_meta("Recipients read, rendered and queued per step of a campaign.", min=1),
    )
    render_processes: int = field(
        default=0,
        metadata=_meta(
            "Processes that render and DKIM-sign the copies of large campaigns; 0: one per "
            "CPU core.",
            min=0,
        ),
    )
    render_pool_from: int = field(
        default=200,
        metadata=_meta(
            "A campaign step of at least this many copies is rendered in the render "
            "processes (smaller ones on the event loop); 0: never.",
            min=0,
        ),
    )
    feedback_id: str = field(
        default="",
        metadata=_meta(
            "SenderId of the Feedback-ID header (Gmail's feedback loop); default: the "
            "server hostname."
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackingSection:
    """Opens, clicks and revenue attribution."""

    open_pixel: bool = field(
        default=True,
        metadata=_meta(
            "Put an open-tracking pixel in campaign mail (never for contacts without tracking "
            "consent)."
        ),
    )
    attribution_window: timedelta = field(
        default=timedelta(days=5),
        metadata=_meta(
            "An order placed this long after a click on a campaign is attributed to it "
            "(last click wins)."
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSection:
    """Logging."""

    level: LogLevel = field(
        default="info", metadata=_meta("Least severe level written: debug, info, warning or error.")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration: one attribute per ``[section]`` of courriel.toml."""

    server: ServerSection = field(default_factory=ServerSection)
    listen: ListenSection = field(default_factory=ListenSection)
    smtp: SmtpSection = field(default_factory=SmtpSection)
    imap: ImapSection = field(default_factory=ImapSection)
    pop3: Pop3Section = field(default_factory=Pop3Section)
    tls: TlsSection = field(default_factory=TlsSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    dns: DnsSection = field(default_factory=DnsSection)
    delivery: DeliverySection = field(default_factory=DeliverySection)
    http: HttpSection = field(default_factory=HttpSection)
    shop: ShopSection = field(default_factory=ShopSection)
    campaigns: CampaignsSection = field(default_factory=CampaignsSection)
    tracking: TrackingSection = field(default_factory=TrackingSection)
    log: LogSection = field(default_factory=LogSection)

    @property
    def smtp_banner(self) -> str:
        """The text of the SMTP 220 greeting (RFC 5321 §4.2: starts with our name)."""
        return self.smtp.banner or f"{self.server.hostname} ESMTP courriel"


def _field_names(section: Any) -> list[str]:
    return [f.name for f in fields(section)]
