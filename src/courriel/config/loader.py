"""Load, validate and render the configuration of one data folder.

This module owns the precedence of configuration sources (design.md):
defaults < ``<data>/courriel.toml`` < ``COURRIEL_<SECTION>__<KEY>`` variables <
``--set section.key=value`` flags, and the text forms of the config
(``courriel config defaults`` and ``courriel config show``).

Invariants:
    * Every key is converted and checked before anything is built; all problems
      are collected and raised together as one :class:`ConfigError`, each naming
      its source (file path, ``env NAME`` or ``--set``), key and value.
    * A returned :class:`LoadedConfig` is fully valid: ``data_dir`` and the
      ``tls.cert``/``tls.key`` paths are absolute, ``server.hostname`` is never empty.
    * :func:`render_defaults` output is valid TOML that :func:`load_config`
      accepts unchanged, and loading it gives the defaults.
    * :func:`ensure_data_dir` never overwrites a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import textwrap
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from courriel.config.durations import format_duration, parse_duration
from courriel.config.schema import (
    Config,
    default_hostname,
    is_hostname,
    parse_listen,
    parse_nameserver,
    parse_network,
)
from courriel.errors import ConfigError, ConfigProblem, InvalidInput

__all__ = [
    "CONFIG_FILE",
    "ENV_PREFIX",
    "LoadedConfig",
    "ensure_data_dir",
    "load_config",
    "render_defaults",
    "render_effective",
]

CONFIG_FILE = "courriel.toml"
ENV_PREFIX = "COURRIEL_"
_DATA_DIR_ENV = "COURRIEL_DATA_DIR"  # read by the CLI root group, not a config key
# Reserved for the test suite (e.g. COURRIEL_TEST_POSTGRES_URL); never config keys.
_TEST_ENV_PREFIX = "COURRIEL_TEST_"
_SET = "--set"
_DEFAULT = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedConfig:
    """A valid configuration and where each of its values came from."""

    config: Config
    # "section.key" -> "default" | "<path of courriel.toml>" | "env COURRIEL_X__Y" | "--set"
    sources: Mapping[str, str]
    data_dir: Path  # absolute


@dataclass(frozen=True, slots=True)
class _Key:
    """One schema field, as the loader needs it."""

    section: str
    name: str
    hint: Any  # the resolved type annotation
    default: Any
    meta: Mapping[str, Any]

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


@dataclass(frozen=True, slots=True)
class _Raw:
    """A value as given by one source, before conversion."""

    value: Any
    source: str
    typed: bool  # True for TOML values (typed); False for env and --set text


def _build_schema() -> dict[str, tuple[type[Any], dict[str, _Key]]]:
    schema: dict[str, tuple[type[Any], dict[str, _Key]]] = {}
    for section_field in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section_field.name]
        hints = typing.get_type_hints(cls)
        keys = {
            f.name: _Key(section_field.name, f.name, hints[f.name], f.default, f.metadata)
            for f in dataclasses.fields(cls)
        }
        schema[section_field.name] = (cls, keys)
    return schema


_SCHEMA = _build_schema()
_ALL_KEYS = [key.dotted for _, keys in _SCHEMA.values() for key in keys.values()]


def _problem(source: str, key: str, value: Any, message: str) -> ConfigProblem:
    return ConfigProblem(source=source, key=key, value=_show(value), message=message)


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_show(item) for item in value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def _lookup(dotted: str) -> _Key | str:
    """Find a key by ``section.key``, or say why it is unknown (with a suggestion)."""
    section, _, name = dotted.partition(".")
    if section not in _SCHEMA:
        close = difflib.get_close_matches(section, list(_SCHEMA), n=1)
        hint = f"; did you mean [{close[0]}]?" if close else ""
        return f"unknown section [{section}]{hint}"
    keys = _SCHEMA[section][1]
    if name in keys:
        return keys[name]
    close = difflib.get_close_matches(dotted, _ALL_KEYS, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown key {dotted}{hint}"


def _read_toml(path: Path, raw: dict[str, _Raw], problems: list[ConfigProblem]) -> None:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(_problem(str(path), "", "", f"cannot read the file: {exc}"))
        return
    source = str(path)
    for section, table in data.items():
        if not isinstance(table, dict):
            matches = [k for k in _ALL_KEYS if k.endswith(f".{section}")]
            message = "keys must be inside a [section]"
            message += f"; did you mean {matches[0]}?" if matches else ""
            problems.append(_problem(source, section, table, message))
            continue
        for name, value in table.items():
            dotted = f"{section}.{name}"
            found = _lookup(dotted)
            if isinstance(found, str):
                problems.append(_problem(source, dotted, value, found))
            else:
                raw[dotted] = _Raw(value, source, typed=True)


def _read_env(
    environ: Mapping[str, str], raw: dict[str, _Raw], problems: list[ConfigProblem]
) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == _DATA_DIR_ENV:
            continue
        if name.startswith(_TEST_ENV_PREFIX):
            continue
        value = environ[name]
        source = f"env {name}"
        section, sep, key = name[len(ENV_PREFIX) :].partition("__")
        if not sep or not section or not key:
            message = "not a config variable; expected COURRIEL_<SECTION>__<KEY>"
            problems.append(_problem(source, name, value, message))
            continue
        dotted = f"{section.lower()}.{key.lower()}"
        found = _lookup(dotted)
        if isinstance(found, str):
            problems.append(_problem(source, dotted, value, found))
        else:
            raw[dotted] = _Raw(value, source, typed=False)


def _read_overrides(
    overrides: Mapping[str, str], raw: dict[str, _Raw], problems: list[ConfigProblem]
) -> None:
    for dotted, value in overrides.items():
        found = _lookup(dotted.strip().lower())
        if isinstance(found, str):
            problems.append(_problem(_SET, dotted, value, found))
        else:
            raw[found.dotted] = _Raw(value, _SET, typed=False)


def _convert_scalar(key: _Key, hint: Any, value: Any, typed: bool) -> Any:
    """Convert one scalar (or one list item) to the type ``hint``; raise InvalidInput."""
    if hint is bool:
        return _convert_bool(value, typed)
    if hint is int:
        return _convert_int(key, value, typed)
    if not isinstance(value, str):
        raise InvalidInput("expected a string" if hint is str else "expected a quoted string")
    if hint == (timedelta | None):
        # An optional duration: empty means "never".
        return _convert_scalar(key, timedelta, value, typed) if value.strip() else None
    if hint is timedelta:
        duration = parse_duration(value)
        if not duration:
            raise InvalidInput("must be longer than 0s")
        return duration
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        if value.strip() not in choices:
            raise InvalidInput(f"expected one of: {', '.join(choices)}")
        return value.strip()
    return _check_kind(key.meta.get("kind"), value)


def _convert_int(key: _Key, value: Any, typed: bool) -> int:
    if typed and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput("expected an integer")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidInput("expected an integer") from None
    if number < key.meta.get("min", number):
        raise InvalidInput(f"must be at least {key.meta['min']}")
    if number > key.meta.get("max", number):
        raise InvalidInput(f"must be at most {key.meta['max']}")
    return number


def _convert_bool(value: Any, typed: bool) -> bool:
    if typed and not isinstance(value, bool):
        raise InvalidInput("expected true or false")
    # Environment variables and --set: the TOML spellings only.
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise InvalidInput("expected true or false")
    return text == "true"


def _check_kind(kind: str | None, value: str) -> str:
    """Apply the ``kind`` check of a string field; return the (stripped) value."""
    if kind is None:
        return value
    value = value.strip()
    if kind == "listen":
        parse_listen(value)
    elif kind == "nameserver":
        parse_nameserver(value)
    elif kind == "network":
        parse_network(value)
    elif kind == "hostname" and value and not is_hostname(value.rstrip(".")):
        raise InvalidInput("not a valid host name (RFC 1123 §2.1)")
    elif kind == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput("expected an absolute http:// or https:// URL")
        return value.rstrip("/")
    return value


def _convert(key: _Key, item: _Raw, data_dir: Path) -> Any:
    """Convert a raw value to the field's type and check it; raise InvalidInput."""
    if typing.get_origin(key.hint) is tuple:
        item_hint = typing.get_args(key.hint)[0]
        if item.typed and not isinstance(item.value, list):
            raise InvalidInput('expected a list, e.g. ["a", "b"]')
        values = item.value if item.typed else [v for v in item.value.split(",") if v.strip()]
        converted = tuple(_convert_scalar(key, item_hint, v, item.typed) for v in values)
        if not converted and key.default:
            raise InvalidInput("needs at least one item")
        return converted
    value = _convert_scalar(key, key.hint, item.value, item.typed)
    if key.meta.get("kind") == "path" and value:
        value = str(data_dir / Path(value).expanduser())
    if key.dotted == "server.hostname":
        value = value.rstrip(".").lower()
    return value


def _convert_all(
    raw: Mapping[str, _Raw], data_dir: Path, problems: list[ConfigProblem]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for _, keys in _SCHEMA.values():
        for key in keys.values():
            item = raw.get(key.dotted)
            if item is None:
                values[key.dotted] = key.default
                continue
            try:
                values[key.dotted] = _convert(key, item, data_dir)
            except InvalidInput as exc:
                problems.append(_problem(item.source, key.dotted, item.value, str(exc)))
    return values


def _check_tls(
    values: Mapping[str, Any], raw: Mapping[str, _Raw], problems: list[ConfigProblem]
) -> None:
    for name, other in (("tls.cert", "tls.key"), ("tls.key", "tls.cert")):
        mine = values.get(name)
        item = raw.get(name)
        if not mine or item is None:
            continue
        if not values.get(other) and other in values:
            problems.append(
                _problem(item.source, name, item.value, f"{other} must be set too (or neither)")
            )
        try:
            with open(mine, "rb"):
                pass
        except OSError as exc:
            problems.append(
                _problem(item.source, name, item.value, f"cannot open {mine}: {exc.strerror}")
            )


def _overlaps(a_host: str, b_host: str) -> bool:
    """Tell whether two listening hosts would clash on one port (a wildcard covers its family)."""
    if a_host == b_host:
        return True
    for wild, other in ((a_host, b_host), (b_host, a_host)):
        try:
            wild_ip, other_ip = ipaddress.ip_address(wild), ipaddress.ip_address(other)
        except ValueError:
            continue
        if wild_ip.is_unspecified and wild_ip.version == other_ip.version:
            return True
    return False


def _check_listeners(
    values: Mapping[str, Any], raw: Mapping[str, _Raw], problems: list[ConfigProblem]
) -> None:
    seen: list[tuple[str, Any]] = []
    for name in _SCHEMA["listen"][1]:
        dotted = f"listen.{name}"
        if dotted not in values:
            continue  # already reported as invalid
        address = parse_listen(values[dotted])
        if address is None or address.port == 0:  # port 0: the system picks a free port
            continue
        for other, other_address in seen:
            if other_address.port == address.port and _overlaps(other_address.host, address.host):
                item = raw.get(dotted) or raw.get(other)
                source = item.source if item else _DEFAULT
                message = f"same address as {other} ({other_address})"
                problems.append(_problem(source, dotted, values[dotted], message))
                break
        seen.append((dotted, address))


def load_config(
    data_dir: Path,
    overrides: Mapping[str, str] = types.MappingProxyType({}),
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load the configuration of a data folder: defaults < TOML < env < ``--set``.

    The folder need not exist: a missing ``courriel.toml`` means all defaults. Every
    ``COURRIEL_*`` variable must name a key, except ``COURRIEL_DATA_DIR`` (read by the
    CLI) and ``COURRIEL_TEST_*`` (reserved for the test suite).

    Args:
        data_dir: the data folder; relative paths in the config are relative to it.
        overrides: ``{"section.key": "value"}`` from ``--set`` flags (highest precedence).
        environ: the environment to read ``COURRIEL_<SECTION>__<KEY>`` from;
            ``os.environ`` when None.

    Returns:
        The valid configuration, the source of every key and the absolute data folder.

    Raises:
        ConfigError: listing every problem found (unknown section or key, wrong type,
            bad port, address, duration or choice, incomplete or unreadable TLS files,
            two listeners on one address).
    """
    data_dir = data_dir.expanduser().absolute()
    problems: list[ConfigProblem] = []
    raw: dict[str, _Raw] = {}
    _read_toml(data_dir / CONFIG_FILE, raw, problems)
    _read_env(os.environ if environ is None else environ, raw, problems)
    _read_overrides(overrides, raw, problems)
    values = _convert_all(raw, data_dir, problems)
    _check_tls(values, raw, problems)
    _check_listeners(values, raw, problems)
    if problems:
        raise ConfigError(problems)
    if not values["server.hostname"]:
        values["server.hostname"] = default_hostname()
    sections = {
        section: cls(**{name: values[key.dotted] for name, key in keys.items()})
        for section, (cls, keys) in _SCHEMA.items()
    }
    sources = {dotted: raw[dotted].source if dotted in raw else _DEFAULT for dotted in _ALL_KEYS}
    return LoadedConfig(config=Config(**sections), sources=sources, data_dir=data_dir)


def _toml_value(value: Any) -> str:
    """Write a config value as a TOML value (strings as basic strings)."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, timedelta):
        value = format_duration(value)
    if value is None:
        return '""'
    if isinstance(value, bool | int):
        return str(value).lower()
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    # TOML 1.0 §String: control characters must be escaped in basic strings.
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)
    return f'"{escaped}"'


def _comment(text: str, width: int = 88) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, width - 2)]


def render_defaults() -> str:
    """Render the schema as a commented ``courriel.toml``.

    Every key appears with its documentation above it and its default, commented
    out, so that changing one setting means uncommenting one line. The text is
    valid TOML, and loading it unchanged gives the defaults.

    Returns:
        The file text, ending with a newline.
    """
    lines = [
        "# courriel configuration (courriel.toml in the data folder).",
        "# Each key is shown with its documentation and its default, commented out:",
        "# uncomment a line to change it. Durations are written like 45s, 5m, 1h30m, 2d.",
        "# The environment overrides any key as COURRIEL_<SECTION>__<KEY> (lists",
        "# comma-separated), and `courriel --set section.key=value` overrides both.",
    ]
    for section, (cls, keys) in _SCHEMA.items():
        lines += ["", "", *_comment(textwrap.dedent(cls.__doc__ or "").strip()), f"[{section}]"]
        for name, key in keys.items():
            lines += ["", *_comment(key.meta["doc"]), f"# {name} = {_toml_value(key.default)}"]
    return "\n".join(lines) + "\n"


def render_effective(loaded: LoadedConfig) -> str:
    """Render the effective configuration, one ``section.key = value  # source`` a line.

    Args:
        loaded: a configuration returned by :func:`load_config`.

    Returns:
        The text, headed by a comment naming the data folder, ending with a newline.
    """
    lines = [f"# data folder: {loaded.data_dir}"]
    for section, (_, keys) in _SCHEMA.items():
        section_value = getattr(loaded.config, section)
        for name, key in keys.items():
            value = _toml_value(getattr(section_value, name))
            lines.append(f"{key.dotted} = {value}  # {loaded.sources[key.dotted]}")
    return "\n".join(lines) + "\n"


def ensure_data_dir(data_dir: Path) -> bool:
    """Create the data folder (mode 0700) and a commented ``courriel.toml`` if missing.

    Never overwrites an existing file; an existing folder keeps its mode.

    Args:
        data_dir: the data folder.

    Returns:
        True when the folder or the file was created.

    Raises:
        ConfigError: the folder or the file cannot be created.
    """
    created = False
    try:
        if not data_dir.is_dir():
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = True
        path = data_dir / CONFIG_FILE
        try:
            # "x": never overwrite, even if another process created it meanwhile.
            with path.open("x", encoding="utf-8") as file:
                file.write(render_defaults())
                file.flush()
                os.fsync(file.fileno())
            created = True
        except FileExistsError:
            pass
    except OSError as exc:
        raise ConfigError(
            [_problem(str(data_dir), "data_dir", data_dir, f"cannot create: {exc.strerror}")]
        ) from exc
    return created
