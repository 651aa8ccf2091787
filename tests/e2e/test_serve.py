"""``courriel serve`` as a subprocess: listeners printed, mail survives a restart, clean stop."""

from __future__ import annotations

import poplib
import smtplib
import socket
import ssl
from pathlib import Path

import pytest

from courriel.testing.subprocess_node import ServeProcess, courriel_command, run_cli

from .conftest import PASSWORD


def _tls(data_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))
    ctx.check_hostname = False
    return ctx


def test_serve_prints_listeners_receives_and_stops_cleanly(data_dir: Path, db_url: str) -> None:
    server = ServeProcess(data_dir, db_url)
    server.start()
    try:
        assert {"smtp", "submission", "submissions", "pop3", "pop3s"} <= set(server.ports)
        assert any(str(data_dir.resolve()) in line for line in server.output)
        with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as smtp:
            smtp.sendmail("c@example.test", ["alice@shop.test"], b"Subject: hi\r\n\r\nbody\r\n")
    finally:
        status = server.terminate()
    assert status == 0, "".join(server.output)

    again = ServeProcess(data_dir, db_url)
    again.start()
    try:
        pop = poplib.POP3_SSL("127.0.0.1", again.ports["pop3s"], timeout=10, context=_tls(data_dir))
        pop.user("alice@shop.test")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        pop.quit()
    finally:
        assert again.terminate() == 0


def test_a_taken_port_stops_start_up_naming_the_key(data_dir: Path, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServeProcess(data_dir, db_url, extra={"listen.pop3": f"127.0.0.1:{port}"})
        with pytest.raises(RuntimeError) as info:
            server.start()
    text = str(info.value)
    assert "listen.pop3" in text
    assert "already in use" in text
    assert server.process is not None and server.process.returncode == 1
    assert "Traceback" not in text


def test_bad_config_lists_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "courriel.toml").write_text(
        '[listen]\nsmtp = "127.0.0.1:99999"\n[server]\nhostnme = "x"\n', encoding="utf-8"
    )
    result = run_cli(folder, ["config", "show"])
    assert result.returncode == 1
    assert "listen.smtp" in result.stderr
    assert "server.hostnme" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    import subprocess

    args = [*courriel_command(tmp_path / "d", {}), "serve", "--roles", "nonsense"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "unknown role" in result.stderr
