"""Normal forms of contact fields: pure functions, no I/O.

Owns the rules that make two spellings of one person's data compare equal and keep
malformed data out of the contacts table. Every function raises
:class:`courriel.errors.InvalidInput` naming the offending field, never anything else.

Rules:
- email: :func:`courriel.mail.address.normalize_address` (local part lower-cased, domain as
  lower-case A-labels, RFC 5890 IDNA). RFC 5321 §2.4 says a local part MAY be case-sensitive
  and only the domain is not; lower-casing the whole address is a deliberate choice: the
  address identifies a contact, and ``Ana@shop.example`` typed at checkout and
  ``ana@shop.example`` in an import are one person (Mailchimp and Klaviyo do the same).
  Mail is still sent to the stored, lower-cased form, which every common provider accepts.
- names, region, city, postal code: stripped; an empty string clears the stored value.
- phone: E.164 via ``phonenumbers``; a number without ``+`` is read in the contact's
  country only (no other default region), and must be a possible number there.
- country: an ISO 3166-1 alpha-2 code (any case, stored upper case); names are refused.
- time_zone: an IANA name known to ``zoneinfo``.
- attributes: a JSON object with string keys (1–64 characters), JSON-serialisable values,
  at most 100 keys and 64 KiB once serialised.
- tags: 1–64 characters after stripping.
"""

from __future__ import annotations

import json
import math
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, ValidationResult
from phonenumbers import phonenumberutil as pnu
from phonenumbers.re_util import re_compile

from courriel.errors import AddressError, InvalidInput
from courriel.mail.address import normalize_address

__all__ = [
    "ISO_COUNTRIES",
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTES_BYTES",
    "check_attributes",
    "normalise_country",
    "normalise_email",
    "normalise_phone",
    "normalise_tags",
    "normalise_text",
    "normalise_time_zone",
]

MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 64 * 1024
MAX_TAG = 64
MAX_KEY = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# ISO 3166-1 alpha-2 officially assigned codes (249).
_ISO_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES: frozenset[str] = frozenset(_ISO_CODES.split())


def normalise_email(value: str, *, field: str = "email") -> str:
    """The normalised address, or InvalidInput naming ``field``.

    The whole address is lower-cased (see the module docstring on RFC 5321 §2.4) and the
    domain becomes A-labels (RFC 5890), so two spellings of one address are one contact.

    Raises:
        InvalidInput: the value is not a mailbox address.
    """
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    try:
        address = normalize_address(value)
    except AddressError as exc:
        raise InvalidInput(str(exc), field=field) from exc
    if len(address) > 320:
        raise InvalidInput("address longer than 320 characters", field=field)
    return address


def normalise_text(value: str, *, field: str, max_length: int) -> str | None:
    """Strip ``value``; an empty result is None (clears the stored value).

    Raises:
        InvalidInput: not a string, a control character, or longer than ``max_length``.
    """
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    text = value.strip()
    if not text:
        return None
    if _CONTROL.search(text):
        raise InvalidInput("control characters are not allowed", field=field)
    if len(text) > max_length:
        raise InvalidInput(f"longer than {max_length} characters", field=field)
    return text


def normalise_country(value: str, *, field: str = "country") -> str | None:
    """The upper-case ISO 3166-1 alpha-2 code; an empty string is None.

    Raises:
        InvalidInput: anything but an assigned two-letter code (names are refused).
    """
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    code = value.strip().upper()
    if not code:
        return None
    if code not in ISO_COUNTRIES:
        raise InvalidInput(f"not an ISO 3166-1 alpha-2 country code: {value!r}", field=field)
    return code


