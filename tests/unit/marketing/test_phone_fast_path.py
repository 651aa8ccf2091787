"""normalise_phone's fast path gives exactly what phonenumbers gives (hypothesis).

The reference below is normalise_phone as it was before the fast path: phonenumbers.parse,
is_possible_number, format_number(E164). Every input must give the same number, or the
same error (message and field).
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from courriel.errors import InvalidInput
from courriel.marketing import normalise
from courriel.marketing.normalise import normalise_phone

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def reference(value: str, country: str | None) -> str | None:
    """normalise_phone without the fast path."""
    text = value.strip()
    if not text:
        return None
    if len(text) > 64:
        raise InvalidInput("longer than 64 characters", field="phone")
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        hint = "" if country or text.startswith("+") else " (give +country code or a country)"
        raise InvalidInput(f"unreadable phone number{hint}: {exc}", field="phone") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(f"not a possible phone number: {value!r}", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outcome(function: object, value: str, country: str | None) -> tuple[str, str | None]:
    assert callable(function)
    try:
        return ("ok", function(value, country))
    except InvalidInput as exc:
        return (f"error {exc.field}", str(exc))


def ours(value: str, country: str | None) -> str | None:
    return normalise_phone(value, country=country)


def check(value: str, country: str | None) -> None:
    assert outcome(ours, value, country) == outcome(reference, value, country)


countries = st.one_of(st.sampled_from(REGIONS), st.sampled_from([None, "ZZ", "001", "AQ", "fr"]))
# Mostly the characters the fast path takes, sometimes others (letters, "x", "#", ";",
# an Arabic-Indic digit, a full-width plus), so that both paths and the border between
# them are exercised.
plain = st.text(alphabet="0123456789 ()-./+", max_size=24)
mixed = st.text(alphabet="0123456789 ()-./+x#;,eEt٣＋Aa", max_size=24)


@st.composite
def typed_numbers(draw: st.DrawFn) -> str:
    """A number as people type it: optional +code or national prefix, grouped digits."""
    digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=16))
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=6))
    groups, start = [], 0
    for size in sizes:
        groups.append(digits[start : start + size])
        start += size
    groups.append(digits[start:])
    body = draw(st.sampled_from([" ", "-", ".", ""])).join(g for g in groups if g)
    lead = draw(
        st.sampled_from(["", "0", "00", "+", "+0", "(0)", "011", "1", "8", "("])
        | st.builds(lambda code: f"+{code} ", st.sampled_from(CODES))
        | st.builds(lambda code: f"{code}", st.sampled_from(CODES))
    )
    return lead + body


@settings(max_examples=3000, deadline=None)
@given(value=st.one_of(plain, mixed, typed_numbers()), country=countries)
@example(value="06 12 34 5033", country="FR")
@example(value="+33 6 12 34 56 78", country=None)
@example(value="0033 6 12 34 56 78", country="FR")  # international prefix: phonenumbers
@example(value="33 6 12 34 56 78", country="FR")  # the calling code without "+"
@example(value="00", country="IT")
@example(value="+", country="FR")
@example(value="(020) 7946-0018", country="GB")
def test_same_as_phonenumbers(value: str, country: str | None) -> None:
    check(value, country)


@pytest.mark.parametrize("region", REGIONS)
def test_every_region_example_numbers(region: str) -> None:
    """Each region's example numbers of every type, as typed nationally and with +code."""
    for kind in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.VOIP,
    ):
        number = phonenumbers.example_number_for_type(region, kind)
        if number is None:
            continue
        for form in (
            phonenumbers.PhoneNumberFormat.NATIONAL,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.E164,
        ):
            text = phonenumbers.format_number(number, form)
            for country in (region, None, "US"):
                check(text, country)
                check(text.replace(" ", ""), country)


def test_fast_path_is_taken_for_plain_numbers() -> None:
    # Not a timing test: the common spellings must not all fall back to phonenumbers.
    assert normalise._plain_e164("06 12 34 56 78", "FR") == "+33612345678"
    assert normalise._plain_e164("+1 (415) 555-2671", "FR") == "+14155552671"
    assert normalise._plain_e164("0033 6 12 34 56 78", "FR") is None  # phonenumbers decides
