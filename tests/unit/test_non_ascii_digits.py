"""Digits that are digits to ``str.isdigit`` but not to ``int`` (``²``) are refused cleanly.

``"²".isdigit()`` is True and ``int("²")`` raises ValueError: every parser that checked
``isdigit`` before ``int`` crashed on it instead of answering with its own error.
"""

from __future__ import annotations

import pytest

from courriel.config import parse_listen
from courriel.config.durations import parse_duration
from courriel.errors import CourrielError
from courriel.integrations.payload import opt_int
from courriel.protocols.smtp.commands import parse_command
from courriel.protocols.smtp.extensions import read_mail_params

SUPERSCRIPT_TWO = "\u00b2"


def test_listen_port() -> None:
    with pytest.raises(CourrielError):
        parse_listen(f"127.0.0.1:{SUPERSCRIPT_TWO}")


def test_duration() -> None:
    with pytest.raises(CourrielError):
        parse_duration(SUPERSCRIPT_TWO)


def test_webhook_integer_field_names_its_path() -> None:
    with pytest.raises(CourrielError) as info:
        opt_int({"quantity": SUPERSCRIPT_TWO}, "quantity", "line_items/0")
    assert getattr(info.value, "field", None) == "line_items/0/quantity"


def test_smtp_bdat_size() -> None:
    with pytest.raises(CourrielError):
        parse_command(f"BDAT {SUPERSCRIPT_TWO} LAST")


def test_smtp_mail_size_parameter() -> None:
    with pytest.raises(CourrielError):
        read_mail_params((("SIZE", SUPERSCRIPT_TWO),), 1000)