def normalise_phone(value: str, *, country: str | None, field: str = "phone") -> str | None:
    """The number in E.164 form; an empty string is None.

    Args:
        value: the number as typed.
        country: the contact's normalised country, the only default region for numbers
            given without ``+``.
        field: the name used in errors.

    Raises:
        InvalidInput: the number cannot be read or is not a possible number.
    """
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    text = value.strip()
    if not text:
        return None
    if len(text) > 64:
        raise InvalidInput("longer than 64 characters", field=field)
    fast = _plain_e164(text, country)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        hint = "" if country or text.startswith("+") else " (give +country code or a country)"
        raise InvalidInput(f"unreadable phone number{hint}: {exc}", field=field) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(f"not a possible phone number: {value!r}", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Numbers typed the usual way: ASCII digits, spaces, ( ) . - / and one leading "+". They
# cannot hold an extension, an RFC 3966 parameter or a vanity letter, so of everything
# phonenumbers.parse does only the steps of _plain_e164 can change their result.
_PLAIN_PHONE = re.compile(r"\+?[0-9 ().\-/]+")
# Of those, the ones phonenumbers' _extract_possible_number returns unchanged: from a "+"
# or a digit to a digit.
_BARE_PHONE = re.compile(r"\+?[0-9](?:[0-9 ().\-/]*[0-9])?")
_PUNCTUATION = str.maketrans("", "", "+ ().-/")
# _test_number_length results for which parse keeps the national prefix.
_KEEP_PREFIX = frozenset(
    {
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    }
)
_POSSIBLE = frozenset({ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY})


@lru_cache(maxsize=1024)
def _code_metadata(code: int) -> PhoneMetadata | None:
    # The metadata is_possible_number reads for a country calling code.
    return PhoneMetadata.metadata_for_region_or_calling_code(
        code, pnu.region_code_for_country_code(code)
    )


@lru_cache(maxsize=1024)
def _region(country: str) -> tuple[PhoneMetadata, re.Pattern[str] | None, int] | None:
    # A supported region's metadata, international prefix and calling code.
    if country not in pnu.SUPPORTED_REGIONS:
        return None
    metadata = PhoneMetadata.metadata_for_region(country)
    if metadata is None or metadata.country_code is None:
        return None
    idd = metadata.international_prefix
    return metadata, re_compile(idd) if idd else None, metadata.country_code


def _plain_start(text: str, country: str | None) -> tuple[int, str, PhoneMetadata] | None:
    # The first steps of phonenumbers.parse for _plain_e164: the calling code, the national
    # number before its national prefix is stripped, and the metadata that strips it.
    if _BARE_PHONE.fullmatch(text):
        number = text
    elif _PLAIN_PHONE.fullmatch(text):
        number = pnu._extract_possible_number(text)
    else:
        return None
    if not pnu._is_viable_phone_number(number):
        return None
    digits = number.translate(_PUNCTUATION)
    metadata: PhoneMetadata | None
    if number[0] == "+":
        if len(digits) <= pnu._MIN_LENGTH_FOR_NSN:
            return None
        code, national = pnu._extract_country_code(digits)
        metadata = _code_metadata(code) if code else None
    else:
        region = _region(country) if country is not None else None
        if region is None:
            return None
        metadata, idd, code = region
        if (idd is not None and idd.match(digits)) or digits.startswith(str(code)):
            return None
        national = digits
    if metadata is None or len(national) < pnu._MIN_LENGTH_FOR_NSN:
        return None
    return code, national, metadata


def _plain_e164(text: str, country: str | None) -> str | None:
    """:func:`normalise_phone` of a plainly typed number, or None to ask phonenumbers.

    ``phonenumbers.parse`` + ``is_possible_number`` + ``format_number(E164)`` cost ~22 µs,
    most of it in generic steps (RFC 3966 parameters, extensions, per-character Unicode
    digit mapping) that cannot matter for :data:`_PLAIN_PHONE` text. This runs the steps
    that can, with phonenumbers' own helpers and metadata (~6 µs), and gives up (None)
    wherever parse would raise or take a rarer branch (an international dialling prefix,
    the region's calling code written without "+", an unknown calling code), so that
    phonenumbers decides those. tests/unit/marketing/test_phone_fast_path.py checks it
    against phonenumbers on random input and every region's example numbers.
    """
    start = _plain_start(text, country)
    if start is None:
        return None
    code, national, metadata = start
    _, stripped, _ = pnu._maybe_strip_national_prefix_carrier_code(national, metadata)
    if pnu._test_number_length(stripped, metadata) not in _KEEP_PREFIX:
        national = stripped
    possible = _code_metadata(code)
    if len(national) > pnu._MAX_LENGTH_FOR_NSN or possible is None:
        return None
    if pnu._test_number_length(national, possible) not in _POSSIBLE:
        return None
    # E.164 is "+", the calling code and the national significant number, which (leading
    # zeros included) is exactly the national number string parse ends with.
    return f"+{code}{national}"


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def normalise_time_zone(value: str, *, field: str = "time_zone") -> str | None:
    """The IANA time zone name as given; an empty string is None.

    Raises:
        InvalidInput: not a name ``zoneinfo`` knows.
    """
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    name = value.strip()
    if not name:
        return None
    if name not in _zones():
        raise InvalidInput(f"not an IANA time zone name: {value!r}", field=field)
    return name


def normalise_tags(values: Iterable[str], *, field: str = "tags") -> tuple[str, ...]:
    """Stripped, de-duplicated, sorted tags.

    Raises:
        InvalidInput: a tag is not a string, is empty, or is longer than 64 characters.
    """
    if isinstance(values, str):
        raise InvalidInput("must be a list of strings", field=field)
    tags: set[str] = set()
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInput("must be a string", field=f"{field}/{index}")
        tag = value.strip()
        if not tag or len(tag) > MAX_TAG:
            raise InvalidInput(f"a tag has 1 to {MAX_TAG} characters", field=f"{field}/{index}")
        if _CONTROL.search(tag):
            raise InvalidInput("control characters are not allowed", field=f"{field}/{index}")
        tags.add(tag)
    return tuple(sorted(tags))


def check_attributes(value: Mapping[str, Any], *, field: str = "attributes") -> dict[str, Any]:
    """A copy of ``value`` checked to be a storable JSON object.

    Raises:
        InvalidInput: not a mapping, a bad key, a value JSON cannot hold, more than 100
            keys, or more than 64 KiB once serialised.
    """
    if not isinstance(value, Mapping):
        raise InvalidInput("must be a JSON object", field=field)
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes", field=field)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
            raise InvalidInput(f"keys are strings of 1 to {MAX_KEY} characters", field=field)
        if not _json_value(item):
            raise InvalidInput(
                "value is not JSON (string, number, bool, null, list, object)",
                field=f"{field}/{key}",
            )
        result[key] = item
    if _size_bound(result) > MAX_ATTRIBUTES_BYTES and _json_size(result) > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput(f"attributes exceed {MAX_ATTRIBUTES_BYTES} bytes", field=field)
    return result


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _size_bound(value: dict[str, Any]) -> int:
    # An upper bound of the serialised size that avoids serialising the common case
    # (short string values): a character takes at most 6 bytes in JSON ("\u001f").
    total = 2
    for key, item in value.items():
        if not isinstance(item, str):
            return MAX_ATTRIBUTES_BYTES + 1  # unknown: measure exactly
        total += 6 * (len(key) + len(item)) + 6
    return total


def _json_value(value: Any, depth: int = 0) -> bool:
    # Deep enough for any real attribute, shallow enough to refuse pathological input.
    if depth > 16:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_json_value(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _json_value(v, depth + 1) for k, v in value.items())
    return False
