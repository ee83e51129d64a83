"""Generated population records: valid 公民身份号码, plausible values, reproducible from a seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

import orjson
from stdnum.cn import ric

DIVISIONS = [
    "150402",
    "150403",
    "150404",
    "150421",
    "150422",
    "150423",
    "150424",
    "150425",
    "150426",
    "150428",
]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰巴特尔其木格"


def person_id(n: int) -> str:
    """The n-th of a sequence of distinct valid ids (born 1950-2009, places of 赤峰市)."""
    serial = n % 1000
    day = date(1950, 1, 1) + timedelta(days=(n // 1000) % 21900)
    division = DIVISIONS[(n // 21_900_000) % len(DIVISIONS)]
    body = f"{division}{day:%Y%m%d}{serial:03d}"
    return body + ric.calc_check_digit(body + "0")


def person_lines(count: int, seed: int = 7) -> Iterator[bytes]:
    rng = random.Random(seed)
    for n in range(count):
        subject = person_id(n)
        fields = {
            "name": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
            "sex": "1" if int(subject[16]) % 2 else "2",
            "ethnicity": rng.choice(["01", "01", "01", "02", "03", "04"]),
            "birth_date": f"{subject[6:10]}-{subject[10:12]}-{subject[12:14]}",
            "household_division": subject[:6],
            "household_address": f"赤峰市红山区第{rng.randint(1, 300)}街{rng.randint(1, 99)}号",
            "phone": f"13{rng.randint(100000000, 999999999)}",
        }
        yield orjson.dumps({"subject_id": subject, "fields": fields}) + b"\n"
