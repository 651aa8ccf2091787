"""The loader: precedence with sources, collected problems, rendering, the data folder."""

from __future__ import annotations

import dataclasses
import re
import stat
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from courriel.config import (
    Config,
    ServerSection,
    default_hostname,
    ensure_data_dir,
    load_config,
    render_defaults,
    render_effective,
)
from courriel.errors import ConfigError, ConfigProblem

ALL_KEYS = [
    f"{section.name}.{key.name}"
    for section in dataclasses.fields(Config)
    for key in dataclasses.fields(getattr(Config(), section.name))
]


def write_toml(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "courriel.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[ConfigProblem]:
    return excinfo.value.problems


def find(problems: list[ConfigProblem], key: str) -> ConfigProblem:
    matches = [p for p in problems if p.key == key]
    assert len(matches) == 1, (key, problems)
    return matches[0]


def test_missing_folder_gives_defaults(tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "absent", environ={})
    expected = Config(server=ServerSection(hostname=default_hostname()))
    assert loaded.config == expected
    assert set(loaded.sources) == set(ALL_KEYS)
    assert set(loaded.sources.values()) == {"default"}
    assert loaded.data_dir == tmp_path / "absent"
    assert not (tmp_path / "absent").exists()


def test_data_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = load_config(Path("rel"), environ={})
    assert loaded.data_dir.is_absolute()
    assert loaded.data_dir == tmp_path / "rel"


def test_precedence_default_toml_env_set(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
[server]
hostname = "MX.Example.Test"
max_recipients = 200

[smtp]
banner = "from toml"
max_connections = 10
command_timeout = "6m"
""",
    )
    environ = {
        "COURRIEL_SMTP__BANNER": "from env",
        "COURRIEL_SMTP__MAX_CONNECTIONS": "20",
        "COURRIEL_DATA_DIR": "/elsewhere",  # read by the CLI, not a config key
        "COURRIEL_TEST_POSTGRES_URL": "postgresql://x",  # reserved for the test suite
        "PATH": "/bin",
    }
    loaded = load_config(tmp_path, {"smtp.max_connections": "30"}, environ=environ)
    config, sources = loaded.config, loaded.sources
    # toml only
    assert config.server.hostname == "mx.example.test"
    assert sources["server.hostname"] == str(path)
    assert config.server.max_recipients == 200
    assert config.smtp.command_timeout == timedelta(minutes=6)
    # env over toml
    assert config.smtp.banner == "from env"
    assert sources["smtp.banner"] == "env COURRIEL_SMTP__BANNER"
    # --set over env over toml
    assert config.smtp.max_connections == 30
    assert sources["smtp.max_connections"] == "--set"
    # untouched
    assert config.pop3.idle_timeout == timedelta(minutes=10)
    assert sources["pop3.idle_timeout"] == "default"
    assert config.smtp_banner == "from env"


def test_env_lists_are_comma_separated(tmp_path: Path) -> None:
    environ = {
        "COURRIEL_DNS__NAMESERVERS": "127.0.0.1:5353, [::1]:53",
        "COURRIEL_DELIVERY__RETRY_SCHEDULE": "1s,2s,3s",
        "COURRIEL_LISTEN__IMAP": "",
    }
    config = load_config(tmp_path, environ=environ).config
    assert config.dns.nameservers == ("127.0.0.1:5353", "[::1]:53")
    assert config.delivery.retry_schedule == tuple(timedelta(seconds=s) for s in (1, 2, 3))
    assert config.listen.imap == ""
    assert "imap" not in config.listen.addresses()


def test_empty_env_list_clears_an_optional_list(tmp_path: Path) -> None:
    write_toml(tmp_path, '[dns]\nnameservers = ["127.0.0.1"]\n')
    config = load_config(tmp_path, environ={"COURRIEL_DNS__NAMESERVERS": ""}).config
    assert config.dns.nameservers == ()


def test_toml_lists_and_set_flags(tmp_path: Path) -> None:
    write_toml(tmp_path, '[delivery]\nretry_schedule = ["1m", "1h"]\n')
    loaded = load_config(
        tmp_path, {"dns.nameservers": "127.0.0.1:5353", "log.level": "debug"}, environ={}
    )
    assert loaded.config.delivery.retry_schedule == (timedelta(minutes=1), timedelta(hours=1))
    assert loaded.config.dns.nameservers == ("127.0.0.1:5353",)
    assert loaded.config.log.level == "debug"


def test_relative_tls_paths_are_relative_to_the_data_folder(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "c.pem").write_text("cert")
    (tmp_path / "certs" / "k.pem").write_text("key")
    write_toml(tmp_path, '[tls]\ncert = "certs/c.pem"\nkey = "certs/k.pem"\n')
    config = load_config(tmp_path, environ={}).config
    assert config.tls.cert == str(tmp_path / "certs" / "c.pem")
    assert config.tls.key == str(tmp_path / "certs" / "k.pem")


def test_listeners_on_port_zero_may_repeat(tmp_path: Path) -> None:
    overrides = {f"listen.{name}": "127.0.0.1:0" for name in ("smtp", "submission", "imap")}
    config = load_config(tmp_path, overrides, environ={}).config
    assert config.listen.smtp == config.listen.imap == "127.0.0.1:0"


def test_every_problem_is_collected_with_source_key_and_value(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
stray = 1

[smpt]
banner = "x"

[server]
hostnme = "mx.example.test"
max_recipients = "many"
max_message_size = 0

[listen]
imap = "0.0.0.0:99999"
submission = "0.0.0.0:25"
pop3 = "127.0.0.1:110"
pop3s = "0.0.0.0:110"

[smtp]
command_timeout = "5x"

[log]
level = "loud"

[tls]
cert = "missing.pem"

[delivery]
retry_schedule = "5m"

[http]
public_url = "localhost:8025"
""",
    )
    environ = {
        "COURRIEL_BOGUS": "1",
        "COURRIEL_SMTP__NOPE": "2",
        "COURRIEL_DNS__NAMESERVERS": "127.0.0.1,dns.example.test",
    }
    overrides = {"pop3.idle_timeout": "-5m", "database.blob_store": "s3"}
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, overrides, environ=environ)
    problems = problems_of(excinfo)
    src = str(path)
    expected = [
        (src, "stray", "1", "inside a [section]"),
        (src, "smpt.banner", "x", "unknown section [smpt]; did you mean [smtp]?"),
        (src, "server.hostnme", "mx.example.test", "did you mean server.hostname?"),
        (src, "server.max_recipients", "many", "expected an integer"),
        (src, "server.max_message_size", "0", "at least 1"),
        (src, "listen.imap", "0.0.0.0:99999", "bad port"),
        (src, "listen.submission", "0.0.0.0:25", "same address as listen.smtp"),
        (src, "listen.pop3s", "0.0.0.0:110", "same address as listen.pop3"),
        (src, "smtp.command_timeout", "5x", "unknown unit 'x'"),
        (src, "log.level", "loud", "expected one of: debug, info, warning, error"),
        (src, "tls.cert", "missing.pem", "tls.key must be set too"),
        (src, "delivery.retry_schedule", "5m", "expected a list"),
        (src, "http.public_url", "localhost:8025", "http:// or https://"),
        ("env COURRIEL_BOGUS", "COURRIEL_BOGUS", "1", "COURRIEL_<SECTION>__<KEY>"),
        ("env COURRIEL_SMTP__NOPE", "smtp.nope", "2", "unknown key smtp.nope"),
        (
            "env COURRIEL_DNS__NAMESERVERS",
            "dns.nameservers",
            "127.0.0.1,dns.example.test",
            "bad name server 'dns.example.test'",
        ),
        ("--set", "pop3.idle_timeout", "-5m", "negative"),
        ("--set", "database.blob_store", "s3", "expected one of: fs, sql"),
    ]
    for source, key, value, fragment in expected:
        matches = [p for p in problems if p.key == key and fragment in p.message]
        assert matches, f"no problem for {key} containing {fragment!r} in {problems}"
        assert matches[0].source == source
        assert matches[0].value == value
    # The unreadable certificate is reported too, next to the missing key.
    cert_problems = [p for p in problems if p.key == "tls.cert"]
    assert any("cannot open" in p.message for p in cert_problems)
    # The error text lists every problem, one a line, each naming file, key and value.
    lines = str(excinfo.value).splitlines()
    assert len(lines) == len(problems)
    assert f"{src}: listen.imap = '0.0.0.0:99999': " in str(excinfo.value)


