"""CSV cell protection (OWASP CSV injection): protect/unprotect is exact for every string."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from courriel.marketing.csvio import protect_cell, unprotect_cell

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@given(st.text(alphabet=st.sampled_from("=+-@\t\r' ab"), max_size=6) | st.text())
def test_protect_then_unprotect_gives_the_value_back(value: str) -> None:
    protected = protect_cell(value)
    assert not protected.startswith(FORMULA_START)
    assert unprotect_cell(protected) == value


def test_examples() -> None:
    assert protect_cell("=cmd|'/c'!a1@example.com") == "'=cmd|'/c'!a1@example.com"
    assert protect_cell("\tx") == "'\tx"
    assert unprotect_cell("'\tx") == "\tx"
    assert unprotect_cell("'\rx") == "\rx"
    assert protect_cell("'=x") == "''=x" and unprotect_cell("''=x") == "'=x"
    assert protect_cell("'plain") == "'plain" and unprotect_cell("'plain") == "'plain"
    assert protect_cell("Ann") == "Ann"
