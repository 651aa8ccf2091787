"""``courriel serve`` runs the HTTP listener: the REST API answers keys made by the CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from courriel.testing.subprocess_node import ServeProcess, run_cli


def _call(port: int, method: str, path: str, key: str | None, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_answers_the_api_with_a_key_made_by_the_cli(data_dir: Path, db_url: str) -> None:
    made = run_cli(data_dir, ["apikey", "create", "e2e"], database_url=db_url)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    server = ServeProcess(data_dir, db_url)
    server.start()
    try:
        port = server.ports["http"]
        status, problem = _call(port, "GET", "/api/v1/contacts", None)
        assert status == 401
        assert problem["status"] == 401
        status, contact = _call(
            port, "PUT", "/api/v1/contacts", key, {"email": "Ann@Example.TEST", "first_name": "Ann"}
        )
        assert status == 201, contact
        assert contact["email"] == "ann@example.test"
        status, found = _call(port, "GET", "/api/v1/contacts?q=ann", key)
        assert status == 200
        assert [c["email"] for c in found["data"]] == ["ann@example.test"]
        status, spec = _call(port, "GET", "/api/v1/openapi.json", None)
        assert status == 200
        assert "/api/v1/contacts" in spec["paths"]
    finally:
        assert server.terminate() == 0, "".join(server.output)
