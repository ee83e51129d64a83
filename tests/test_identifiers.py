from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc

from exchange.identifiers import InvalidIdentifier, normalize_ric, normalize_uscc
from tests.identifiers import valid_ric, valid_uscc

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def test_a_published_enterprise_code_is_accepted_and_compacted() -> None:
    assert normalize_uscc(" 91110000 600037341L ") == "91110000600037341L"


@pytest.mark.parametrize("authority", ["A", "N", "Y"])
def test_letter_registration_authorities_are_accepted_although_stdnum_refuses_them(authority: str) -> None:
    code = valid_uscc(prefix=f"{authority}1150400", serial=7)
    assert not uscc.is_valid(code)
    assert normalize_uscc(code.lower()) == code


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("9111000060003734", "18 characters"),
        ("B1110000600037341L", "registration-authority"),
        ("9011000060003734XL", "organisation-type"),
        ("91AB0000600037341L", "division code"),
        ("91110000600037341I", "letters of GB 32100"),
        ("91110000600037341M", "check character"),
    ],
)
def test_invalid_codes_are_refused_with_the_reason(code: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        normalize_uscc(code)


@given(serial=st.integers(min_value=0, max_value=999_999_999), position=st.integers(0, 17), data=st.data())
def test_any_single_character_change_is_caught(serial: int, position: int, data: st.DataObject) -> None:
    code = valid_uscc(serial=serial)
    assert normalize_uscc(code) == code
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != code[position]]))
    changed = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidIdentifier):
        normalize_uscc(changed)


def test_citizen_ids_are_checked_for_birth_date_and_place() -> None:
    good = valid_ric(serial=123)
    assert normalize_ric(good) == good
    with pytest.raises(InvalidIdentifier, match="check character"):
        normalize_ric(good[:-1] + ("0" if good[-1] != "0" else "1"))
    with pytest.raises(InvalidIdentifier, match="birth"):
        normalize_ric(valid_ric(birth="19901341"))