def test_key_without_cert_and_wrong_toml_types(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_text("key")
    write_toml(tmp_path, '[tls]\nkey = "k.pem"\n[smtp]\nbanner = 220\nmax_connections = "5"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ={})
    problems = problems_of(excinfo)
    assert "tls.cert must be set too" in find(problems, "tls.key").message
    assert find(problems, "smtp.banner").message == "expected a string"
    assert find(problems, "smtp.max_connections").message == "expected an integer"


def test_rfc_minimums_and_zero_durations(tmp_path: Path) -> None:
    overrides = {
        "server.max_recipients": "99",
        "dns.timeout": "0s",
        "delivery.retry_schedule": "",
        "server.hostname": "not_a_host",
    }
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, overrides, environ={})
    problems = problems_of(excinfo)
    assert "at least 100" in find(problems, "server.max_recipients").message
    assert "longer than 0s" in find(problems, "dns.timeout").message
    assert "at least one" in find(problems, "delivery.retry_schedule").message
    assert "host name" in find(problems, "server.hostname").message


def test_malformed_toml_is_one_problem_naming_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[server\nhostname = ")
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, environ={})
    (problem,) = problems_of(excinfo)
    assert problem.source == str(path)
    assert "cannot read the file" in problem.message


def test_wildcard_listener_clashes_with_specific_address(tmp_path: Path) -> None:
    overrides = {"listen.smtp": "[::]:2525", "listen.submission": "[::1]:2525"}
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path, overrides, environ={})
    problem = find(problems_of(excinfo), "listen.submission")
    assert problem.source == "--set"
    assert "listen.smtp ([::]:2525)" in problem.message


