"""Durations: the text form used in courriel.toml, env variables and --set flags."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.config.durations import DurationError, format_duration, parse_duration
from courriel.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("90m", timedelta(minutes=90)),
        (" 5M ", timedelta(minutes=5)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_accepts_operator_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("5x", "unknown unit 'x'"),
        ("-5m", "negative"),
        ("5", "no unit"),
        ("m", "bad duration"),
        ("1.5h", "bad duration"),
        ("1m1h", "from w down to s"),
        ("5m5m", "from w down to s"),
        ("5 m", "bad duration"),
        ("99999999999999w", "too large"),
    ],
)
def test_parse_rejects_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(DurationError, match=fragment):
        parse_duration(text)


def test_duration_error_is_invalid_input() -> None:
    # The loader collects InvalidInput into ConfigProblem; durations must fit that tree.
    assert issubclass(DurationError, InvalidInput)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=5), "5d"),
        (timedelta(days=14, seconds=1), "2w1s"),
    ],
)
def test_format_is_canonical(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


def test_format_rejects_negative_and_fractions() -> None:
    with pytest.raises(DurationError, match="negative"):
        format_duration(timedelta(seconds=-1))
    with pytest.raises(DurationError, match="whole number"):
        format_duration(timedelta(milliseconds=1500))


@given(st.integers(min_value=0, max_value=999_999_999 * 86400))
def test_format_then_parse_is_identity(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


@given(st.integers(min_value=0, max_value=10**9))
def test_canonical_text_is_stable(seconds: int) -> None:
    text = format_duration(timedelta(seconds=seconds))
    assert format_duration(parse_duration(text)) == text


@given(st.text(max_size=12))
def test_parse_raises_only_duration_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except DurationError:
        return
    assert result >= timedelta(0)
    assert result.microseconds == 0
