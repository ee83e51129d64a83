"""Valid identifiers for test data, built with python-stdnum's check-character functions."""

from __future__ import annotations

import itertools

from stdnum.cn import ric, uscc

_serial = itertools.count(1)


def valid_uscc(prefix: str = "11150400", serial: int | None = None) -> str:
    """A valid 统一社会信用代码: registration authority, type and division from ``prefix``, then a serial."""
    body = f"{prefix}{serial if serial is not None else next(_serial):09d}"
    return body + uscc.calc_check_digit(body)


def valid_ric(division: str = "150402", birth: str = "19900101", serial: int | None = None) -> str:
    body = f"{division}{birth}{(serial if serial is not None else next(_serial)) % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit
