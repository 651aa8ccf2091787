"""Every RFC the code cites must be listed in docs/rfcs.md (conventions §1)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"\bRFC[ -]?(\d{3,5})\b")


def _cited() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src" / "courriel").rglob("*.py")):
        for number in CITATION.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(number, []).append(str(path.relative_to(ROOT)))
    return cited


def _indexed() -> set[str]:
    text = (ROOT / "docs" / "rfcs.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| RFC (\d+) \|[^|]+\| (Yes|Partial|Roadmap|No) \|", text, re.MULTILINE)
    return {number for number, _status in rows}


def test_every_cited_rfc_is_in_the_index() -> None:
    missing = {n: files for n, files in _cited().items() if n not in _indexed()}
    assert not missing, f"cited in code but missing from docs/rfcs.md: {missing}"


def test_the_index_has_the_core_rfcs() -> None:
    assert {"5321", "1939", "3030", "6531", "2920"} <= _indexed()
