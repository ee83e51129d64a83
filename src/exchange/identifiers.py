"""Validation of the identifiers the hub keys data by, on top of python-stdnum.

``stdnum.cn.uscc`` insists the first eight characters are digits, but GB 32100-2015 and its amendments
give registration-authority codes ``A`` (军队), ``N`` (农业) and ``Y`` (其他) too, so the format check
lives here and stdnum supplies the compaction and the check character.
"""

from __future__ import annotations

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


def normalize_ric(value: str) -> str:
    """Return the canonical 18-character 公民身份号码, or raise :class:`InvalidIdentifier`."""
    try:
        return str(ric.validate(value))
    except stdnum_errors.InvalidLength as exc:
        raise InvalidIdentifier("a 公民身份号码 has 18 characters") from exc
    except stdnum_errors.InvalidChecksum as exc:
        raise InvalidIdentifier("the check character does not match") from exc
    except stdnum_errors.InvalidComponent as exc:
        raise InvalidIdentifier("the birth date or birth-place code is not valid") from exc
    except stdnum_errors.ValidationError as exc:
        raise InvalidIdentifier("not a 公民身份号码") from exc
