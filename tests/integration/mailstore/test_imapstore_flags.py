"""The stored flag encoding (mailstore.flags) and its SQL matcher, on both databases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from courriel.errors import InvalidInput
from courriel.mailstore.flags import (
    SYSTEM_FLAGS,
    apply_flags,
    check_flags,
    decode_flags,
    encode_flags,
    has_flag,
)
from courriel.mailstore.service import MailStore
from courriel.storage.models import messages

_ATOM = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='(){%*"\\]'),
    min_size=1,
    max_size=12,
)
_FLAG = st.one_of(st.sampled_from([*SYSTEM_FLAGS, "\\seen", "\\DELETED", "\\Recent"]), _ATOM)


@given(st.lists(_FLAG, max_size=8))
def test_encoding_is_canonical(flags: list[str]) -> None:
    stored = encode_flags(check_flags(flags))
    # One encoding per set: encoding the decoded value again changes nothing.
    assert encode_flags(decode_flags(stored)) == stored
    assert stored == stored.strip()
    assert "  " not in stored
    folded = [f.casefold() for f in stored.split()]
    assert folded == sorted(set(folded))
    assert "\\recent" not in folded
    assert {f.casefold() for f in flags} - {"\\recent"} == set(folded)


@given(st.lists(_FLAG, max_size=6), st.lists(_FLAG, max_size=4))
def test_add_then_remove(start: list[str], change: list[str]) -> None:
    current = encode_flags(start)
    added = apply_flags(current, "+", change)
    assert {f.casefold() for f in decode_flags(added)} >= {
        f.casefold() for f in change if f.casefold() != "\\recent"
    }
    removed = apply_flags(added, "-", change)
    assert not {f.casefold() for f in decode_flags(removed)} & {f.casefold() for f in change}
    assert apply_flags(current, "", change) == encode_flags(change)


def test_first_spelling_is_kept() -> None:
    assert apply_flags("Work", "+", ["WORK", "\\SEEN"]) == "\\Seen Work"
    assert apply_flags("\\Seen Work", "-", ["work"]) == "\\Seen"


@pytest.mark.parametrize("flag", ["", "\\", "a b", "a\tb", "(x)", "x]", "a*", "é", "a\\b", '"q"'])
def test_bad_flags_are_refused(flag: str) -> None:
    with pytest.raises(InvalidInput):
        check_flags([flag])


async def test_has_flag_matches_whole_flags_only(mailstore: MailStore) -> None:
    await mailstore.add_domain("example.test")
    await mailstore.add_account("alice@example.test", "pw")
    alice = await mailstore.principal("alice@example.test")
    for flags in (["\\Seen"], ["\\Seenx", "a"], ["\\Deleted", "\\Seen"], ["aXb"], ["a_b"]):
        await mailstore.imap.append(alice, "INBOX", b"x\r\n", flags=flags, internal_date=None)
    async with mailstore.db.read() as conn:
        seen = list(
            await conn.scalars(select(messages.c.uid).where(has_flag(messages.c.flags, "\\Seen")))
        )
        odd = list(
            await conn.scalars(select(messages.c.uid).where(has_flag(messages.c.flags, "a_b")))
        )
    assert sorted(seen) == [1, 3]
    assert odd == [5]  # LIKE's _ is escaped: aXb does not match
    with pytest.raises(InvalidInput):
        await mailstore.imap.append(alice, "INBOX", b"x\r\n", flags=["a b"], internal_date=None)
    snap = await mailstore.imap.open_folder(alice, "INBOX", readonly=True)
    with pytest.raises(InvalidInput):
        await mailstore.imap.store_flags(alice, snap.folder_id, [1], "+", ["(bad)"])
