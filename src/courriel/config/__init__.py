"""Configuration: the typed schema, the loader (defaults < TOML < env < CLI) and durations.

Import from here: ``from courriel.config import load_config, Config``.
"""

from courriel.config.durations import DurationError, format_duration, parse_duration
from courriel.config.loader import (
    CONFIG_FILE,
    ENV_PREFIX,
    LoadedConfig,
    ensure_data_dir,
    load_config,
    render_defaults,
    render_effective,
)
from courriel.config.schema import (
    BlobStore,
    Config,
    DatabaseSection,
    DeliverySection,
    DnsSection,
    HttpSection,
    ImapSection,
    ListenAddress,
    ListenSection,
    LogLevel,
    LogSection,
    Pop3Section,
    ServerSection,
    SmtpSection,
    TlsSection,
    default_hostname,
    is_hostname,
    parse_listen,
    parse_nameserver,
)

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "BlobStore",
    "Config",
    "DatabaseSection",
    "DeliverySection",
    "DnsSection",
    "DurationError",
    "HttpSection",
    "ImapSection",
    "ListenAddress",
    "ListenSection",
    "LoadedConfig",
    "LogLevel",
    "LogSection",
    "Pop3Section",
    "ServerSection",
    "SmtpSection",
    "TlsSection",
    "default_hostname",
    "ensure_data_dir",
    "format_duration",
    "is_hostname",
    "load_config",
    "parse_duration",
    "parse_listen",
    "parse_nameserver",
    "render_defaults",
    "render_effective",
]
