"""Validation of the identifiers the hub keys data by, on top of python-stdnum.

``stdnum.cn.uscc`` insists the first eight characters are digits, but GB 32100-2015 and its amendments
give registration-authority codes ``A`` (军队), ``N`` (农业) and ``Y`` (其他) too, so the format check
lives here and stdnum supplies the compaction and the check character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

_REGISTRATION_AUTHORITIES = frozenset("123456789ANY")
_ORGANISATION_CHARS = frozenset("0123456789ABCDEFGHJKLMNPQRTUWXY")


class InvalidIdentifier(ValueError):
    """The value is not a valid identifier; the message says why, in words a caller can act on."""


def normalize_uscc(value: str) -> str:
    """Return the canonical 18-character 统一社会信用代码, or raise :class:`InvalidIdentifier`."""
    number = uscc.compact(value)
    if len(number) != 18:
        raise InvalidIdentifier("a 统一社会信用代码 has 18 characters")
    if number[0] not in _REGISTRATION_AUTHORITIES:
        raise InvalidIdentifier(f"{number[0]!r} is not a registration-authority code")
    if not number[1].isdigit() or number[1] == "0":
        raise InvalidIdentifier(f"{number[1]!r} is not an organisation-type code")
    if not number[2:8].isdigit():
        raise InvalidIdentifier("characters 3 to 8 must be a division code of six digits")
    if any(c not in _ORGANISATION_CHARS for c in number[8:]):
        raise InvalidIdentifier("characters 9 to 18 may only use digits and the letters of GB 32100")
    if uscc.calc_check_digit(number[:17]) != number[17]:
        raise InvalidIdentifier("the check character does not match")
    return number


@dataclass(slots=True)
class CheckedId:
    """A canonical identifier and what the hub noticed without refusing it."""

    number: str
    warnings: tuple[str, ...] = ()


_RIC = re.compile(r"^\d{17}[\dX]$")


@lru_cache(maxsize=65_536)
def _birth_date_valid(number: str) -> bool:
    try:
        ric.get_birth_date(number)
    except stdnum_errors.ValidationError:
        return False
    return True


@lru_cache(maxsize=65_536)
def _birth_place_known(place: str, year: str) -> bool:
    # stdnum's table lookup is slow (a scan per call); places and years repeat, so remember the answers.
    try:
        ric.get_birth_place(f"{place}{year}0101000")
    except stdnum_errors.ValidationError:
        return False
    return True


def check_ric(value: str) -> CheckedId:
    """Check a 公民身份号码 (GB 11643): format, check character and birth date are required to be right.

    The birth-place code is looked up too, but python-stdnum's table ties codes to the years they existed
    and misses some; an unknown place code is a warning, never a refusal.
    """
    number = value.strip().upper()
    if not _RIC.match(number):
        number = ric.compact(value)
        if len(number) != 18:
            raise InvalidIdentifier("a 公民身份号码 has 18 characters")
        if not _RIC.match(number):
            raise InvalidIdentifier("a 公民身份号码 is 17 digits and a check digit or X")
    if ric.calc_check_digit(number) != number[17]:
        raise InvalidIdentifier("the check character does not match")
    if not _birth_date_valid(number[:14] + "0000"):
        raise InvalidIdentifier("the birth date in it is not a real date")
    if not _birth_place_known(number[:6], number[6:10]):
        return CheckedId(number, (f"the birth-place code {number[:6]} is not known for the year of birth",))
    return CheckedId(number)


def normalize_ric(value: str) -> str:
    """Return the canonical 18-character 公民身份号码, or raise :class:`InvalidIdentifier`."""
    return check_ric(value).number
