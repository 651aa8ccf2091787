"""ParsedMessage: BODY, BODYSTRUCTURE and ENVELOPE compared with Dovecot 2.3's answers.

Each ``mime_samples/NAME.eml`` was appended to a private Dovecot 2.3.19 and fetched;
``mime_samples/dovecot.json`` holds its (BODYSTRUCTURE, BODY, ENVELOPE) answers as
latin-1 text. ``lf_only.eml`` is left out on purpose (see its test).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from courriel.protocols.imap.mime import ParsedMessage
from courriel.protocols.imap.types import Section

SAMPLES_DIR = Path(__file__).parent / "mime_samples"
DOVECOT: dict[str, list[str]] = json.loads((SAMPLES_DIR / "dovecot.json").read_text("ascii"))


def sample(name: str) -> bytes:
    return (SAMPLES_DIR / f"{name}.eml").read_bytes()


@pytest.mark.parametrize("name", sorted(DOVECOT))
def test_structure_and_envelope_match_dovecot(name: str) -> None:
    message = ParsedMessage.parse(sample(name))
    bodystructure, body, envelope = (v.encode("latin-1") for v in DOVECOT[name])
    assert message.body_structure(extended=True) == bodystructure
    assert message.body_structure(extended=False) == body
    assert message.envelope() == envelope


def test_size_is_the_octet_count() -> None:
    assert ParsedMessage.parse(sample("mixed")).size == len(sample("mixed"))


def test_lf_only_sizes_count_stored_octets() -> None:
    # Dovecot counts a bare LF as CRLF (12 here); courriel serves stored octets as they
    # are, so it counts what it serves.
    structure = ParsedMessage.parse(sample("lf_only")).body_structure(extended=False)
    assert structure == b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1) "mixed")'


def test_empty_message() -> None:
    message = ParsedMessage.parse(b"")
    assert message.envelope() == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert message.body_structure(extended=False) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
    )
    assert message.section(Section()) == b""
    assert message.section(Section(text="HEADER")) == b""
    assert message.section(Section(part=(1,))) == b""


def test_envelope_subject_is_cleaned_for_humans_like_dovecot() -> None:
    envelope = ParsedMessage.parse(sample("subject_spaces")).envelope()
    assert envelope.startswith(b"(NIL {18}\r\ntwo spaces and tab (")
    folded = ParsedMessage.parse(sample("cid")).envelope()
    assert folded.startswith(b"(NIL {3}\r\na b NIL")


def test_empty_address_list_element_is_a_missing_mailbox() -> None:
    envelope = ParsedMessage.parse(sample("addr2")).envelope()
    assert b'(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")' in envelope


def test_content_type_without_subtype() -> None:
    structure = ParsedMessage.parse(sample("noslash")).body_structure(extended=False)
    assert structure == b'("text" "" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'


def test_rfc2231_continuations_are_merged() -> None:
    structure = ParsedMessage.parse(sample("mixedcase")).body_structure(extended=False)
    assert b'("Name" "longname.bin")' in structure
    assert b'("name*" "utf-8\'\'%E2%82%AC.pdf")' in structure