def test_rendered_defaults_load_unchanged_as_defaults(tmp_path: Path) -> None:
    text = render_defaults()
    tomllib.loads(text)  # valid TOML
    write_toml(tmp_path, text)
    loaded = load_config(tmp_path, environ={})
    assert loaded.config == load_config(tmp_path / "absent", environ={}).config
    assert set(loaded.sources.values()) == {"default"}


def test_rendered_defaults_uncommented_give_the_same_config(tmp_path: Path) -> None:
    # Each key is one commented line: uncommenting all of them changes nothing.
    text = render_defaults()
    uncommented = re.sub(r"(?m)^# ([a-z0-9_]+ = )", r"\1", text)
    path = write_toml(tmp_path, uncommented)
    data = tomllib.loads(uncommented)
    assert sorted(f"{s}.{k}" for s, table in data.items() for k in table) == sorted(ALL_KEYS)
    loaded = load_config(tmp_path, environ={})
    assert loaded.config == load_config(tmp_path / "absent", environ={}).config
    assert set(loaded.sources.values()) == {str(path)}


def test_rendered_defaults_document_every_key() -> None:
    text = render_defaults()
    for dotted in ALL_KEYS:
        section, key = dotted.split(".")
        assert f"\n[{section}]\n" in text
        block = text.split(f"\n[{section}]\n")[1].split("\n[")[0]
        before = block.split(f"\n# {key} = ")[0]
        assert before.rstrip().splitlines()[-1].startswith("# "), dotted  # a doc line above


def test_render_effective_shows_values_and_sources(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[smtp]\nbanner = "quote \\" and \\\\ back"\n')
    loaded = load_config(
        tmp_path, {"log.level": "debug"}, environ={"COURRIEL_DNS__NAMESERVERS": "127.0.0.1:53"}
    )
    text = render_effective(loaded)
    lines = text.splitlines()
    assert lines[0] == f"# data folder: {tmp_path}"
    body = {line.split(" = ")[0]: line for line in lines[1:]}
    assert set(body) == set(ALL_KEYS)
    assert body["log.level"] == 'log.level = "debug"  # --set'
    assert (
        body["dns.nameservers"]
        == 'dns.nameservers = ["127.0.0.1:53"]  # env COURRIEL_DNS__NAMESERVERS'
    )
    assert body["smtp.banner"].endswith(f"  # {path}")
    assert body["delivery.expire_after"] == 'delivery.expire_after = "5d"  # default'
    # Each value is a TOML value that reads back to what was loaded.
    value = body["smtp.banner"].split(" = ", 1)[1].rsplit("  # ", 1)[0]
    assert tomllib.loads(f"v = {value}")["v"] == 'quote " and \\ back'


def test_ensure_data_dir_creates_once_and_never_overwrites(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert ensure_data_dir(data_dir) is True
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    toml = data_dir / "courriel.toml"
    assert toml.read_text(encoding="utf-8") == render_defaults()
    assert ensure_data_dir(data_dir) is False
    toml.write_text('[log]\nlevel = "debug"\n', encoding="utf-8")
    assert ensure_data_dir(data_dir) is False
    assert toml.read_text(encoding="utf-8") == '[log]\nlevel = "debug"\n'
    assert load_config(data_dir, environ={}).config.log.level == "debug"


def test_ensure_data_dir_writes_the_file_into_an_existing_folder(tmp_path: Path) -> None:
    assert ensure_data_dir(tmp_path) is True
    assert (tmp_path / "courriel.toml").is_file()
    assert ensure_data_dir(tmp_path) is False


def test_ensure_data_dir_reports_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as excinfo:
        ensure_data_dir(blocker / "data")
    assert problems_of(excinfo)[0].message.startswith("cannot create")


def test_booleans_take_toml_values_and_the_words_true_or_false(tmp_path: Path) -> None:
    (tmp_path / "courriel.toml").write_text("[tracking]\nopen_pixel = false\n")
    assert load_config(tmp_path, environ={}).config.tracking.open_pixel is False
    loaded = load_config(tmp_path, environ={"COURRIEL_TRACKING__OPEN_PIXEL": "True"})
    assert loaded.config.tracking.open_pixel is True
    (tmp_path / "courriel.toml").write_text('[tracking]\nopen_pixel = "yes"\n')
    with pytest.raises(ConfigError, match=r"tracking\.open_pixel.*expected true or false"):
        load_config(tmp_path, environ={})
    (tmp_path / "courriel.toml").write_text("")
    with pytest.raises(ConfigError, match="expected true or false"):
        load_config(tmp_path, environ={"COURRIEL_TRACKING__OPEN_PIXEL": "1"})
