"""``courriel config show|defaults`` through click's runner."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from courriel.cli.config_cmd import COMMANDS, config
from courriel.cli.main import cli
from courriel.config import render_defaults


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # cli/main.py registers every command module in main(); other modules may not exist
    # yet, so add only ours, and take it away afterwards.
    for name in [n for n in os.environ if n.startswith("COURRIEL_")]:
        monkeypatch.delenv(name)  # the caller's environment must not leak into these tests
    cli.add_command(config)
    yield
    cli.commands.pop("config", None)


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), env=env or {})
    return result.exit_code, result.stdout, result.stderr


def test_commands_are_exported() -> None:
    assert COMMANDS[0] is config
    assert len(COMMANDS) == 1
    assert set(config.commands) == {"show", "defaults"}


def test_defaults_prints_the_commented_toml(tmp_path: Path) -> None:
    code, out, err = run("--data-dir", str(tmp_path), "config", "defaults")
    assert code == 0, err
    assert out == render_defaults()


def test_show_on_a_missing_folder_prints_defaults(tmp_path: Path) -> None:
    data_dir = tmp_path / "absent"
    code, out, err = run("--data-dir", str(data_dir), "config", "show")
    assert code == 0, err
    assert out.splitlines()[0] == f"# data folder: {data_dir}"
    assert 'listen.smtp = "0.0.0.0:25"  # default' in out.splitlines()
    assert not data_dir.exists()


def test_show_reports_each_source(tmp_path: Path) -> None:
    toml = tmp_path / "courriel.toml"
    toml.write_text('[server]\nhostname = "mx.example.test"\n[log]\nlevel = "warning"\n')
    env = {"COURRIEL_LOG__LEVEL": "error", "COURRIEL_HTTP__PUBLIC_URL": "https://shop.test"}
    code, out, err = run(
        "--data-dir", str(tmp_path), "--set", "log.level=debug", "config", "show", env=env
    )
    assert code == 0, err
    lines = out.splitlines()
    assert f'server.hostname = "mx.example.test"  # {toml}' in lines
    assert 'http.public_url = "https://shop.test"  # env COURRIEL_HTTP__PUBLIC_URL' in lines
    assert 'log.level = "debug"  # --set' in lines


def test_data_dir_from_environment(tmp_path: Path) -> None:
    code, out, err = run("config", "show", env={"COURRIEL_DATA_DIR": str(tmp_path)})
    assert code == 0, err
    assert out.splitlines()[0] == f"# data folder: {tmp_path}"


def test_config_errors_go_to_stderr_one_per_line(tmp_path: Path) -> None:
    (tmp_path / "courriel.toml").write_text('[smtp]\ncommand_timeout = "5x"\n')
    code, out, err = run(
        "--data-dir",
        str(tmp_path),
        "--set",
        "listen.imap=nowhere",
        "config",
        "show",
        env={"COURRIEL_SERVR__HOSTNAME": "x"},
    )
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "courriel: configuration errors:"
    toml = tmp_path / "courriel.toml"
    assert any(line.startswith(f"  {toml}: smtp.command_timeout = '5x': ") for line in lines)
    assert any(line.startswith("  --set: listen.imap = 'nowhere': ") for line in lines)
    assert any(
        line.startswith("  env COURRIEL_SERVR__HOSTNAME: servr.hostname = 'x': unknown section")
        for line in lines
    )
    assert len(lines) == 4


def test_bad_set_syntax_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("--data-dir", str(tmp_path), "--set", "nodot", "config", "show")
    assert code == 2
    assert "SECTION.KEY=VALUE" in err
